"""The int8 check's groups: every check set's domains apart, or each domain pooled over the sets."""

from __future__ import annotations

import numpy as np
import pytest

from harmscan.int8check import check_int8_groups, domain_groups, judged_groups


def _masks(n: int, **ranges: tuple[int, int]) -> dict[str, np.ndarray]:
    out = {}
    for name, (start, stop) in ranges.items():
        mask = np.zeros(n, dtype=bool)
        mask[start:stop] = True
        out[name.replace("__", "/")] = mask
    return out


def test_domain_groups_pool_every_sets_images_of_a_domain() -> None:
    groups = _masks(10, val=(0, 6), val__emoji=(0, 3), val__illustration=(3, 6),
                    gate=(6, 10), gate__emoji=(6, 8), gate__photo=(8, 10))  # fmt: skip
    pooled = domain_groups(groups)
    assert list(pooled) == ["emoji", "illustration", "photo"]
    assert np.flatnonzero(pooled["emoji"]).tolist() == [0, 1, 2, 6, 7]
    assert np.flatnonzero(pooled["illustration"]).tolist() == [3, 4, 5]
    assert np.flatnonzero(pooled["photo"]).tolist() == [8, 9]
    assert not groups["val/emoji"][6]  # the inputs are not changed


def test_judged_groups_split_domain_judges_as_given_and_domain_logs_the_sets() -> None:
    groups = _masks(4, val=(0, 2), val__emoji=(0, 2), gate=(2, 4), gate__emoji=(2, 4))
    judged, logged = judged_groups(groups, "split-domain")
    assert list(judged) == ["val", "val/emoji", "gate", "gate/emoji"]
    assert logged == {}
    judged, logged = judged_groups(groups, "domain")
    assert list(judged) == ["emoji"]
    assert list(logged) == ["val", "val/emoji", "gate", "gate/emoji"]


def test_unknown_check_groups_name_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="split-domain, domain"):
        judged_groups({}, "set")  # type: ignore[arg-type]


def test_a_domain_named_like_a_check_set_is_refused() -> None:
    with pytest.raises(ValueError, match="'gate'"):
        domain_groups(_masks(4, gate=(0, 2), val__gate=(2, 4)))


def _emoji_case(val_loss: bool, gate_size: int) -> tuple[np.ndarray, ...]:
    """Validation emoji (20 harmful, 20 safe) scored in the middle of the scale and gate-set
    emoji (``gate_size`` harmful, ``gate_size`` x 8 safe) at its ends, all ranked perfectly by
    float; with ``val_loss`` int8 drops two harmful validation emoji among the validation safe
    ones: 20 of their 400 pairs reversed (-0.05 AUC there), no pair with a gate-set image."""
    y = np.concatenate([np.tile([0, 1], 20), np.r_[np.ones(gate_size), np.zeros(gate_size * 8)]])
    p_float = np.empty(y.size)
    p_float[:40][y[:40] == 0] = np.linspace(0.30, 0.40, 20)
    p_float[:40][y[:40] == 1] = np.linspace(0.60, 0.70, 20)
    p_float[40:][y[40:] == 0] = np.linspace(0.00, 0.20, gate_size * 8)
    p_float[40:][y[40:] == 1] = np.linspace(0.80, 1.00, gate_size)
    p_int8 = p_float.copy()
    if val_loss:
        p_int8[np.flatnonzero(y[:40] == 1)[:2]] = 0.3525  # above 10 validation safe, below 10
    n = y.size
    groups = _masks(n, val=(0, 40), val__emoji=(0, 40), gate=(40, n), gate__emoji=(40, n))
    return y, p_float, p_int8, groups  # type: ignore[return-value]


def test_a_validation_emoji_loss_fails_the_split_domain_check() -> None:
    y, p_float, p_int8, groups = _emoji_case(val_loss=True, gate_size=60)
    check = check_int8_groups(y, p_float, p_int8, groups, "split-domain")
    assert not check.approved
    assert "val/emoji: " in check.reason
    assert check.logged == ()


def test_the_pooled_emoji_group_absorbs_a_small_validation_loss_but_logs_it() -> None:
    y, p_float, p_int8, groups = _emoji_case(val_loss=True, gate_size=60)
    check = check_int8_groups(y, p_float, p_int8, groups, "domain")
    # 20 of (20 + 60) x (20 + 480) = 40,000 pooled emoji pairs reversed: -0.0005
    assert check.approved, check.reason
    assert check.reason.startswith("judged per domain, the check sets pooled: ")
    assert "in 2 groups" in check.reason  # all and emoji
    loss = check.int8_auc["val/emoji"] - check.float_auc["val/emoji"]
    assert loss == pytest.approx(-20 / 400)
    assert check.float_auc["emoji"] - check.int8_auc["emoji"] == pytest.approx(20 / 40_000)
    assert f"val/emoji {loss:+.4f} (400 pairs)" in check.reason
    assert "gate/emoji +0.0000 (28800 pairs)" in check.reason
    assert set(check.logged) == {"val", "val/emoji", "gate", "gate/emoji"}
    assert {"int8_auc_emoji", "int8_auc_val_emoji", "float_auc_gate_emoji"} <= set(check.summary())


def test_the_pooled_emoji_group_does_not_absorb_the_loss_when_the_other_set_is_small() -> None:
    y, p_float, p_int8, groups = _emoji_case(val_loss=True, gate_size=5)
    check = check_int8_groups(y, p_float, p_int8, groups, "domain")
    assert not check.approved
    assert "emoji: " in check.reason
    assert "logged, not judged (int8 - float AUC): val " in check.reason


def test_the_domain_check_keeps_the_verdict_rule_for_a_small_pooled_group() -> None:
    y, p_float, p_int8, groups = _emoji_case(val_loss=False, gate_size=60)
    small = np.zeros(y.size, dtype=bool)
    small[:6] = True  # 3 x 3: one pair moves its AUC 0.11
    groups["val/illustration"] = small
    harmful = int(np.flatnonzero(small & (y == 1))[0])
    p_int8[harmful] = 0.1  # no longer caught at 0.5, and below every safe one
    check = check_int8_groups(y, p_float, p_int8, groups, "domain", threshold=0.5)
    assert not check.approved
    assert "illustration: 3 harmful x 3 safe" in check.reason
    assert "harmful caught 3 -> 2" in check.reason


def test_equal_scores_pass_both_ways() -> None:
    y, p_float, _, groups = _emoji_case(val_loss=False, gate_size=10)
    for how in ("split-domain", "domain"):
        assert check_int8_groups(y, p_float, p_float, groups, how).approved  # type: ignore[arg-type]


def test_the_setting_accepts_the_two_ways_and_defaults_to_split_domain() -> None:
    from pydantic import ValidationError

    from conf.settings import Int8Settings

    assert Int8Settings().check_groups == "split-domain"
    assert Int8Settings(check_groups="domain").check_groups == "domain"
    with pytest.raises(ValidationError, match="split-domain"):
        Int8Settings(check_groups="set")  # type: ignore[arg-type]
