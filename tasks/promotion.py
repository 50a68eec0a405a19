"""The promotion gate against the registry: evaluate, decide, move the alias, record why.

`promote_candidate` scores a registered candidate and the current champion on the candidate's
test split (each with its own preset and threshold), decides with the pure
`harmscan.promotion.decide_gate`, and moves ``champion`` (or ``challenger``) with the decision as
version tags. More evaluation sets join the gate in `gate_evaluations`. `force_champion` and
`rollback_target` are the manual moves of ``harmscan promote``. `promote_task` is the Prefect task.

With a photo gate set, `tasks.photogate.photo_gate` also scores candidate, champion and the
untrained prior there (overall and per domain); `promote_by_hand` is ``harmscan promote VERSION``
under that gate.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import get_run_logger, task

from conf.settings import MlflowSettings
from harmscan.data import dataset_version, leaked_fraction, read_manifest
from harmscan.promotion import Evaluation, GatePolicy, PromotionResult, decide_gate
from registry import CHALLENGER, CHAMPION, Registry, RegistryError
from tasks.evaluation import evaluate_version
from tasks.photogate import is_prior, photo_gate

logger = logging.getLogger(__name__)


def gate_policy(ml: MlflowSettings) -> GatePolicy:
    """The gate's policy from the ``mlflow`` settings."""
    return GatePolicy(ml.promotion_metric, dict(ml.floors), ml.min_improvement)


def gate_evaluations(
    registry: Registry,
    name: str,
    version: str,
    champion: str | None,
    dataset: Path,
    *,
    batch_size: int = 32,
) -> list[Evaluation]:
    """Every evaluation set of the gate: today the candidate's test split against the champion."""
    candidate = evaluate_version(registry, name, version, dataset, batch_size=batch_size)
    baseline = None
    if champion is not None and champion != version:
        baseline = evaluate_version(registry, name, champion, dataset, batch_size=batch_size)
    return [Evaluation("test", candidate, baseline, "champion", champion if baseline else None)]


def promote_candidate(
    registry: Registry,
    name: str,
    version: str,
    dataset: Path,
    policy: GatePolicy,
    *,
    batch_size: int = 32,
    gate_set: Path | None = None,
    gate_tolerance: float = 0.02,
) -> PromotionResult:
    """The promotion gate: move ``champion`` to ``version`` only if it beats the current one.

    A candidate that passes every evaluation set gets alias ``champion``; otherwise it gets
    ``challenger``. The decision and its reason are set as tags on the candidate version.

    With a ``gate_set`` (a fixed photo set), a candidate that passes must also score no more
    than ``gate_tolerance`` below the champion there, and no more than that below the untrained
    prior (the version tagged ``recipe=prior``), overall and in every domain with both classes
    (`photo_gate`); a refusal there is the decision's reason. This does not move the prior:
    `promote_prior_if_needed` does, once every candidate of a run is decided.

    Raises:
        RegistryError: No such version.
        RegistryUnavailable: The registry could not be reached.
    """
    champion = registry.alias_version(name, CHAMPION)
    evaluations = gate_evaluations(
        registry, name, version, champion, dataset, batch_size=batch_size
    )
    decision = decide_gate(evaluations, policy)
    promoted, reason, by_prior = decision.promote, decision.reason, False
    if gate_set is not None and promoted and champion != version:
        gated = photo_gate(
            registry, name, version, champion, gate_set, policy.metric, gate_tolerance
        )
        if not gated.promote:
            promoted, reason, by_prior = False, gated.reason, gated.refused_by_prior
        else:  # the tags say what the candidate was compared with on the gate set, and how
            reason = f"{reason}; {gated.reason}"
    if champion == version:
        promoted, reason = True, "already champion"
    first = decision.checks[0][1]
    leaked = None
    if (
        evaluations[0].baseline is not None
        and champion is not None
        and not is_prior(registry, name, champion)
    ):
        leaked = champion_leak(registry, name, champion, dataset)
    result = PromotionResult(
        model_name=name,
        candidate_version=version,
        champion_version=champion,
        promoted=promoted,
        alias=CHAMPION if promoted else CHALLENGER,
        reason=reason,
        metric=policy.metric,
        candidate_value=first.candidate,
        champion_value=first.champion,
        evaluations=tuple(evaluations),
        champion_saw_test_fraction=leaked,
        refused_by_prior=by_prior,
    )
    record_promotion(registry, result, dataset_version(dataset))
    return result


def record_promotion(registry: Registry, result: PromotionResult, dataset: str) -> None:
    """Move the candidate's alias, tag it with the decision, and mark a replaced champion."""
    name, version, champion = result.model_name, result.candidate_version, result.champion_version
    tags = decision_tags(result, dataset)
    if result.champion_saw_test_fraction:
        logger.warning(
            "champion v%s trained on %.1f%% of this test split: its score is optimistic",
            champion,
            100 * result.champion_saw_test_fraction,
        )
    registry.set_alias(name, result.alias, version, tags)
    if result.promoted and champion is not None and champion != version:
        registry.set_version_tags(name, champion, {"superseded_by": version})
    logger.info("%s version %s: %s (%s)", name, version, result.verdict, result.reason)


def decision_tags(result: PromotionResult, dataset: str) -> dict[str, str]:
    """The version tags that record a gate decision."""
    champion_value = result.champion_value
    tags = {
        "promotion_decision": result.verdict,
        "promotion_reason": result.reason,
        "promotion_metric": result.metric,
        "promotion_candidate_value": f"{result.candidate_value:.6f}",
        "promotion_champion_value": "none" if champion_value is None else f"{champion_value:.6f}",
        "promotion_champion_version": result.champion_version or "none",
        "promotion_dataset_version": dataset,
    }
    for evaluation in result.evaluations[1:]:
        value = evaluation.candidate.get(result.metric)
        if value is not None:
            tags[f"promotion_{evaluation.name}_candidate_value"] = f"{value:.6f}"
    if result.champion_saw_test_fraction is not None:
        tags["promotion_champion_saw_test_fraction"] = f"{result.champion_saw_test_fraction:.4f}"
    return tags


def champion_leak(registry: Registry, name: str, champion: str, dataset: Path) -> float | None:
    """How much of ``dataset``'s test split the champion trained on, when its dataset is at hand.

    The ETL keeps dataset versions side by side (``<datasets>/<version>/``); None when the
    champion's dataset is not there.
    """
    version = registry.model_version(name, champion).tags.get("dataset_version", "")
    folder = Path(dataset).resolve().parent / version
    if not version or not (folder / "manifest.csv").is_file():
        return None
    return leaked_fraction(read_manifest(dataset), read_manifest(folder))


def force_champion(registry: Registry, name: str, version: str, reason: str) -> str | None:
    """Point ``champion`` at ``version`` by hand (roll back / override); the previous champion.

    Raises:
        RegistryError: No such version.
    """
    previous = registry.alias_version(name, CHAMPION)
    if previous == version:  # nothing moves, and nothing of its record is rewritten
        registry.model_version(name, version)
        logger.info("%s: v%s is champion already", name, version)
        return previous
    tags = {
        "promotion_decision": "manual",
        "promotion_reason": reason,
        "promotion_champion_version": previous or "none",
    }
    registry.set_alias(name, CHAMPION, version, tags)
    if previous is not None:
        registry.set_version_tags(name, previous, {"superseded_by": version})
    logger.info("%s: champion moved by hand from %s to %s (%s)", name, previous, version, reason)
    return previous


def promote_by_hand(
    registry: Registry,
    name: str,
    version: str,
    reason: str,
    *,
    gate_set: Path,
    metric: str,
    tolerance: float,
) -> PromotionResult:
    """``harmscan promote VERSION`` with a gate set: the photo gate first, then the alias.

    The version must not be worse than the champion or the prior on the gate set, overall or in
    any domain (`photo_gate`); the test split is not scored (``--gate`` does that). A refused
    version is tagged ``promotion_decision=rejected`` and no alias moves.

    Raises:
        RegistryError: No such version.
    """
    champion = registry.alias_version(name, CHAMPION)
    decision = None
    if champion != version:
        decision = photo_gate(registry, name, version, champion, gate_set, metric, tolerance)
    promoted = decision is None or decision.promote
    why = f"{reason}; {decision.reason}" if decision is not None else reason
    checks = decision.checks if decision is not None else ()
    overall = [c for c in checks if c.domain == "all"]
    result = PromotionResult(
        model_name=name,
        candidate_version=version,
        champion_version=champion,
        promoted=promoted,
        alias=CHAMPION if promoted else "",
        reason=why,
        metric=metric,
        candidate_value=overall[0].candidate if overall else float("nan"),
        champion_value=next((c.baseline for c in overall if c.against == "champion"), None),
        refused_by_prior=decision is not None and decision.refused_by_prior,
    )
    if promoted:
        force_champion(registry, name, version, why)
    else:
        tags = {"promotion_decision": "rejected", "promotion_reason": why}
        registry.set_version_tags(name, version, tags)
        logger.info("%s v%s: not promoted by hand (%s)", name, version, why)
    return result


def rollback_target(registry: Registry, name: str) -> tuple[str, str, list[str]]:
    """The current champion, the version it replaced, and the champion history after going
    back to it.

    The alias's history (`Registry.alias_history`) is walked back one step, so a second
    rollback goes further back instead of returning to the version just rolled back; a
    registry from before the history falls back to the champion's ``promotion_champion_version``.

    Raises:
        RegistryError: No champion, or no earlier one recorded.
    """
    current = registry.alias_version(name, CHAMPION)
    if current is None:
        raise RegistryError(f"{name} has no champion to roll back")
    history = registry.alias_history(name, CHAMPION)
    if history and history[-1] == current:
        if len(history) < 2:
            raise RegistryError(
                f"{name} v{current} is the first champion recorded: nothing to go back to"
            )
        return current, history[-2], history[:-1]
    previous = registry.model_version(name, current).tags.get("promotion_champion_version")
    if not previous or previous in ("none", current):
        raise RegistryError(f"{name} v{current} records no earlier champion")
    return current, previous, [previous]


def roll_back(registry: Registry, name: str, reason: str) -> tuple[str, str]:
    """Point ``champion`` back at the version the current one replaced; (from, to).

    The restored version keeps the record of how it first became champion; both versions are
    tagged with the rollback (``rolled_back``, ``restored_by_rollback``).

    Raises:
        RegistryError: No champion, or no earlier one recorded.
    """
    current, target, history = rollback_target(registry, name)
    registry.set_alias(name, CHAMPION, target, record=False)
    registry.set_alias_history(name, CHAMPION, history)
    registry.set_version_tags(name, current, {"rolled_back": f"to v{target}: {reason}"})
    registry.set_version_tags(name, target, {"restored_by_rollback": f"from v{current}: {reason}"})
    logger.info("%s: champion rolled back from %s to %s (%s)", name, current, target, reason)
    return current, target


@task(name="promote", retries=1, retry_delay_seconds=5)
def promote_task(
    tracking_uri: str,
    name: str,
    version: str,
    dataset: Path,
    policy: GatePolicy,
    gate_set: Path | None = None,
    gate_tolerance: float = 0.02,
) -> PromotionResult:
    """Prefect task: `promote_candidate`, with the decision published as a markdown artifact."""
    from tasks.artifacts import publish_promotion

    result = promote_candidate(
        Registry(tracking_uri),
        name,
        version,
        dataset,
        policy,
        gate_set=gate_set,
        gate_tolerance=gate_tolerance,
    )
    champion = result.champion_version
    publish_promotion(
        key=f"promotion-{name}",
        promoted=result.promoted,
        model_name=name,
        alias=result.alias,
        metric=result.metric,
        challenger=(version, result.candidate_value),
        champion=(champion, result.champion_value)
        if champion is not None and result.champion_value is not None
        else None,
        reason=result.reason,
    )
    get_run_logger().info("promotion of %s v%s: %s", name, version, result.reason)
    return result
