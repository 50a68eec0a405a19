"""How a command ends when something expected goes wrong: one ``error:`` line and an exit code.

| code | meaning |
|---|---|
| 0 | done |
| 1 | an expected failure (empty selection, a failed gate, a timed-out flow, a failed run) |
| 2 | bad settings or usage (unknown key, invalid value, unknown class, missing weights file) |
| 3 | a service is unreachable (metadata/S3 endpoint, MLflow, Kafka, Prefect API) |
| 4 | `harmscan serve` stopped on a fatal Kafka error (its supervisor restarts it) |
| 130 | interrupted (Ctrl-C) |

The line names the setting to change where one is to blame. Tracebacks are printed only with
``harmscan --verbose``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from conf.settings import Settings

OK, FAILED, USAGE, UNREACHABLE, SERVING_FATAL, INTERRUPTED = 0, 1, 2, 3, 4, 130

# Exception class names (any module) that mean "bad settings", and those that mean "failed".
_USAGE = {
    "SettingsError",
    "ClassResolutionError",
    "PriorClassError",
    "WeightsError",
    "ManifestError",
    "BadParameter",
    "DeployError",
    "PhotoSetNotFound",
}
_FAILED = {"EmptySelection", "FlowTimeout", "RegistryError", "DemoError", "KafkaSetupError"}
_UNREACHABLE = {
    "ConnectionError",  # requests
    "ConnectError",  # httpx
    "ConnectTimeout",
    "NewConnectionError",  # urllib3
    "MaxRetryError",
    "EndpointConnectionError",  # botocore
    "ConnectionRefusedError",
    "ModelUnavailable",
    "ServiceError",
}
# What a KafkaException says when no broker answers (librdkafka's error names and texts).
_KAFKA_DOWN = ("_TRANSPORT", "_ALL_BROKERS_DOWN", "Broker transport failure")
_HOST_PORT = re.compile(r"(?:[a-z0-9+.-]+://)?([A-Za-z0-9.-]+):(\d+)")
# urllib3/requests say HTTPConnectionPool(host='127.0.0.1', port=9).
_POOL = re.compile(r"host='([^']+)', port=(\d+)")


@dataclass(frozen=True)
class Failure:
    """The exit code and the one line a failed command prints."""

    code: int
    message: str


def fail(exc: BaseException | str, code: int = FAILED) -> typer.Exit:
    """Print ``exc`` as the command's one ``error:`` line; the `typer.Exit` to raise with ``code``.

    ``raise fail(exc, USAGE) from None`` ends a command on an error it expects.
    """
    typer.secho(f"error: {exc}", fg="red", err=True)
    return typer.Exit(code)


def explain(exc: BaseException, settings: Settings | None = None) -> Failure:
    """The exit code and message of an exception that ended a command."""
    if isinstance(exc, KeyboardInterrupt):
        return Failure(INTERRUPTED, "interrupted")
    chain = list(_chain(exc))
    names = [type(e).__name__ for e in chain]
    text = _message(exc)
    if any(n in _UNREACHABLE for n in names) or "ephemeral Prefect API server" in text:
        return Failure(UNREACHABLE, _unreachable(chain, settings))
    if "KafkaException" in names and any(m in text for m in _KAFKA_DOWN):
        return Failure(UNREACHABLE, _unreachable(chain, settings))
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return Failure(
            USAGE,
            f"this install has no {exc.name!r}: the serving install (requirements-serving.lock) "
            "runs only `harmscan serve` and `harmscan produce`; install requirements.lock for "
            "the rest",
        )
    if names[0] in _USAGE:
        return Failure(USAGE, text)
    if names[0] in _FAILED:
        return Failure(FAILED, text)
    hint = " (run with --verbose for the traceback)"
    return Failure(FAILED, f"{names[0]}: {text}{hint}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if "\n" in text and len(text) > 300 else text


def _unreachable(chain: list[BaseException], settings: Settings | None) -> str:
    """Which service did not answer, and the setting that names its address."""
    text = " ".join(str(e) for e in chain)
    if "ephemeral Prefect API server" in text:
        return (
            "the temporary Prefect server did not start in time; start the local stack "
            "(harmscan up) and point prefect.api_url at it, or raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
        )
    if type(chain[0]).__name__ in {"ModelUnavailable", "ServiceError"}:
        return str(chain[0])
    if any(m in text for m in _KAFKA_DOWN):
        where = f" at {settings.kafka.bootstrap_servers}" if settings is not None else ""
        return (
            f"cannot reach Kafka{where} (kafka.bootstrap_servers); start the local stack "
            "(harmscan up) or change kafka.bootstrap_servers"
        )
    found = {f"{h}:{p}" for h, p in _HOST_PORT.findall(text) + _POOL.findall(text)}
    for setting, address in _service_addresses(settings).items():
        if address and any(a in address for a in found):
            return f"cannot reach {address} ({setting}); {start_hint(setting, address)}"
    first = next(iter(sorted(found)), None)
    where = f" at {first}" if first else ""
    return f"a service{where} is unreachable: {_message(chain[0])}"


def start_hint(setting: str, address: str) -> str:
    """How to bring up the service of ``setting``: the command that starts it on this machine
    (loopback addresses), else the generic advice."""
    local = any(h in address for h in ("127.0.0.1", "localhost", "[::1]"))
    how = _STARTS.get(setting.split(".")[0]) if local else None
    return f"{how} or change {setting}" if how else f"start that service or change {setting}"


# What starts each service of the local stack (harmscan up starts the mirror too).
_STARTS = {
    "openimages": "start the mirror (harmscan mirror up, or the stack: harmscan up)",
    "mlflow": "start the local stack (harmscan up)",
    "prefect": "start the local stack (harmscan up)",
    "kafka": "start the local stack (harmscan up)",
}


def _service_addresses(settings: Settings | None) -> dict[str, str]:
    if settings is None:
        return {}
    return {
        "openimages.metadata_base_url": settings.openimages.metadata_base_url,
        "openimages.s3_endpoint_url": settings.openimages.s3_endpoint_url or "",
        "serving.s3_endpoint_url": settings.serving.s3_endpoint_url or "",
        "mlflow.tracking_uri": settings.mlflow.tracking_uri,
        "kafka.bootstrap_servers": settings.kafka.bootstrap_servers,
        "prefect.api_url": settings.prefect.api_url or "",
    }
