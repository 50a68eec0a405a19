"""Text from the environment or ``--set`` as the value its settings field wants.

The field's annotation decides: a ``str`` (or ``Path``, ``SecretStr``, a ``Literal``) field keeps
the text exactly (``no``, ``0777``, ``1.10``); ``int``/``float``/``bool`` fields convert it the way
pydantic converts text; list and dict fields read YAML/JSON flow syntax with every scalar kept as
text, so the item type converts it in turn; ``null`` or ``~`` clears an optional field.
"""

from __future__ import annotations

import contextlib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from conf.keys import did_you_mean
from conf.settings import Settings

# What clears an optional field from the environment or --set.
NULLS = {"null", "~"}


class ValueParseError(ValueError):
    """The text cannot be the value its field wants; the message says why."""


def parse_value(parts: list[str], raw: str, origin: str) -> Any:
    """Text from the environment or ``--set`` as the value the field at ``parts`` wants."""
    annotation = annotation_at(parts)
    if annotation is Any or _is_section(annotation):
        return yaml.load(raw, Loader=yaml.BaseLoader) if raw.strip() else raw  # noqa: S506
    if raw.strip() in NULLS and _allows_none(annotation):
        return None
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    with contextlib.suppress(ValidationError):
        return adapter.validate_python(raw)  # str, Path, int, float, bool, Literal: the text
    try:
        # Containers: YAML/JSON flow syntax, every scalar kept as text for the item type to parse.
        document = yaml.load(raw, Loader=yaml.BaseLoader)  # noqa: S506 (BaseLoader: only text)
    except yaml.YAMLError:
        document = None
    if isinstance(document, dict) and any(":" in k and not v for k, v in document.items()):
        raise ValueParseError(
            f"{origin}: {raw!r} is not {describe(annotation)}: write a space after each colon "
            "(without one, YAML reads 'key:value' as one key)"
        )
    if isinstance(document, list | dict):
        try:
            return adapter.validate_python(document)
        except ValidationError as exc:
            items = "; ".join(_item_error(e) for e in exc.errors()[:3])
            raise ValueParseError(
                f"{origin}: {raw!r} is not {describe(annotation)} ({items})"
            ) from None
    hint = ""
    if typing.get_origin(_optional_of(annotation)) is list and raw.strip():
        hint = _list_hint(_optional_of(annotation), raw.strip())
    raise ValueParseError(f"{origin}: {raw!r} is not {describe(annotation)}{hint}")


def _list_hint(annotation: Any, text: str) -> str:
    """How to write ``text`` as the list a field wants: ``[text]`` when it is a valid item (or
    ``[a, b]`` when its comma-separated parts are), else the valid choices of an item."""
    item = (typing.get_args(annotation) or (Any,))[0]
    adapter: TypeAdapter[Any] = TypeAdapter(item)

    def valid(value: str) -> bool:
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
        return True

    parts = [p.strip() for p in text.split(",")]
    several = "," in text and all(valid(p) for p in parts)
    if valid(text):
        one = f'["{text}"]' if "," in text else f"[{text}]"
        return f"; for one item write {one}" + (f", for several [{text}]" if several else "")
    if several:
        return f"; for several items write [{text}]"
    if typing.get_origin(item) is not typing.Literal:
        return ""  # what an item takes is already said
    choices = [str(c) for c in typing.get_args(item)]
    bad = next(p for p in parts if not valid(p))
    return f"; {bad!r} is not one of {', '.join(choices)}{did_you_mean(bad, choices)}"


def describe(annotation: Any) -> str:
    """What a field of type ``annotation`` takes, in words (``one of a, b``, ``a whole number``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return describe(args[0]) + _bounds(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        kinds: list[str] = []
        for arg in args:
            if typing.get_origin(arg) is typing.Literal:
                kinds += [str(a) for a in typing.get_args(arg)]
            elif arg is not type(None):
                kinds.append(describe(arg))
        kinds += ["null"] if type(None) in args else []
        return ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else kinds[0]
    if origin is list:
        return f"a list like [a, b], each item {describe(args[0])}" if args else "a list"
    if origin is dict:
        key, value = (describe(a) for a in args) if args else ("text", "anything")
        return f"a mapping like {{key: value}}, each key {key}, each value {value}"
    return _SCALARS.get(annotation, f"a valid {_type_name(annotation)}")


def _bounds(annotation: Any) -> str:
    """The bounds an ``Annotated`` number carries (``, at least 0 and at most 1``)."""
    words = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}
    schema = TypeAdapter(annotation).core_schema
    found = [f"{word} {schema[key]}" for key, word in words.items() if key in schema]
    return ", " + " and ".join(found) if found else ""


_SCALARS: dict[Any, str] = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    str: "text",
    Path: "a path",
    SecretStr: "text",
}


def _optional_of(annotation: Any) -> Any:
    """``X`` of ``X | None``; any other annotation as it is."""
    if _allows_none(annotation):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _item_error(error: Any) -> str:
    """One item's error: where in the list or mapping, and what pydantic says of it."""
    loc = [str(p) for p in error["loc"] if not str(p).startswith(("function-", "list["))]
    where = f"key {loc[0]}" if "[key]" in loc else (f"at {'.'.join(loc)}" if loc else "")
    if "[key]" in loc and error["type"] == "literal_error":
        choices = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        return f"{where}: unknown key{did_you_mean(loc[0], choices)}"
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def annotation_at(parts: list[str]) -> Any:
    """The type annotation of the field at a (checked) key path; ``Any`` inside free-form dicts."""
    annotation: Any = Settings
    for part in parts:
        if _is_section(annotation):
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return Any
    return annotation


def is_secret(parts: list[str]) -> bool:
    """Whether the field at a (checked) key path holds a secret (``SecretStr``, optional or not)."""
    annotation = annotation_at(parts)
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _allows_none(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(
        None
    ) in typing.get_args(annotation)


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is None and hasattr(annotation, "__name__"):
        return str(annotation.__name__)
    return str(annotation).replace("typing.", "").replace("pathlib.", "")


def plain(value: Any) -> Any:
    """A parsed value as plain JSON (secrets revealed: they travel like the text they came from)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
