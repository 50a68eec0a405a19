"""Build the one frozen `Settings` object from its layers.

Order, later wins: ``conf/default.yaml`` -> ``conf/profiles/<profile>.yaml`` -> an optional extra
YAML file -> ``HARMSCAN_*`` environment variables (``HARMSCAN_TRAIN__EPOCHS=3``; ``__`` nests)
-> ``--set train.epochs=3`` overrides. Values from the environment and ``--set`` are parsed by the
type of the field they set: a ``str`` field keeps ``no``, ``0777`` or ``1.10`` exactly as written;
an ``int``, ``float`` or ``bool`` field converts the text (``3``, ``1.10``, ``true``/``no``); a list
or dict field reads YAML/JSON flow syntax (``[a, b]``, ``{train: 0.8, val: 0.1, test: 0.1}``) whose
items are then converted by the item type; ``null`` (or ``~``) clears an optional field.

`update` is the one way to change resolved settings in code: typed values under dotted keys,
checked like ``--set`` keys, validated again into a new frozen `Settings`.
`SettingsSource` is what a flow parameter carries: a profile, an extra file and typed overrides,
a JSON value that resolves to the same settings wherever the flow runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conf.keys import (
    REPLACE_TAG,
    Replace,
    SettingsError,
    did_you_mean,
    explain,
    key_parts,
    mapping_defaults,
    merge,
    set_path,
)
from conf.redact import mask_credentials
from conf.settings import Settings
from conf.stackaddresses import moved_addresses
from conf.values import ValueParseError, is_secret, parse_value, plain

CONF_DIR = Path(__file__).resolve().parent
PROFILES_DIR = CONF_DIR / "profiles"
ENV_PREFIX = "HARMSCAN_"
# Variables of ours that are not settings (they name the profile or a YAML file to load).
ENV_CONTROL = {"HARMSCAN_PROFILE", "HARMSCAN_CONFIG"}
# Variables read by the test suite (reused servers), not settings.
ENV_IGNORED_PREFIX = "HARMSCAN_TEST_"


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``conf/profiles``."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_settings(
    profile: str | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve the settings from all layers and validate them once.

    Args:
        profile: Profile name; defaults to ``$HARMSCAN_PROFILE`` or ``local``.
        overrides: ``a.b=c`` strings (values parsed by the field's type), or a mapping of dotted
            keys to typed values; applied last.
        config_file: An extra YAML file applied after the profile (or ``$HARMSCAN_CONFIG``).
        env: The environment to read; defaults to ``os.environ``.

    Returns:
        The frozen settings.

    Raises:
        SettingsError: An unknown profile, key, or an invalid value, named with the valid choices.
    """
    env = os.environ if env is None else env
    named_by = "" if profile or not env.get("HARMSCAN_PROFILE") else " (from HARMSCAN_PROFILE)"
    profile = profile or env.get("HARMSCAN_PROFILE") or "local"
    profiles = available_profiles()
    if profile not in profiles:
        raise SettingsError(
            f"unknown profile {profile!r}{named_by}; valid profiles: {', '.join(profiles)}"
            + did_you_mean(profile, profiles)
        )
    # Every YAML layer merges into the ones before it, the schema's mapping entries first.
    merged = mapping_defaults()
    merge(merged, read_settings_yaml(CONF_DIR / "default.yaml"))
    merge(merged, read_settings_yaml(PROFILES_DIR / f"{profile}.yaml"))
    extra = config_file or (Path(env["HARMSCAN_CONFIG"]) if env.get("HARMSCAN_CONFIG") else None)
    if extra is not None:
        merge(merged, read_settings_yaml(extra))
    for key, value in sorted(env.items()):
        if key.startswith(ENV_PREFIX) and key not in ENV_CONTROL:
            if key.startswith(ENV_IGNORED_PREFIX):
                continue
            dotted = key[len(ENV_PREFIX) :].lower().replace("__", ".")
            try:
                _set_dotted(merged, dotted, value, origin=f"environment variable {key}")
            except SettingsError as exc:
                raise SettingsError(f"{exc}{_nesting_hint(key, dotted)}") from None
    if isinstance(overrides, Mapping):
        for dotted, typed in overrides.items():
            set_path(merged, key_parts(dotted, f"override {dotted}"), typed)
    else:
        for dotted, raw in (split_assignment(item) for item in overrides):
            _set_dotted(merged, dotted, raw, origin=f"--set {dotted}={raw}")
    if merged.get("profile", profile) != profile:
        raise SettingsError(
            f"profile {merged['profile']!r} cannot be a setting: choose it with --profile "
            f"{merged['profile']} or HARMSCAN_PROFILE; valid profiles: {', '.join(profiles)}"
        )
    merged["profile"] = profile
    settings = _validate(merged)
    moved = moved_addresses(settings)  # the local profile's clients follow its stack's ports
    return update(settings, moved) if moved else settings


def update(settings: Settings, changes: Mapping[str, Any]) -> Settings:
    """A new frozen `Settings`: ``settings`` with typed values set under dotted keys.

    ``update(settings, {"train.epochs": 3, "serving.allowed_roots": [Path("/img")]})``.
    Keys are checked like ``--set`` keys (unknown ones fail with the valid keys and a
    suggestion); values are typed (no text parsing) and the whole is validated again.

    Raises:
        SettingsError: An unknown key or an invalid value.
    """
    if not changes:
        return settings
    data = settings.model_dump()
    for dotted, value in changes.items():
        set_path(data, key_parts(dotted, f"setting {dotted}"), value)
    return _validate(data)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``a.b=c`` strings as dotted keys -> values, each parsed by its field's type.

    Secrets come back as plain strings and paths as text, so the result is plain JSON.

    Raises:
        SettingsError: A malformed item, an unknown key or a value its field cannot take.
    """
    out: dict[str, Any] = {}
    for dotted, raw in (split_assignment(item) for item in items):
        parts = key_parts(dotted, f"--set {dotted}")
        value = _parse(parts, raw, origin=f"--set {dotted}={raw}")
        out[".".join(parts)] = plain(value)
    return out


def split_assignment(item: str) -> tuple[str, str]:
    """``"a.b=c"`` -> ``("a.b", "c")``.

    Raises:
        SettingsError: No ``=`` in the item.
    """
    dotted, sep, raw = item.partition("=")
    if not sep:
        raise SettingsError(f"--set takes key=value, got {item!r} (for example train.epochs=3)")
    return dotted.strip(), raw


def dump_settings(settings: Settings) -> dict[str, Any]:
    """Flatten the settings into ``a.b -> value`` strings, secrets masked (for MLflow params):
    ``SecretStr`` fields, and the password of any address written with one
    (``postgresql://user:password@host/db``)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = mask_credentials(value) if isinstance(value, str) else value

    walk("", settings.model_dump(mode="json"))
    return flat


def _carries_password(value: Any) -> bool:
    """Whether an override's value has a password written into an address."""
    text = str(value) if isinstance(value, str | list | dict) else ""
    return mask_credentials(text) != text


def read_settings_yaml(path: Path) -> dict[str, Any]:
    """A settings YAML file as data (a key written twice refused, ``!replace`` read).

    Raises:
        SettingsError: Missing, a folder, not YAML, not UTF-8 or not a mapping, named.
    """
    if not path.is_file():
        what = "is a folder, not a YAML file" if path.is_dir() else "not found"
        raise SettingsError(f"settings file {what}: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}  # noqa: S506 (safe)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path} is not a text (UTF-8) file") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must hold a mapping at the top, not {type(data).__name__}")
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key written twice in one mapping (YAML would keep the
    last one and drop the first without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in first
            except TypeError:
                continue  # an unhashable key: SafeLoader refuses it itself
            if seen:
                problem = f"duplicate key {key!r} (first on line {first[key]})"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _construct_replace(loader: yaml.SafeLoader, node: yaml.Node) -> Replace:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, f"{REPLACE_TAG} tags a mapping ({{key: value, ...}})", node.start_mark
        )
    return Replace({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})


_UniqueKeyLoader.add_constructor(REPLACE_TAG, _construct_replace)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, in one line: ``line 2, column 11: expected ',' or ']'``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def _nesting_hint(key: str, dotted: str) -> str:
    """For ``HARMSCAN_TRAIN_EPOCHS``: the variable it likely meant (``__`` nests)."""
    section, sep, rest = dotted.partition("_")
    if "." in dotted or not sep or section not in Settings.model_fields:
        return ""
    return f"; for {section}.{rest} write {env_variable(f'{section}.{rest}')} (__ nests)"


def env_variable(dotted: str) -> str:
    """The ``HARMSCAN_*`` variable that sets a dotted key (``train.epochs``:
    ``HARMSCAN_TRAIN__EPOCHS``), as `load_settings` reads the environment."""
    return ENV_PREFIX + dotted.upper().replace(".", "__")


def _parse(parts: list[str], raw: str, origin: str) -> Any:
    try:
        return parse_value(parts, raw, origin)
    except ValueParseError as exc:
        raise SettingsError(str(exc)) from None


def _validate(data: dict[str, Any]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(explain(exc)) from None


def _set_dotted(into: dict[str, Any], dotted: str, raw: str, origin: str) -> None:
    parts = key_parts(dotted, origin)
    set_path(into, parts, _parse(parts, raw, origin))


class SettingsSource(BaseModel):
    """Where a flow's settings come from, as a flow parameter: plain JSON that round-trips exactly.

    The flow resolves it in its own process (`resolve`): default YAML, ``profile``, the extra
    ``config_file``, that process's ``HARMSCAN_*`` variables, then ``overrides`` (dotted keys ->
    typed values, applied like `update`). Nothing is turned into text and parsed back, so a path
    holding ``", "`` or ``" #"`` arrives as written.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str | None = None
    config_file: Path | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_cli(
        cls, profile: str | None, items: Iterable[str], config_file: Path | None = None
    ) -> SettingsSource:
        """The source of a command line: its profile, ``--config`` and ``--set`` items."""
        return cls(profile=profile, config_file=config_file, overrides=parse_overrides(items))

    def with_overrides(self, changes: Mapping[str, Any]) -> SettingsSource:
        """A copy with more overrides; None values (a flow parameter left out) are skipped."""
        given = {k: plain(v) for k, v in changes.items() if v is not None}
        if not given:
            return self
        for dotted in given:
            key_parts(dotted, f"override {dotted}")
        return self.model_copy(update={"overrides": {**self.overrides, **given}})

    def without_secrets(self) -> tuple[SettingsSource, dict[str, str]]:
        """This source with its secret overrides taken out, and those as the ``HARMSCAN_*``
        variables that set them: a flow's parameters are stored and shown by Prefect, so a
        secret given with ``--set`` reaches a flow run in this process through its environment.
        An address with a password written in it (``mlflow.tracking_uri=postgresql://u:pw@…``)
        counts as a secret too.
        """
        secret = {
            k for k, v in self.overrides.items() if is_secret(k.split(".")) or _carries_password(v)
        }
        if not secret:
            return self, {}
        env = {  # a secret cleared with --set KEY=null stays cleared
            env_variable(key): ("null" if self.overrides[key] is None else str(self.overrides[key]))
            for key in secret
        }
        kept = {k: v for k, v in self.overrides.items() if k not in secret}
        return self.model_copy(update={"overrides": kept}), env

    def resolve(self, env: Mapping[str, str] | None = None) -> Settings:
        """The settings this source names, validated (see `load_settings`)."""
        return load_settings(self.profile, self.overrides, self.config_file, env)
