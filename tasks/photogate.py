"""The photo gate set against the registry: score candidate, champion and prior; the fallback.

`photo_gate` scores a candidate, the champion and the untrained prior (the version tagged
``recipe=prior``) on the verified gate set and decides with the pure
`harmscan.photogate.decide_photo_gate` (overall and in every domain with both classes).
`promote_prior_if_needed` makes the prior champion when nothing is champion, no candidate of a
run was promoted and one lost to it there, so serving always gets the best model there is;
`prior_fallback_task` is its Prefect task.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from prefect import get_run_logger, task

from harmscan.gateset import load_photo_set
from harmscan.photogate import (
    PRIOR,
    Baseline,
    PhotoGateDecision,
    decide_photo_gate,
    gate_domains,
    prior_fallback,
)
from harmscan.promotion import PromotionResult
from registry import CHAMPION, Registry
from tasks.recipes import PRIOR_TAG, Scored, photo_metrics, prior_version, score_version

logger = logging.getLogger(__name__)


def photo_gate(
    registry: Registry,
    name: str,
    version: str,
    champion: str | None,
    gate_set: Path,
    metric: str,
    tolerance: float,
) -> PhotoGateDecision:
    """The gate-set checks: the candidate may not be worse than the champion or the prior there.

    Scores the candidate, the champion and the prior (each at its own preset and threshold) on
    the verified gate set, and decides with `harmscan.photogate.decide_photo_gate` overall and
    in every domain that holds both classes. A champion that is the prior is compared once.
    """
    photos = load_photo_set(gate_set)
    domains = gate_domains(photos.targets, list(photos.manifest["domain"]))
    prior = prior_version(registry, name)
    others = {"champion": champion, PRIOR: prior}
    if champion is not None and champion == prior:
        others["champion"] = None
    curves: dict[str, tuple[Scored, float]] = {}

    def measured(role: str, scored_version: str) -> dict[str, float]:
        scored, threshold = score_version(registry, name, scored_version, photos)
        curves[f"v{scored_version} ({role})"] = (scored, threshold)
        return photo_metrics(scored, threshold)

    candidate = measured("candidate", version)
    baselines = [
        Baseline(against, other, measured(against, other))
        for against, other in others.items()
        if other is not None and other != version
    ]
    decision = decide_photo_gate(
        candidate, baselines, metric=metric, domains=domains, tolerance=tolerance
    )
    logger.info("gate set %s, %s v%s: %s", photos.version, name, version, decision.reason)
    _log_gate_picture(registry, name, version, photos.version, curves)
    return decision


def _log_gate_picture(
    registry: Registry,
    name: str,
    version: str,
    set_version: str,
    curves: dict[str, tuple[Scored, float]],
) -> None:
    """``promotion/gate_set_roc_by_domain.png`` on the candidate's run: its ROC curves per domain
    beside the champion's and the prior's, a dot at each stored threshold. Best effort: a picture
    that cannot be logged is a warning, never part of the decision."""
    from mlflow.exceptions import MlflowException

    from harmscan.modelcard import plot_roc_by_domain

    run_id = registry.model_version(name, version).run_id
    if not run_id:
        return
    drawn = {k: (s.y, s.p, s.domains, t) for k, (s, t) in curves.items()}
    try:
        with tempfile.TemporaryDirectory(prefix="harmscan-gate-roc-") as tmp:
            path = Path(tmp) / "gate_set_roc_by_domain.png"
            plot_roc_by_domain(drawn, path, f"{name} v{version} on gate set {set_version}")
            registry.client.log_artifacts(run_id, tmp, "promotion")
    except (MlflowException, OSError) as exc:
        logger.warning("gate-set picture of %s v%s not logged: %s", name, version, exc)


def is_prior(registry: Registry, name: str, version: str) -> bool:
    """Whether ``version`` is the registered untrained prior (tag ``recipe=prior``)."""
    return registry.model_version(name, version).tags.get(PRIOR_TAG) == PRIOR


def promote_prior_if_needed(
    registry: Registry, name: str, results: list[PromotionResult]
) -> PromotionResult | None:
    """Make the prior champion when nothing is champion and no candidate beat it (see below).

    ``results`` are the decisions of one run (`harmscan.photogate.prior_fallback`). The prior
    gets alias ``champion`` with ``promotion_decision=fallback`` and the reason as tags; a later
    candidate that passes the gate replaces it like any champion. Returns what was done, or None.
    """
    champion = registry.alias_version(name, CHAMPION)
    prior = prior_version(registry, name)
    reason = prior_fallback(champion, prior, results)
    if reason is None or prior is None:
        return None
    tags = {
        "promotion_decision": "fallback",
        "promotion_reason": reason,
        "promotion_champion_version": "none",
        "promotion_refused_versions": ",".join(r.candidate_version for r in results),
    }
    registry.set_alias(name, CHAMPION, prior, tags)
    logger.warning("%s: the untrained prior v%s is champion: %s", name, prior, reason)
    return PromotionResult(
        model_name=name,
        candidate_version=prior,
        champion_version=None,
        promoted=True,
        alias=CHAMPION,
        reason=reason,
        metric=results[0].metric,
        candidate_value=float("nan"),  # the prior's own scores are in the refusals' reasons
        champion_value=None,
    )


@task(name="prior-fallback", retries=1, retry_delay_seconds=5)
def prior_fallback_task(
    tracking_uri: str, name: str, results: list[PromotionResult]
) -> PromotionResult | None:
    """Prefect task: `promote_prior_if_needed` after every candidate of a run was gated."""
    result = promote_prior_if_needed(Registry(tracking_uri), name, results)
    if result is not None:
        get_run_logger().warning(
            "the untrained prior %s v%s serves as champion: %s",
            name,
            result.candidate_version,
            result.reason,
        )
    return result
