"""`Registry`: the MLflow tracking server and model registry at one explicit URI.

Every harmscan access to MLflow goes through a `Registry` built from ``mlflow.tracking_uri``;
nothing sets a process-wide tracking URI. The alias -> version lookup and the artifact download
live here once; `download_bundle` reads the downloaded folder with the core's bundle layout
(`harmscan.bundle`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conf.redact import mask_credentials
from harmscan.bundle import Bundle, BundleError, read_bundle

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
# Error codes meaning "no such model, version or alias" (anything else: the registry failed).
MISSING = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"})


class RegistryError(RuntimeError):
    """The registry is missing something we need (a version, an alias, a bundle file)."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached or failed; the message names its URI."""


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version.

    Attributes:
        name: Registered model name.
        version: Version number.
        run_id: The training run that logged it ("" if none).
        tags: Version tags (arch, dataset_version, promotion_* ...).
        aliases: Aliases pointing at it.
    """

    name: str
    version: str
    run_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"


# How many of an alias's past versions its history keeps.
HISTORY_KEPT = 100


class Registry:
    """The MLflow tracking server and model registry at ``tracking_uri``.

    Args:
        tracking_uri: Tracking URI (``http://...``, ``sqlite:///...``); the registry is the same
            server unless ``registry_uri`` says otherwise.
        registry_uri: Model registry URI, if it differs.
    """

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self._client: MlflowClient | None = None

    def __repr__(self) -> str:
        return f"Registry({mask_credentials(self.tracking_uri)!r})"

    @property
    def client(self) -> MlflowClient:
        """The `MlflowClient` bound to this registry's URIs (made on first use)."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``name@alias`` points to, or None if the model or alias does not exist.

        Raises:
            RegistryUnavailable: The registry could not be reached or failed otherwise.
        """
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise self._unavailable(f"models:/{name}@{alias}", exc) from exc

    def require_alias_version(self, name: str, alias: str) -> str:
        """The version ``name@alias`` points to.

        Raises:
            RegistryError: No such model or alias.
            RegistryUnavailable: The registry could not be reached.
        """
        version = self.alias_version(name, alias)
        if version is None:
            raise RegistryError(f"no models:/{name}@{alias} at {self._shown_uri}")
        return version

    def model_version(self, name: str, version: str) -> VersionInfo:
        """One registered version with its tags.

        Raises:
            RegistryError: No such version.
            RegistryUnavailable: The registry could not be reached.
        """
        try:
            found = self.client.get_model_version(name, version)
        except Exception as exc:
            if _is_missing(exc):
                raise RegistryError(f"{name} has no version {version}{self._known(name)}") from None
            raise self._unavailable(f"models:/{name}/{version}", exc) from exc
        return VersionInfo(
            name=name,
            version=str(found.version),
            run_id=found.run_id or "",
            tags=dict(found.tags or {}),
            aliases=tuple(found.aliases or ()),
        )

    def _known(self, name: str) -> str:
        """``; its versions: 1, 2, 3`` (the latest 20), ``; it has none``, or nothing when the
        registry cannot say: for an error about a version that does not exist."""
        try:
            found = self.client.search_model_versions(f"name = '{name}'")
        except Exception:  # only a hint: the error it adds to stands without it
            return ""
        versions = sorted({int(v.version) for v in found if str(v.version).isdigit()})
        if not versions:
            return f"; {name} has no registered version"
        shown = ", ".join(map(str, versions[-20:]))
        return f"; its versions: {shown}" if len(versions) <= 20 else f"; its latest: {shown}"

    def set_alias(
        self,
        name: str,
        alias: str,
        version: str,
        tags: Mapping[str, object] | None = None,
        *,
        record: bool = True,
    ) -> None:
        """Point ``alias`` at ``version`` and tag the version with why.

        A move to another version is recorded in the alias's history (`alias_history`), which
        a rollback walks back; ``record=False`` leaves the history to the caller (a rollback).

        Raises:
            RegistryError: No such version.
        """
        self.model_version(name, version)
        before = self.alias_version(name, alias) if record else None
        self.client.set_registered_model_alias(name, alias, version)
        self.set_version_tags(name, version, tags or {})
        if record and before != version:
            history = self.alias_history(name, alias)
            if before is not None and (not history or history[-1] != before):
                history.append(before)  # a registry from before the history, or a move by hand
            self.set_alias_history(name, alias, [*history, version])

    def alias_history(self, name: str, alias: str) -> list[str]:
        """The versions ``alias`` pointed at, oldest first, the current one last (as recorded
        by `set_alias`; empty before the first recorded move)."""
        try:
            tags = self.client.get_registered_model(name).tags or {}
        except Exception as exc:
            if _is_missing(exc):
                return []
            raise self._unavailable(f"the model {name}", exc) from exc
        return [v for v in tags.get(f"{alias}_history", "").split(",") if v]

    def set_alias_history(self, name: str, alias: str, versions: list[str]) -> None:
        """Record ``versions`` (oldest first) as the alias's history, the last `HISTORY_KEPT`."""
        text = ",".join(versions[-HISTORY_KEPT:])
        self.client.set_registered_model_tag(name, f"{alias}_history", text)

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, object]) -> None:
        """Set tags (values as strings) on a registered version."""
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, str(value))

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric of a run."""
        return dict(self.client.get_run(run_id).data.metrics)

    def download(self, name: str, version: str, dest: Path) -> Path:
        """Download one registered version's artifacts into ``dest``; the local folder.

        The version's artifact location is resolved with this registry's client: a ``models:/``
        URI handed to ``download_artifacts`` would be resolved against the process-wide
        registry URI, whatever this registry is.

        Raises:
            RegistryError: No such version.
            RegistryUnavailable: The registry or its artifact store could not be reached.
        """
        import mlflow.artifacts

        self.model_version(name, version)
        try:
            source = self.client.get_model_version_download_uri(name, version)
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(dest), tracking_uri=self.tracking_uri
            )
        except Exception as exc:
            raise self._unavailable(f"artifacts of models:/{name}/{version}", exc) from exc
        return Path(local)

    def download_bundle(self, name: str, version: str, dest: Path) -> Bundle:
        """Download one version and read its harmscan bundle (spec, ONNX, model folder).

        Raises:
            RegistryError: No such version, or the version is not a harmscan bundle.
            RegistryUnavailable: The registry could not be reached.
        """
        folder = self.download(name, version, dest)
        try:
            return read_bundle(folder)
        except BundleError as exc:
            raise RegistryError(f"models:/{name}/{version}: {exc}") from exc

    def _unavailable(self, what: str, exc: BaseException) -> RegistryUnavailable:
        return RegistryUnavailable(
            mask_credentials(f"cannot read {what} at {self.tracking_uri}: {exc}")
        )

    @property
    def _shown_uri(self) -> str:
        """The tracking URI as messages show it: its password, if written in it, masked."""
        return mask_credentials(self.tracking_uri)


def _is_missing(exc: BaseException) -> bool:
    code: Any = getattr(exc, "error_code", None)
    return code in MISSING
