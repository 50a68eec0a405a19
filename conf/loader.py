"""Build the one frozen `Settings` object from its layers.

Order, later wins: ``conf/default.yaml`` -> ``conf/profiles/<profile>.yaml`` -> an optional extra
YAML file -> ``HARMSCAN_*`` environment variables (``HARMSCAN_TRAIN__EPOCHS=3``; ``__`` nests)
-> ``--set train.epochs=3`` overrides. Values from the environment and ``--set`` are parsed as YAML
scalars, so ``true``, ``3``, ``[a, b]`` mean what they look like.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from conf.settings import Settings

CONF_DIR = Path(__file__).resolve().parent
PROFILES_DIR = CONF_DIR / "profiles"
ENV_PREFIX = "HARMSCAN_"
# Variables of ours that are not settings (they name the profile or a YAML file to load).
ENV_CONTROL = {"HARMSCAN_PROFILE", "HARMSCAN_CONFIG"}


class SettingsError(ValueError):
    """A setting is unknown or invalid; the message names it and the valid choices."""


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``conf/profiles``."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_settings(
    profile: str | None = None,
    overrides: Iterable[str] = (),
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve the settings from all layers and validate them once.

    Args:
        profile: Profile name; defaults to ``$HARMSCAN_PROFILE`` or ``local``.
        overrides: ``a.b=c`` strings, applied last.
        config_file: An extra YAML file applied after the profile (or ``$HARMSCAN_CONFIG``).
        env: The environment to read; defaults to ``os.environ``.

    Returns:
        The frozen settings.

    Raises:
        SettingsError: An unknown profile, key, or an invalid value, named with the valid choices.
    """
    env = os.environ if env is None else env
    profile = profile or env.get("HARMSCAN_PROFILE") or "local"
    profiles = available_profiles()
    if profile not in profiles:
        raise SettingsError(f"unknown profile {profile!r}; valid profiles: {', '.join(profiles)}")
    merged: dict[str, Any] = {}
    _deep_merge(merged, _read_yaml(CONF_DIR / "default.yaml"))
    _deep_merge(merged, _read_yaml(PROFILES_DIR / f"{profile}.yaml"))
    extra = config_file or (Path(env["HARMSCAN_CONFIG"]) if env.get("HARMSCAN_CONFIG") else None)
    if extra is not None:
        _deep_merge(merged, _read_yaml(extra))
    for key, value in sorted(env.items()):
        if key.startswith(ENV_PREFIX) and key not in ENV_CONTROL:
            dotted = key[len(ENV_PREFIX) :].lower().replace("__", ".")
            _set_dotted(merged, dotted, value, origin=f"environment variable {key}")
    for item in overrides:
        if "=" not in item:
            raise SettingsError(f"--set takes key=value, got {item!r} (for example train.epochs=3)")
        dotted, value = item.split("=", 1)
        _set_dotted(merged, dotted.strip(), value, origin=f"--set {item}")
    merged["profile"] = profile
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


def dump_settings(settings: Settings) -> dict[str, Any]:
    """Flatten the settings into ``a.b -> value`` strings, secrets masked (for MLflow params)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = value

    walk("", settings.model_dump(mode="json"))
    return flat


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SettingsError(f"settings file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must hold a mapping at the top, not {type(data).__name__}")
    return data


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _set_dotted(into: dict[str, Any], dotted: str, raw: str, origin: str) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise SettingsError(f"{origin}: empty key")
    _check_path(parts, origin)
    node = into
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else raw


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
                f"{', '.join(sorted(fields))}{_did_you_mean(part, fields)}"
            )
        annotation = fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _explain(exc: ValidationError) -> str:
    lines = ["invalid settings:"]
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            parent = _model_at(error["loc"][:-1])
            valid = ", ".join(sorted(parent.model_fields)) if parent else "?"
            lines.append(f"  {loc}: unknown key; valid keys here: {valid}")
        else:
            lines.append(f"  {loc}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return None
        model = field.annotation
    return model
