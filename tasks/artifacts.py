"""Prefect artifacts that flow runs leave behind (metric tables, links to MLflow) and run names.

Call these from flows or tasks (they attach to the current run); each is one small function with
a fixed artifact key, so the Prefect UI's Artifacts page shows the latest table per key and its
history. The text is built by pure ``*_markdown``/``*_rows`` functions, which tests call directly.

    from tasks.artifacts import publish_metrics, publish_mlflow_links

    publish_metrics({"mobilenet_v2": {"auc": 0.91, "f1": 0.84}}, key="retrain-test-metrics")
    publish_mlflow_links(tracking_uri, runs={"mobilenet_v2": (experiment_id, run_id)})

Flow run names: ``@flow(name="retrain", flow_run_name=run_namer("retrain"))`` names each run
like ``retrain-20261125-0200-mobilenet_v2-e4`` (when it was scheduled, and the parameters that
change what it does) instead of a random ``glossy-bat``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from harmscan.metrics import DOMAINS

_KEY_BAD = re.compile(r"[^a-z0-9-]+")


def artifact_key(text: str) -> str:
    """A valid Prefect artifact key (lowercase letters, digits, dashes) made from ``text``.

    Raises:
        ValueError: Nothing usable is left of ``text``.
    """
    key = _KEY_BAD.sub("-", text.lower()).strip("-")
    if not key:
        raise ValueError(f"cannot make an artifact key from {text!r}: use letters or digits")
    return key


# Parameters that make a run different enough to show in its name, with their short form.
_NAME_PARAMS = {"models": "", "epochs": "e", "max_per_side": "n", "limit_batches": "lb"}


def run_name(kind: str, when: datetime, parameters: Mapping[str, Any]) -> str:
    """A readable flow run name: kind, UTC time, and the notable non-default parameters."""
    parts = [kind, when.astimezone(UTC).strftime("%Y%m%d-%H%M")]
    for key, short in _NAME_PARAMS.items():
        value = parameters.get(key)
        if value is None or value == []:
            continue
        text = "+".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        parts.append(f"{short}{text}")
    return "-".join(parts)


def run_namer(kind: str) -> Callable[[], str]:
    """A ``flow_run_name`` callable for ``@flow``: `run_name` of the current run."""

    def name() -> str:
        from prefect.runtime import flow_run

        when = flow_run.scheduled_start_time or datetime.now(UTC)
        return run_name(kind, when, flow_run.parameters or {})

    return name


def mlflow_run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI address of one run."""
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_model_url(tracking_uri: str, model_name: str, version: str | int | None = None) -> str:
    """The MLflow UI address of a registered model, or of one of its versions."""
    base = f"{tracking_uri.rstrip('/')}/#/models/{model_name}"
    return f"{base}/versions/{version}" if version is not None else base


def metric_rows(
    metrics: Mapping[str, Mapping[str, float]], digits: int = 4
) -> list[dict[str, Any]]:
    """One row per model: ``{"model": name, metric: value, ...}``, metric columns sorted.

    Raises:
        ValueError: ``metrics`` is empty (a table of nothing hides a failed evaluation).
    """
    if not metrics:
        raise ValueError("no metrics to publish: expected {model: {metric: value}}")
    columns = sorted({name for values in metrics.values() for name in values})
    return [
        {"model": model, **{c: _round(values.get(c), digits) for c in columns}}
        for model, values in metrics.items()
    ]


# The per-domain metrics of each scored set, as training logs them (``<set>_<domain>_<metric>``).
DOMAIN_ROW_METRICS = ("count", "auc", "recall", "safe_flagged")
DOMAIN_NAMES = ("all", *DOMAINS)


def domain_rows(
    metrics: Mapping[str, Mapping[str, float]], digits: int = 4
) -> list[dict[str, Any]]:
    """One row per model, scored set and domain with images: count, AUC, harmful caught
    (recall) and safe flagged at the stored threshold, from the ``<set>_<domain>_*`` metrics of
    each model's run (``test``, ``gate`` and the check sets such as ``iconcheck``). A value that
    is not a number (an AUC of one label) is left empty."""
    rows = []
    for model, values in metrics.items():
        for key in sorted(values):
            scored_set, _, domain = key.removesuffix("_count").rpartition("_")
            if not key.endswith("_count") or domain not in DOMAIN_NAMES or not values[key] > 0:
                continue
            row: dict[str, Any] = {"model": model, "set": scored_set, "domain": domain}
            for metric in DOMAIN_ROW_METRICS:
                value = values.get(f"{scored_set}_{domain}_{metric}")
                if value is None or math.isnan(value):
                    row[metric] = None
                else:
                    row[metric] = int(value) if metric == "count" else round(value, digits)
            rows.append(row)
    return rows


def publish_domain_metrics(
    tracking_uri: str, runs: Mapping[str, str], key: str = "domain-metrics"
) -> UUID | None:
    """Publish `domain_rows` of each model's run (model -> run id) as a table artifact; None when
    no run logged per-domain metrics."""
    from registry import Registry

    registry = Registry(tracking_uri)
    rows = domain_rows({model: registry.run_metrics(run) for model, run in runs.items()})
    if not rows:
        return None
    description = (
        "Per scored set and domain at each model's stored threshold: images, ROC AUC, harmful "
        "caught (recall), safe flagged"
    )
    return publish_table(rows, key=key, description=description)


def mlflow_links_markdown(
    tracking_uri: str,
    runs: Mapping[str, tuple[str, str]],
    model_name: str | None = None,
    versions: Mapping[str, str | int] | None = None,
    title: str = "MLflow runs",
) -> str:
    """Markdown with a link per MLflow run (and registered model version, when given).

    Args:
        tracking_uri: The MLflow server's address, as the user's browser reaches it.
        runs: Label (e.g. architecture) -> (experiment id, run id).
        model_name: The registered model, to link its versions.
        versions: Label -> registered model version of that run.
        title: The heading.
    """
    lines = [f"# {title}", "", "| model | run | registered version |", "|---|---|---|"]
    for label, (experiment_id, run_id) in runs.items():
        run_link = f"[{run_id[:8]}]({mlflow_run_url(tracking_uri, experiment_id, run_id)})"
        version = (versions or {}).get(label)
        version_link = (
            f"[{model_name} v{version}]({mlflow_model_url(tracking_uri, model_name, version)})"
            if model_name and version is not None
            else "-"
        )
        lines.append(f"| {label} | {run_link} | {version_link} |")
    if model_name:
        lines += ["", f"Registry: [{model_name}]({mlflow_model_url(tracking_uri, model_name)})"]
    return "\n".join(lines) + "\n"


def promotion_markdown(
    *,
    promoted: bool,
    model_name: str,
    alias: str,
    metric: str,
    challenger: tuple[str | int, float],
    champion: tuple[str | int, float] | None,
    reason: str,
) -> str:
    """Markdown of a promotion decision: challenger vs current champion on one metric."""
    verdict = "promoted" if promoted else "kept the current champion"
    lines = [
        f"# Promotion: {verdict}",
        "",
        f"| | version | {metric} |",
        "|---|---|---|",
        f"| challenger | {challenger[0]} | {challenger[1]:.4f} |",
    ]
    if champion is not None:
        lines.append(f"| champion before | {champion[0]} | {champion[1]:.4f} |")
    lines += ["", f"`models:/{model_name}@{alias}` — {reason}"]
    return "\n".join(lines) + "\n"


def publish_metrics(
    metrics: Mapping[str, Mapping[str, float]],
    key: str = "metrics",
    description: str | None = None,
) -> UUID:
    """Publish a model x metric table artifact (e.g. test metrics of each architecture)."""
    from prefect.artifacts import create_table_artifact

    return create_table_artifact(
        metric_rows(metrics), key=artifact_key(key), description=description
    )


def publish_table(
    rows: Sequence[Mapping[str, Any]], key: str, description: str | None = None
) -> UUID:
    """Publish any list of rows (dataset counts, per-image results) as a table artifact."""
    from prefect.artifacts import create_table_artifact

    return create_table_artifact(
        [dict(row) for row in rows], key=artifact_key(key), description=description
    )


def publish_mlflow_links(
    tracking_uri: str,
    runs: Mapping[str, tuple[str, str]],
    model_name: str | None = None,
    versions: Mapping[str, str | int] | None = None,
    key: str = "mlflow-runs",
) -> UUID:
    """Publish a markdown artifact linking each MLflow run and registered version."""
    from prefect.artifacts import create_markdown_artifact

    text = mlflow_links_markdown(tracking_uri, runs, model_name, versions)
    return create_markdown_artifact(text, key=artifact_key(key), description="MLflow runs")


def publish_promotion(key: str = "promotion", **decision: Any) -> UUID:
    """Publish the promotion decision (see `promotion_markdown` for the arguments)."""
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(
        promotion_markdown(**decision), key=artifact_key(key), description="Promotion decision"
    )


def publish_markdown(text: str, key: str, description: str | None = None) -> UUID:
    """Publish free markdown (a summary, a link list) under ``key``."""
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(text, key=artifact_key(key), description=description)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)
