"""The check that decides whether an int8 model is served: its ROC AUC against the float model's.

`check_int8` compares the two models' AUC on the same images, overall and in every judged group:
int8 is approved only if it loses at most ``tolerance`` everywhere (a group too small for one
swapped pair to stay within ``tolerance`` is judged on its verdicts at the stored threshold
instead), and the verdict says why. Which groups are judged is `judged_groups`' choice
(``int8.check_groups``): every check set's domains apart (``split-domain``: ``val/emoji``,
``gate/emoji``, ...), or each domain with the images of every check set pooled (``domain``:
``emoji`` = validation emoji + gate-set emoji); the groups not judged are still scored and named
in the verdict ("logged"), so a loss in one set's domain stays visible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

import numpy as np

from harmscan.metrics import binary_metrics

DEFAULT_TOLERANCE: Final = 0.005
CheckGroups = Literal["split-domain", "domain"]
CHECK_GROUPS: Final = get_args(CheckGroups)


@dataclass(frozen=True)
class Int8Check:
    """Whether the int8 model may be served instead of the float one, and why.

    Attributes:
        approved: int8 lost at most ``tolerance`` of AUC overall and in every judged group.
        reason: One line: what passed, or the groups that failed and by how much; then the
            logged groups' AUC changes.
        tolerance: The largest AUC loss allowed.
        float_auc: Float model's AUC per group (``all``, the judged and the logged groups).
        int8_auc: int8 model's AUC per group.
        skipped: Groups without both classes (AUC undefined), not judged.
        float_nodes: Nodes of the int8 graph kept in float besides the head (mixed precision).
        logged: Groups scored and named in ``reason`` but not judged.
    """

    approved: bool
    reason: str
    tolerance: float
    float_auc: dict[str, float] = field(default_factory=dict)
    int8_auc: dict[str, float] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    float_nodes: tuple[str, ...] = ()
    logged: tuple[str, ...] = ()

    def summary(self) -> dict[str, float]:
        """Flat metrics for a tracking server: ``int8_auc_<group>`` and ``float_auc_<group>``."""
        out: dict[str, float] = {}
        for group, value in self.float_auc.items():
            out[f"float_auc_{_metric_name(group)}"] = value
            out[f"int8_auc_{_metric_name(group)}"] = self.int8_auc[group]
        return out


def _metric_name(group: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in group)


def domain_groups(groups: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Each domain's images of every check set pooled: ``emoji`` = ``val/emoji`` | ``gate/emoji``.

    Args:
        groups: Masks by ``<set>`` and ``<set>/<domain>`` name (`harmscan.checksets.pooled`).

    Returns:
        One mask per domain, by domain name, sorted.
    """
    sets = {name for name in groups if "/" not in name}
    pooled: dict[str, np.ndarray] = {}
    for name, mask in groups.items():
        _, slash, domain = name.partition("/")
        if not slash:
            continue
        if domain in sets:
            raise ValueError(f"domain {domain!r} is also the name of a check set: rename the set")
        m = np.asarray(mask, dtype=bool)
        pooled[domain] = pooled[domain] | m if domain in pooled else m.copy()
    return dict(sorted(pooled.items()))


def judged_groups(
    groups: Mapping[str, object], how: CheckGroups = "split-domain"
) -> tuple[dict[str, object], dict[str, object]]:
    """(judged, logged) groups of a check.

    ``split-domain`` judges every group as given (each set, each set's domain); ``domain`` judges
    the domains pooled over the sets (`domain_groups`) and logs the given groups.
    """
    if how == "split-domain":
        return dict(groups), {}
    if how == "domain":
        return dict(domain_groups(groups)), dict(groups)
    raise ValueError(f"unknown int8 check groups {how!r}; valid: {', '.join(CHECK_GROUPS)}")


def _auc(y_true: np.ndarray, p: np.ndarray) -> float:
    return float(binary_metrics(y_true, p)["auc"])


def _group_aucs(
    y: np.ndarray, pf: np.ndarray, pq: np.ndarray, masks: Mapping[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Float and int8 AUC of every group with both classes, and the groups without."""
    float_auc: dict[str, float] = {}
    int8_auc: dict[str, float] = {}
    skipped: list[str] = []
    for name, mask in masks.items():
        if len(set(y[mask].tolist())) < 2:
            skipped.append(name)
            continue
        float_auc[name] = _auc(y[mask], pf[mask])
        int8_auc[name] = _auc(y[mask], pq[mask])
    return float_auc, int8_auc, skipped


def pair_step(y: np.ndarray) -> float:
    """How much one (harmful, safe) pair changing order moves the AUC of these labels."""
    pairs = int(np.sum(y == 1)) * int(np.sum(y == 0))
    return 1.0 / pairs if pairs else float("inf")


def _verdict_failure(
    name: str, y: np.ndarray, pf: np.ndarray, pq: np.ndarray, threshold: float, tolerance: float
) -> str | None:
    """A group too small for its AUC to resolve ``tolerance``, judged on the verdicts at the
    stored threshold instead: int8 must catch every harmful image float catches in number and
    flag no more safe ones. None when it holds, else why not."""
    caught = (int(np.sum((pf >= threshold) & (y == 1))), int(np.sum((pq >= threshold) & (y == 1))))
    flagged = (int(np.sum((pf >= threshold) & (y == 0))), int(np.sum((pq >= threshold) & (y == 0))))
    if caught[1] >= caught[0] and flagged[1] <= flagged[0]:
        return None
    return (
        f"{name}: {int(np.sum(y == 1))} harmful x {int(np.sum(y == 0))} safe, one pair moves "
        f"its AUC {pair_step(y):.4f} > {tolerance}, so judged at threshold {threshold:.4g}: "
        f"harmful caught {caught[0]} -> {caught[1]}, safe flagged {flagged[0]} -> {flagged[1]}"
    )


def _masks(n: int, groups: Mapping[str, object] | None) -> dict[str, np.ndarray]:
    masks = {"all": np.ones(n, dtype=bool)}
    masks.update({name: np.asarray(mask, dtype=bool) for name, mask in (groups or {}).items()})
    return masks


def _logged_line(
    names: list[str],
    y: np.ndarray,
    masks: Mapping[str, np.ndarray],
    float_auc: Mapping[str, float],
    int8_auc: Mapping[str, float],
) -> str:
    """``; logged, not judged: val/emoji -0.0336 (506 pairs), ...`` (empty without groups)."""
    parts = [
        f"{name} {int8_auc[name] - float_auc[name]:+.4f} "
        f"({int(np.sum(y[masks[name]] == 1)) * int(np.sum(y[masks[name]] == 0))} pairs)"
        for name in names
    ]
    return "; logged, not judged (int8 - float AUC): " + ", ".join(parts) if parts else ""


def check_int8(
    y_true: object,
    p_float: object,
    p_int8: object,
    groups: Mapping[str, object] | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    threshold: float | None = None,
    logged: Mapping[str, object] | None = None,
) -> Int8Check:
    """Approve int8 only if its AUC is within ``tolerance`` of float overall and in every group.

    A group's AUC moves in steps of one (harmful, safe) pair changing order: ``1 / (harmful x
    safe)``. Where that step is larger than ``tolerance`` (fewer than 200 pairs at 0.005, e.g.
    14 harmful and 13 safe images) a single pair would fail the group, so the AUC cannot show
    what the tolerance asks; given the stored ``threshold``, such a group is judged on its
    verdicts instead (int8 catches no fewer of its harmful images and flags no more of its safe
    ones than float). Its images still count in every larger group that holds them.

    Args:
        y_true: 0/1 labels (1 = harmful) of the checked images.
        p_float: Harmful probability from the float model.
        p_int8: Harmful probability from the int8 model, same images and order.
        groups: Boolean masks over the images, by group name (e.g. ``val``, ``val/photo``,
            ``gate/photo``, or pooled domains). ``all`` (every image) is always checked.
        tolerance: Largest AUC loss allowed.
        threshold: The stored threshold on the harmful probability (None: every group with
            both classes is judged on AUC, however small).
        logged: Groups whose AUC change is reported (metrics, reason) but not judged.

    Returns:
        The verdict; groups with a single class are listed in ``skipped``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    pf = np.asarray(p_float, dtype=np.float64)
    pq = np.asarray(p_int8, dtype=np.float64)
    if not (len(y) == len(pf) == len(pq)):
        raise ValueError(f"lengths differ: {len(y)} labels, {len(pf)} float, {len(pq)} int8")
    masks = _masks(len(y), groups)
    float_auc, int8_auc, skipped = _group_aucs(y, pf, pq, masks)
    extra = {k: np.asarray(v, dtype=bool) for k, v in (logged or {}).items() if k not in masks}
    float_more, int8_more, skipped_more = _group_aucs(y, pf, pq, extra)
    if not float_auc:
        return Int8Check(False, "no group has both classes: AUC cannot be checked", tolerance,
                         skipped=tuple(skipped))  # fmt: skip
    coarse = [] if threshold is None else [
        g for g in float_auc if pair_step(y[masks[g]]) > tolerance
    ]  # fmt: skip
    failures = [
        f"{name}: {int8_auc[name]:.4f} vs float {float_auc[name]:.4f} "
        f"(-{float_auc[name] - int8_auc[name]:.4f} > {tolerance})"
        for name in float_auc
        if name not in coarse
        and not float_auc[name] - int8_auc[name] <= tolerance  # a NaN AUC fails too
    ]
    for name in coarse:
        m = masks[name]
        failure = _verdict_failure(name, y[m], pf[m], pq[m], float(threshold), tolerance)  # type: ignore[arg-type]
        failures += [failure] if failure else []
    reason = _reason(failures, [g for g in float_auc if g not in coarse], coarse, float_auc,
                     int8_auc, tolerance)  # fmt: skip
    reason += _logged_line(list(float_more), y, {**masks, **extra}, float_more, int8_more)
    return Int8Check(
        not failures, reason, tolerance, {**float_auc, **float_more}, {**int8_auc, **int8_more},
        tuple(skipped + skipped_more), logged=tuple(float_more),
    )  # fmt: skip


def _reason(
    failures: list[str],
    judged: list[str],
    coarse: list[str],
    float_auc: Mapping[str, float],
    int8_auc: Mapping[str, float],
    tolerance: float,
) -> str:
    """The verdict's line: the failures, or the largest loss and the groups judged at the
    threshold."""
    if failures:
        reason = "int8 below float beyond tolerance in " + "; ".join(failures)
    elif judged:
        worst = max(judged, key=lambda g: float_auc[g] - int8_auc[g])
        reason = (
            f"int8 AUC within {tolerance} of float in {len(judged)} groups "
            f"(largest loss {float_auc[worst] - int8_auc[worst]:+.4f} in {worst})"
        )
    else:
        reason = f"no group large enough for AUC to resolve {tolerance}"
    if coarse and not failures:
        reason += (
            f"; {', '.join(coarse)} too small for AUC at {tolerance} (one pair moves it more): "
            "int8 catches and flags as float does there at the threshold"
        )
    return reason


def check_int8_groups(
    y_true: object,
    p_float: object,
    p_int8: object,
    groups: Mapping[str, object],
    how: CheckGroups = "split-domain",
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    threshold: float | None = None,
) -> Int8Check:
    """`check_int8` on the groups ``how`` judges (`judged_groups`), the others logged.

    Args:
        y_true: 0/1 labels (1 = harmful) of the checked images.
        p_float: Harmful probability from the float model.
        p_int8: Harmful probability from the int8 model, same images and order.
        groups: Masks by ``<set>`` and ``<set>/<domain>`` (`harmscan.checksets.pooled`).
        how: ``split-domain`` (every set's domains judged apart) or ``domain`` (each domain
            judged with every set's images of it pooled; the sets' own groups logged).
        tolerance: Largest AUC loss allowed.
        threshold: The stored threshold on the harmful probability.
    """
    judged, logged = judged_groups(groups, how)
    check = check_int8(y_true, p_float, p_int8, judged, tolerance=tolerance,
                       threshold=threshold, logged=logged)  # fmt: skip
    if how == "split-domain":
        return check
    prefix = "judged per domain, the check sets pooled: "
    return dataclasses.replace(check, reason=prefix + check.reason)
