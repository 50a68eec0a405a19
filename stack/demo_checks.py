"""What the demo checks on its way: the registry's champion, and that the consumer serves it.

`champion_line` reads the champion from the registry; `wait_for_champion` polls the consumer's
``harmscan_model_info`` metric until it reports that version (a running consumer swaps within
``serving.swap_check_interval_s``); `check_serving` fails fast if the serve run ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from conf.redact import mask_credentials
from conf.settings import Settings

Emit = Callable[[str], None]


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and where to look."""


def champion_line(settings: Settings, emit: Emit) -> str | None:
    """Report the registry's champion version (and its run's metrics); its version."""
    from registry import Registry

    ml, alias = settings.mlflow, settings.serving.model_alias
    registry = Registry(ml.tracking_uri)
    version = registry.alias_version(ml.registered_model, alias)
    if version is None:
        raise DemoError(
            f"no {ml.registered_model}@{alias} after retrain: "
            f"no model passed the promotion gate; see {mask_credentials(ml.tracking_uri)}"
        )
    info = registry.model_version(ml.registered_model, version)
    metrics = registry.run_metrics(info.run_id) if info.run_id else {}
    keys = ("test_auc", "test_f1", "test_accuracy", "test_recall")
    shown = ", ".join(f"{k.removeprefix('test_')} {metrics[k]:.3f}" for k in keys if k in metrics)
    model = info.tags.get("arch") or info.tags.get("model") or ""
    emit(f"      champion: {ml.registered_model} v{version} {model} (mirror test split: {shown})")
    if (gate := gate_summary(metrics)) is not None:
        emit(f"      on the gate set: {gate}")
    emit(f"      champion v{version} is {describe_champion(info.tags)}")
    return version


def gate_summary(metrics: dict[str, float]) -> str | None:
    """The gate set's figures of a run (``gate_<domain>_<metric>``) in one line: ROC AUC over
    all and per domain present, harmful caught and safe flagged at the stored threshold; None
    for a run not scored on a gate set."""
    if not metrics.get("gate_all_count"):
        return None
    domains = [d for d in ("photo", "emoji", "illustration") if metrics.get(f"gate_{d}_count")]
    aucs = ", ".join(f"{d} {metrics[f'gate_{d}_auc']:.3f}" for d in domains)
    return (
        f"ROC AUC all {metrics['gate_all_auc']:.3f} ({aucs}); at the stored threshold it "
        f"catches {metrics['gate_all_recall']:.0%} of the harmful images and flags "
        f"{metrics['gate_all_safe_flagged']:.1%} of the safe ones"
    )


def describe_champion(tags: dict[str, str]) -> str:
    """What the champion is, from its version tags: a trained candidate or the untrained prior."""
    recipe = tags.get("recipe", "")
    if recipe == "prior":
        why = tags.get("promotion_reason", "")
        why = why.split(" (", 1)[0] if why else "set by hand"
        return f"the untrained prior (recipe=prior): {why}"
    decision = tags.get("promotion_decision", "?")
    return f"a trained model (recipe={recipe or '?'}, not the prior; {decision})"


def metrics_url(settings: Settings) -> str | None:
    """The consumer's ``/metrics`` address, or None if ``serving.metrics_port`` is off."""
    serving = settings.serving
    if serving.metrics_port is None or serving.metrics_port == 0:
        return None
    return f"http://{serving.metrics_host}:{serving.metrics_port}/metrics"


def wait_for_champion(
    settings: Settings,
    version: str,
    timeout: float,
    emit: Emit,
    serve_run: str | None = None,
    poll_s: float = 1.0,
) -> None:
    """Wait until the consumer reports (``harmscan_model_info``) that it serves ``version``.

    A running consumer checks the alias every ``serving.swap_check_interval_s`` and swaps the
    new model in between batches; a new one loads the champion at start.

    Raises:
        DemoError: The consumer serves another version (or does not answer) after ``timeout``,
            or the serve run ``serve_run`` ended.
    """
    from serving.metrics import served_model

    url = metrics_url(settings)
    if url is None:
        emit("      serving.metrics_port is off: cannot check which version the consumer serves")
        return
    interval = settings.serving.swap_check_interval_s
    emit(f"      waiting for the consumer to serve v{version} (it checks every {interval:g}s)")
    started = time.monotonic()
    next_check = started + 5
    seen: dict[str, str] | None = None
    while time.monotonic() - started < timeout:
        seen = served_model(url)
        if seen is not None and seen.get("version") == version:
            emit(f"      the consumer serves {seen.get('name')} v{version} ({seen.get('runtime')})")
            return
        if serve_run and time.monotonic() > next_check:
            check_serving(settings, serve_run)
            next_check = time.monotonic() + 5
        time.sleep(poll_s)
    raise DemoError(_not_serving(settings, version, seen, url, timeout))


def _not_serving(
    settings: Settings, version: str, seen: dict[str, str] | None, url: str, timeout: float
) -> str:
    log = f"{settings.paths.services}/prefect-worker.log"
    if seen is None:
        return (
            f"the consumer's metrics at {url} did not answer within {timeout:.0f}s; is the serve "
            f"run up (serving.metrics_port)? see {log}"
        )
    return (
        f"the consumer still serves v{seen.get('version')} {timeout:.0f}s after v{version} became "
        f"champion; it checks the alias every serving.swap_check_interval_s "
        f"({settings.serving.swap_check_interval_s:g}s): lower that setting or wait longer; see "
        f"{log}"
    )


def check_serving(settings: Settings, run_id: str) -> None:
    from prefect.client.orchestration import get_client

    from stack.deploy import prefect_api

    with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    if state is not None and state.is_final():
        raise DemoError(
            f"the serve run ended as {state.name}: {state.message}; see "
            f"{settings.paths.services}/prefect-worker.log"
        )
