"""Dotted setting keys against the schema: check a key path, set a value under it, and explain a
validation error with the valid keys. Every refusal is a `SettingsError`."""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from conf.settings import Settings


class SettingsError(ValueError):
    """A setting is unknown or invalid; the message names it and the valid choices."""


def key_parts(dotted: str, origin: str) -> list[str]:
    """The parts of a dotted key the schema has (``origin`` names where it came from)."""
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise SettingsError(f"{origin}: empty key")
    _check_path(parts, origin)
    return parts


def set_path(into: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``value`` under ``parts``, making the sections on the way.

    A whole section (``train={epochs: 3}``) merges into what the layers before set, as a YAML
    layer does (`merge`): its sections and its mapping settings merge in turn. A value named at
    its own key replaces, a whole mapping included (``mlflow.floors={auc: 0.8}``); a key inside
    a mapping setting (``mlflow.floors.auc``) changes that entry.
    """
    model: type[BaseModel] | None = Settings
    node = into
    for part in parts[:-1]:
        field = None if model is None else model.model_fields.get(part)
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        model = _submodel(field)
        node = child
    section = _submodel(None if model is None else model.model_fields.get(parts[-1]))
    if section is not None and isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
        merge(node[parts[-1]], value)
    else:
        node[parts[-1]] = value


class Replace(dict[str, Any]):
    """A mapping that replaces the one below it instead of merging into it: a YAML value tagged
    ``!replace`` (``floors: !replace {auc: 0.8}`` drops the other floors)."""


REPLACE_TAG = "!replace"


def merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """``new``'s keys over ``into``: a mapping merges into a mapping (sections and mapping
    settings alike), anything else replaces, and so does a `Replace` mapping. How every YAML
    layer and a whole section merge."""
    for key, value in new.items():
        if isinstance(value, Replace):
            into[key] = dict(value)
        elif isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def mapping_defaults(model: type[BaseModel] = Settings) -> dict[str, Any]:
    """The default entries of every mapping setting (``mlflow.floors``, ``train.weights``, ...)
    by section: the layer below ``conf/default.yaml``, so that a layer naming one entry of a
    mapping keeps the others whether they come from a YAML file or from the schema."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        section = _submodel(field)
        if section is not None:
            inner = mapping_defaults(section)
            if inner:
                found[name] = inner
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, dict):
            found[name] = copy.deepcopy(default)
    return found


def _submodel(field: FieldInfo | None) -> type[BaseModel] | None:
    """The settings section a field holds, or None (a value or a mapping: free-form below)."""
    annotation = None if field is None else field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _check_path(parts: list[str], origin: str) -> None:
    """Fail early, with suggestions, on a key path the schema does not have."""
    model: type[BaseModel] | None = Settings
    for depth, part in enumerate(parts):
        if model is None:
            return  # inside a dict-valued setting: free-form keys
        fields = model.model_fields
        if part not in fields:
            where = ".".join(parts[:depth]) or "the top level"
            raise SettingsError(
                f"{origin}: unknown setting {'.'.join(parts)!r}; valid keys at {where}: "
                f"{', '.join(sorted(fields))}{did_you_mean(part, fields)}"
            )
        model = _submodel(fields[part])


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean a, b?)`` for the choices close to ``word``, else nothing."""
    options = list(choices)
    # A word that starts a choice (acc: accuracy) is a near miss even when it is much shorter.
    close = [c for c in options if len(word) >= 3 and c.startswith(word)]
    close += [c for c in difflib.get_close_matches(word, options, n=3) if c not in close]
    close = close[:3]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def explain(exc: ValidationError) -> str:
    """A validation error as one line per bad value, an unknown key with the valid keys."""
    lines = ["invalid settings:"]
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            parent = _model_at(error["loc"][:-1])
            valid = ", ".join(sorted(parent.model_fields)) if parent else "?"
            near = did_you_mean(str(error["loc"][-1]), parent.model_fields) if parent else ""
            lines.append(f"  {loc}: unknown key; valid keys here: {valid}{near}")
        elif (keys := _mapping_keys(error["loc"])) is not None:
            name = str(error["loc"][-2])
            lines.append(
                f"  {loc.removesuffix('.[key]')}: unknown key; valid keys here: "
                f"{', '.join(keys)}{did_you_mean(name, keys)}"
            )
        elif error["type"] == "value_error":
            lines.append(f"  {_own_message(loc, error)}")
        else:
            lines.append(f"  {loc}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)


def _own_message(loc: str, error: Any) -> str:
    """A message of our own validators: the setting named once, the value where it is not."""
    text = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if not isinstance(value, dict | list) and str(value) not in text:
        text = f"{text} (got {value!r})"
    return text if text.startswith(loc) else f"{loc}: {text}"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None:
            return None
        model = _submodel(model.model_fields.get(str(part)))
    return model


def _mapping_keys(loc: tuple[Any, ...]) -> list[str] | None:
    """For an error on a key of a mapping setting whose keys are a fixed choice (``mlflow.floors``
    and its ``[key]``), the valid keys; None for any other error."""
    if len(loc) < 3 or loc[-1] != "[key]":
        return None
    model = _model_at(loc[:-3])
    field = None if model is None else model.model_fields.get(str(loc[-3]))
    annotation = None if field is None else field.annotation
    if typing.get_origin(annotation) is not dict:
        return None
    key_type = typing.get_args(annotation)[0]
    if typing.get_origin(key_type) is not typing.Literal:
        return None
    return [str(k) for k in typing.get_args(key_type)]
