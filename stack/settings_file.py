"""The local stack's settings as its flow runs see them: service addresses, the settings file.

Flow runs that the worker starts read the stack's settings from ``<paths.services>/settings.yaml``
(`write_settings_file`), whose service addresses are the stack's own (`stack_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from conf.keys import REPLACE_TAG, Replace
from conf.loader import ENV_CONTROL, ENV_IGNORED_PREFIX, ENV_PREFIX, update
from conf.settings import Settings
from conf.stackaddresses import stack_addresses
from conf.values import is_secret

SETTINGS_FILE = "settings.yaml"


def stack_settings(settings: Settings) -> Settings:
    """``settings`` with every service address pointing at the local stack's ports.

    The stack's ports (``stack.*``) are the truth for a local stack: MLflow, Kafka and Prefect
    clients (and, for ``openimages.source == mirror``, the ETL) reach the stack's services, and
    ``paths.root`` is made absolute so flow runs started elsewhere find the same files.
    """
    changes: dict[str, Any] = {
        "paths.root": settings.paths.root.resolve(),
        **stack_addresses(settings),
    }
    return update(settings, changes)


def settings_document(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain YAML-able data, secrets left out (they come from env)."""
    return _plain(settings)


def write_settings_file(settings: Settings, path: Path | None = None) -> Path:
    """Write the resolved settings where flow runs read them (``HARMSCAN_CONFIG``).

    Args:
        settings: The settings to hand to flow runs.
        path: Where to write; default ``<paths.services>/settings.yaml``.

    Returns:
        The absolute path written.
    """
    path = (path or settings.paths.services / SETTINGS_FILE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Written by harmscan (stack/settings_file.py): the settings of the stack's flow runs.\n"
    )
    text = yaml.dump(settings_document(settings), Dumper=_Dumper, sort_keys=False)
    path.write_text(header + text)
    return path


def flow_run_env(settings: Settings, write: bool = True) -> dict[str, str]:
    """Environment for flow runs: the profile and the settings file (written unless told not).

    Flow runs resolve settings like the CLI: profile, then this file, then their own
    ``HARMSCAN_*`` variables; so a run reproduces the settings resolved here.
    """
    path = (
        write_settings_file(settings)
        if write
        else (settings.paths.services / SETTINGS_FILE).resolve()
    )
    return {
        "HARMSCAN_PROFILE": settings.profile,
        "HARMSCAN_CONFIG": str(path),
        "PYTHONUNBUFFERED": "1",
        # Also for MLflow calls that do not take the URI explicitly (models:/ downloads).
        "MLFLOW_TRACKING_URI": settings.mlflow.tracking_uri,
        # Library loggers (epochs, consumer counts) show in the flow run's logs in the UI.
        "PREFECT_LOGGING_EXTRA_LOGGERS": "harmscan,tasks,serving,stack",
    }


def service_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The operator's environment as a service that reads the settings file inherits it: the
    ``HARMSCAN_*`` variables of settings left out, secrets kept.

    The file holds the resolved settings with the stack's own addresses; a variable of the
    shell that ran ``harmscan up`` (``HARMSCAN_KAFKA__BOOTSTRAP_SERVERS``) would override it in
    every flow run and on the review page. Secrets are not in the file, so theirs stay.
    """
    kept: dict[str, str] = {}
    for key, value in environ.items():
        if _names_a_setting(key) and not _names_a_secret(key):
            continue
        kept[key] = value
    return kept


def _names_a_setting(key: str) -> bool:
    return (
        key.startswith(ENV_PREFIX)
        and key not in ENV_CONTROL
        and not key.startswith(ENV_IGNORED_PREFIX)
    )


def _names_a_secret(key: str) -> bool:
    try:
        return is_secret(key[len(ENV_PREFIX) :].lower().split("__"))
    except (KeyError, AttributeError, TypeError):  # not a key of the settings
        return False


class _Dumper(yaml.SafeDumper):
    """Writes a mapping setting tagged ``!replace``: the file is the whole resolved settings, so
    its mappings must not merge into the schema's entries (a floor the user dropped would come
    back for the flow runs)."""


_Dumper.add_representer(
    Replace, lambda dumper, data: dumper.represent_mapping(REPLACE_TAG, dict(data))
)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {
            name: _plain(getattr(value, name))
            for name in type(value).model_fields
            if not isinstance(getattr(value, name), SecretStr)
        }
    if isinstance(value, dict):  # a mapping setting (sections are models)
        return Replace({str(k): _plain(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
