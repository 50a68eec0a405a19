"""The MLflow side of harmscan: one registry client at an explicit URI, runs, bundles.

Sits above the core (`harmscan`, `conf`) and below `tasks`, `serving`, `flows`, `stack` and
`cli`; it imports no Prefect, and torch only inside `log_bundle` (a serving install has none).
"""

from registry.bundles import LoggedBundle, log_bundle
from registry.client import (
    CHALLENGER,
    CHAMPION,
    Registry,
    RegistryError,
    RegistryUnavailable,
    VersionInfo,
)
from registry.runs import Run, start_run

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "LoggedBundle",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
    "Run",
    "VersionInfo",
    "log_bundle",
    "start_run",
]
