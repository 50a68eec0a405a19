"""The promotion gate over named evaluation sets, and its typed result (pure).

A candidate is scored on one or more named evaluation sets (``test``: the candidate's own test
split against the current champion; further sets, e.g. a fixed photo gate set or an untrained
prior as baseline, are more `Evaluation` entries). `decide_gate` applies
`harmscan.metrics.decide_promotion` to each set and promotes only if every set passes.
`PromotionResult` is what a gate run returns to flows and the CLI.

The photo gate set's check against the champion and the untrained prior is
`harmscan.photogate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harmscan.metrics import PromotionDecision, decide_promotion


@dataclass(frozen=True)
class GatePolicy:
    """How a candidate must score (``mlflow.promotion_metric``, ``floors``, ``min_improvement``).

    Attributes:
        metric: Metric compared with the baseline (higher is better).
        floors: Minimum value of each named metric.
        min_improvement: How much the candidate must beat the baseline by.
    """

    metric: str
    floors: dict[str, float] = field(default_factory=dict)
    min_improvement: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    """The candidate's metrics on one named evaluation set, and its baseline's there.

    Attributes:
        name: Name of the set (``test``, ``gate``, ...), shown in reasons and tags.
        candidate: The candidate's metrics (`harmscan.metrics.binary_metrics`).
        baseline: The baseline's metrics on the same set, or None (no baseline: floors only).
        against: What the baseline is (``champion``, ``prior``), for the reason.
        baseline_version: Registered version of the baseline, if it has one.
        floors: This set's floors; None uses the policy's.
    """

    name: str
    candidate: dict[str, float]
    baseline: dict[str, float] | None = None
    against: str = "champion"
    baseline_version: str | None = None
    floors: dict[str, float] | None = None


@dataclass(frozen=True)
class GateDecision:
    """The decision on every evaluation set, and the overall verdict.

    Attributes:
        promote: Every set passed.
        reason: Why (the failing sets' reasons, or every set's reason when all passed).
        checks: Each set's name and decision, in evaluation order.
    """

    promote: bool
    reason: str
    checks: tuple[tuple[str, PromotionDecision], ...]

    def check(self, name: str) -> PromotionDecision:
        """The decision on set ``name``.

        Raises:
            KeyError: No such set.
        """
        for set_name, decision in self.checks:
            if set_name == name:
                return decision
        raise KeyError(f"no evaluation set {name!r}; have {[n for n, _ in self.checks]}")


def decide_gate(evaluations: Sequence[Evaluation], policy: GatePolicy) -> GateDecision:
    """Promote only if the candidate passes on every evaluation set.

    Raises:
        ValueError: No evaluation, duplicate set names, or an unknown metric (names the valid).
    """
    if not evaluations:
        raise ValueError("the promotion gate needs at least one evaluation set")
    names = [e.name for e in evaluations]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluation set names must be unique, got {names}")
    checks = tuple(
        (
            e.name,
            decide_promotion(
                e.candidate,
                e.baseline,
                metric=policy.metric,
                floors=policy.floors if e.floors is None else e.floors,
                min_improvement=policy.min_improvement,
                against=e.against,
            ),
        )
        for e in evaluations
    )
    failed = [(name, d) for name, d in checks if not d.promote]
    shown = failed or list(checks)
    if len(checks) == 1:
        reason = checks[0][1].reason
    else:
        reason = "; ".join(f"{name}: {d.reason}" for name, d in shown)
    return GateDecision(not failed, reason, checks)


@dataclass(frozen=True)
class PromotionResult:
    """What one run of the promotion gate did.

    Attributes:
        model_name: Registered model name.
        candidate_version: The version gated.
        champion_version: The champion before the gate (None: there was none).
        promoted: The candidate took the champion alias.
        alias: The alias the candidate got (``champion`` or ``challenger``).
        reason: Why.
        metric: The compared metric.
        candidate_value: The candidate's ``metric`` on the first set (its test split).
        champion_value: The champion's ``metric`` there (None: no champion was scored).
        evaluations: Every evaluation set's metrics.
        champion_saw_test_fraction: Share of the test split the champion trained on, if known.
        refused_by_prior: The photo gate refused the candidate as worse than the prior.
    """

    model_name: str
    candidate_version: str
    champion_version: str | None
    promoted: bool
    alias: str
    reason: str
    metric: str
    candidate_value: float
    champion_value: float | None
    evaluations: tuple[Evaluation, ...] = ()
    champion_saw_test_fraction: float | None = None
    refused_by_prior: bool = False

    @property
    def candidate_metrics(self) -> dict[str, float]:
        """The candidate's metrics on the first evaluation set (its test split)."""
        return dict(self.evaluations[0].candidate) if self.evaluations else {}

    @property
    def verdict(self) -> str:
        """``promoted`` or ``rejected`` (``manual`` moves are not gate results)."""
        return "promoted" if self.promoted else "rejected"
