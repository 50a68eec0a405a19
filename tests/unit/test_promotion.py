"""The promotion gate over named evaluation sets and its typed result (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from harmscan.promotion import Evaluation, GatePolicy, PromotionResult, decide_gate

POLICY = GatePolicy(metric="auc", floors={"accuracy": 0.6}, min_improvement=0.01)
GOOD = {"auc": 0.90, "accuracy": 0.80}


def test_one_set_keeps_the_single_decision_reason() -> None:
    decision = decide_gate([Evaluation("test", GOOD, {"auc": 0.85, "accuracy": 0.8})], POLICY)
    assert decision.promote is True
    assert decision.reason.startswith("auc 0.9000 beats champion 0.8500")
    assert decision.check("test").champion == pytest.approx(0.85)


BETTER = ({"auc": 0.70, "accuracy": 0.7}, {"auc": 0.50, "accuracy": 0.5})
WORSE = ({"auc": 0.50, "accuracy": 0.7}, {"auc": 0.55, "accuracy": 0.5})
BELOW_FLOOR = ({"auc": 0.90, "accuracy": 0.5}, None)


@pytest.mark.parametrize(
    ("gate", "promote", "reason"),
    [
        (BETTER, True, "gate: auc 0.7000 beats prior"),
        (WORSE, False, "gate: auc 0.5000 does not beat prior 0.5500"),
        (BELOW_FLOOR, False, "gate: below floors: accuracy=0.5000 < 0.6"),
    ],
)
def test_every_set_must_pass(
    gate: tuple[dict[str, float], dict[str, float] | None], promote: bool, reason: str
) -> None:
    evaluations = [
        Evaluation("test", GOOD, {"auc": 0.80, "accuracy": 0.8}),
        Evaluation("gate", gate[0], gate[1], against="prior"),
    ]
    decision = decide_gate(evaluations, POLICY)
    assert decision.promote is promote
    assert reason in decision.reason
    assert ("test: " in decision.reason) is promote  # a failure shows only the failing sets
    assert [name for name, _ in decision.checks] == ["test", "gate"]


def test_a_set_can_carry_its_own_floors() -> None:
    lenient = Evaluation("gate", {"auc": 0.7, "accuracy": 0.1}, None, floors={})
    assert decide_gate([Evaluation("test", GOOD), lenient], POLICY).promote is True


@pytest.mark.parametrize(
    ("evaluations", "match"),
    [
        ([], "at least one evaluation set"),
        ([Evaluation("test", GOOD), Evaluation("test", GOOD)], "unique"),
    ],
)
def test_rejects_bad_gates(evaluations: list[Evaluation], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decide_gate(evaluations, POLICY)


def test_unknown_set_names_the_known_ones() -> None:
    decision = decide_gate([Evaluation("test", GOOD)], POLICY)
    with pytest.raises(KeyError, match="have \\['test'\\]"):
        decision.check("gate")


def test_result_is_typed_and_frozen() -> None:
    evaluation = Evaluation("test", GOOD, None)
    result = PromotionResult(
        model_name="harmscan",
        candidate_version="3",
        champion_version=None,
        promoted=True,
        alias="champion",
        reason="no current champion; floors passed",
        metric="auc",
        candidate_value=0.9,
        champion_value=None,
        evaluations=(evaluation,),
    )
    assert result.verdict == "promoted"
    assert result.candidate_metrics == GOOD
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.promoted = False  # type: ignore[misc]
