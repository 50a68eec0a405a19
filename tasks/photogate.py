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
from tasks.recipes import PRIOR_TAG, evaluate_version_on_photos, prior_version

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
    baselines = [
        Baseline(against, other, evaluate_version_on_photos(registry, name, other, gate_set))
        for against, other in others.items()
        if other is not None and other != version
    ]
    candidate = evaluate_version_on_photos(registry, name, version, gate_set)
    decision = decide_photo_gate(
        candidate, baselines, metric=metric, domains=domains, tolerance=tolerance
    )
    logger.info("gate set %s, %s v%s: %s", photos.version, name, version, decision.reason)
    return decision


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
