"""The promotion gate over named evaluation sets and its typed result (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from harmscan.photogate import (
    FALLBACK_REASON,
    Baseline,
    decide_photo_gate,
    gate_domains,
    prior_fallback,
)
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


# --- the photo gate set: overall and per domain, against champion and prior ---------------------

NAN = float("nan")


def _scores(all_auc: float, **domains: float) -> dict[str, float]:
    out = {"auc": all_auc, "all_auc": all_auc}
    for domain in ("photo", "illustration", "emoji"):
        out[f"{domain}_auc"] = domains.get(domain, NAN)
    return out


def test_gate_domains_are_those_with_both_classes() -> None:
    labels = [1, 0, 1, 1, 0]
    domains = ["photo", "photo", "emoji", "emoji", "illustration"]
    assert gate_domains(labels, domains) == ("photo",)
    assert gate_domains([*labels, 0], [*domains, "emoji"]) == ("emoji", "photo")
    with pytest.raises(ValueError, match="2 labels for 1 domains"):
        gate_domains([0, 1], ["photo"])


@pytest.mark.parametrize(
    ("candidate", "promote", "named"),
    [
        (_scores(0.95, photo=0.95, emoji=0.95), True, []),
        (
            _scores(0.95, photo=0.95, emoji=0.85),
            False,
            ["emoji auc 0.8500 worse than champion v4", "worst-domain auc 0.8500 worse than prior"],
        ),
        (_scores(0.95, photo=0.80, emoji=0.95), False, ["photo auc 0.8000 worse than champion v4"]),
        (_scores(0.80, photo=0.95, emoji=0.95), False, ["all auc 0.8000 worse than champion v4"]),
        (_scores(0.95, photo=NAN, emoji=0.95), False, ["photo auc nan worse than"]),
        (_scores(0.939, photo=0.95, emoji=0.95), True, []),  # within the tolerance of 0.02
    ],
)
def test_photo_gate_refuses_a_candidate_worse_in_any_domain(
    candidate: dict[str, float], promote: bool, named: list[str]
) -> None:
    baselines = [
        Baseline("champion", "4", _scores(0.95, photo=0.90, emoji=0.90)),
        Baseline("prior", "1", _scores(0.90, photo=0.95, emoji=0.95)),
    ]
    decision = decide_photo_gate(
        candidate, baselines, metric="auc", domains=["emoji", "photo"], tolerance=0.02
    )
    assert decision.promote is promote
    for text in named:
        assert text in decision.reason
    if not promote:
        assert "beyond -0.02" in decision.reason
    # (all, emoji, photo) against the champion, (all, worst domain) against the prior
    assert [(c.against, c.domain) for c in decision.checks] == [
        ("champion", "all"), ("champion", "emoji"), ("champion", "photo"),
        ("prior", "all"), ("prior", "worst"),
    ]  # fmt: skip


def test_photo_gate_against_the_prior_compares_worst_domains() -> None:
    # The measured shape: the prior is best on photos and worst on emoji; the main job's
    # probe + prior trades a little photo AUC for much emoji AUC (bench/recipe_bench.py).
    prior = Baseline("prior", "1", _scores(0.816, photo=0.982, emoji=0.747))
    trained = _scores(0.920, photo=0.938, emoji=0.904)
    decision = decide_photo_gate(
        trained, [prior], metric="auc", domains=["emoji", "photo"], tolerance=0.02
    )
    assert decision.promote, decision.reason
    # the same candidate against a champion that was that good on photos: photos regressed
    champion = Baseline("champion", "4", _scores(0.920, photo=0.968, emoji=0.904))
    regressed = decide_photo_gate(
        trained, [champion, prior], metric="auc", domains=["emoji", "photo"], tolerance=0.02
    )
    assert not regressed.promote
    assert not regressed.refused_by_prior
    assert "photo auc 0.9380 worse than champion v4 0.9680" in regressed.reason
    # a candidate whose worst domain is below the prior's worst domain did not help
    weak = _scores(0.85, photo=0.99, emoji=0.70)
    refused = decide_photo_gate(
        weak, [prior], metric="auc", domains=["emoji", "photo"], tolerance=0.02
    )
    assert not refused.promote
    assert refused.refused_by_prior
    assert refused.reason == (
        "gate set: worst-domain auc 0.7000 worse than prior v1 0.7470 beyond -0.02"
    )


def test_photo_gate_knows_who_refused() -> None:
    baselines = [
        Baseline("champion", "4", _scores(0.5, photo=0.5)),
        Baseline("prior", "1", _scores(0.99, photo=0.99)),
    ]
    decision = decide_photo_gate(
        _scores(0.7, photo=0.7), baselines, metric="auc", domains=["photo"], tolerance=0.02
    )
    assert not decision.promote
    assert decision.refused_by_prior
    assert "champion" not in decision.reason  # only failing checks are named
    assert decision.reason == (
        "gate set: all auc 0.7000 worse than prior v1 0.9900 beyond -0.02; "
        "worst-domain auc 0.7000 worse than prior v1 0.9900 beyond -0.02"
    )
    by_champion = decide_photo_gate(
        _scores(0.7, photo=0.7), baselines[:1][::-1], metric="auc", domains=[], tolerance=0.0
    )
    assert by_champion.promote  # 0.7 >= 0.5
    worse = decide_photo_gate(
        _scores(0.4, photo=0.4), baselines[:1], metric="auc", domains=[], tolerance=0.0
    )
    assert not worse.promote
    assert not worse.refused_by_prior


def test_photo_gate_per_domain_metric_and_bad_input() -> None:
    # f1 is not measured per domain: the domains are compared on auc
    candidate = {**_scores(0.9, photo=0.6), "f1": 0.9}
    baseline = Baseline("prior", "1", {**_scores(0.9, photo=0.9), "f1": 0.5})
    decision = decide_photo_gate(
        candidate, [baseline], metric="f1", domains=["photo"], tolerance=0.02
    )
    assert not decision.promote
    assert "worst-domain auc 0.6000 worse than prior v1 0.9000" in decision.reason
    nothing = decide_photo_gate(candidate, [], metric="auc", domains=["photo"], tolerance=0.02)
    assert nothing.promote
    assert "no champion or prior" in nothing.reason
    with pytest.raises(ValueError, match="lack 'emoji_recall'"):
        decide_photo_gate(
            {"recall": 1.0}, [Baseline("prior", "1", {"recall": 1.0})], metric="recall",
            domains=["emoji"], tolerance=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="unknown promotion metric 'ece'"):
        decide_photo_gate(candidate, [baseline], metric="ece", domains=[], tolerance=0)


def _result(version: str, *, promoted: bool = False, by_prior: bool = True) -> PromotionResult:
    return PromotionResult(
        model_name="m",
        candidate_version=version,
        champion_version=None,
        promoted=promoted,
        alias="champion" if promoted else "challenger",
        reason=f"gate set: all auc 0.5 worse than prior v1 ({version})",
        metric="auc",
        candidate_value=0.9,
        champion_value=None,
        refused_by_prior=by_prior,
    )


@pytest.mark.parametrize(
    ("champion", "prior", "results", "falls_back"),
    [
        (None, "1", [_result("2"), _result("3")], True),
        (None, "1", [_result("2")], True),
        ("2", "1", [_result("3")], False),  # a champion serves already
        (None, None, [_result("2")], False),  # no prior registered
        (None, "1", [], False),  # nothing was gated
        # the other candidate failed earlier checks (floors): it may not serve either
        (None, "1", [_result("2"), _result("3", by_prior=False)], True),
        (None, "1", [_result("2", by_prior=False)], False),  # nothing was compared with the prior
        (None, "1", [_result("2"), _result("3", promoted=True)], False),
    ],
)
def test_prior_serves_only_when_every_candidate_lost_to_it(
    champion: str | None, prior: str | None, results: list[PromotionResult], falls_back: bool
) -> None:
    reason = prior_fallback(champion, prior, results)
    assert (reason is not None) is falls_back
    if reason is not None:
        assert reason.startswith(FALLBACK_REASON)
        assert all(f"v{r.candidate_version}: " in reason for r in results)
