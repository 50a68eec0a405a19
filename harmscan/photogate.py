"""The promotion check on the fixed photo gate set, per domain, against champion and prior (pure).

On the fixed photo gate set, `decide_photo_gate` refuses a candidate that scores more than a
tolerance below the champion overall or in any domain that holds both classes (`gate_domains`:
no domain may regress), or below the untrained prior overall or in its worst domain (training
must help where the model is weakest; the prior itself is best on photos and worst on emoji, so
a per-domain floor at the prior would refuse every trained model). `prior_fallback` says when
the prior must serve because no candidate of a run beat it there and nothing is champion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harmscan.metrics import DOMAIN_METRICS, HIGHER_IS_BETTER
from harmscan.promotion import PromotionResult

PRIOR = "prior"


@dataclass(frozen=True)
class Baseline:
    """A model the candidate is compared with on the gate set.

    Attributes:
        against: What it is (``champion``, ``prior``).
        version: Its registered version.
        metrics: Its metrics on the gate set (``<metric>`` and ``<domain>_<metric>``).
    """

    against: str
    version: str
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class DomainCheck:
    """The candidate against one baseline in one domain of the gate set.

    Attributes:
        domain: ``all``, a domain (``photo``, ``emoji``, ...) or ``worst`` (the lowest domain).
        against: What the baseline is.
        version: The baseline's version.
        metric: The compared metric.
        candidate: The candidate's value (NaN fails).
        baseline: The baseline's value (NaN: not comparable, passes).
        passed: Not worse than the baseline beyond the tolerance.
    """

    domain: str
    against: str
    version: str
    metric: str
    candidate: float
    baseline: float
    passed: bool

    @property
    def reason(self) -> str:
        """E.g. ``emoji auc 0.7000 worse than champion v4 0.9000``."""
        verdict = "not worse than" if self.passed else "worse than"
        where = "worst-domain" if self.domain == "worst" else self.domain
        return (
            f"{where} {self.metric} {self.candidate:.4f} {verdict} "
            f"{self.against} v{self.version} {self.baseline:.4f}"
        )


@dataclass(frozen=True)
class PhotoGateDecision:
    """The gate-set verdict over every baseline and domain.

    Attributes:
        promote: Every check passed.
        reason: The failing checks (or, when all passed, a summary), naming domains and numbers.
        checks: Every check, baselines in the order given, ``all`` first within each.
    """

    promote: bool
    reason: str
    checks: tuple[DomainCheck, ...]

    @property
    def refused_by_prior(self) -> bool:
        """A failing check is against the untrained prior."""
        return any(not c.passed and c.against == PRIOR for c in self.checks)


def gate_domains(labels: Sequence[int], domains: Sequence[str]) -> tuple[str, ...]:
    """The domains of a gate set that hold both classes (1 = harmful), sorted.

    Raises:
        ValueError: ``labels`` and ``domains`` differ in length.
    """
    if len(labels) != len(domains):
        raise ValueError(f"{len(labels)} labels for {len(domains)} domains")
    seen: dict[str, set[int]] = {}
    for label, domain in zip(labels, domains, strict=True):
        seen.setdefault(domain, set()).add(int(label))
    return tuple(sorted(d for d, classes in seen.items() if classes >= {0, 1}))


def domain_metric(metric: str) -> str:
    """The per-domain metric compared for ``metric``: itself if measured per domain, else auc."""
    return metric if metric in DOMAIN_METRICS and metric in HIGHER_IS_BETTER else "auc"


def _worst(scores: Mapping[str, float], keys: Sequence[str]) -> float:
    """The lowest of ``keys`` (NaN if any is NaN: an unscored domain is not a good one)."""
    values = [float(scores[k]) for k in keys]
    return float("nan") if any(math.isnan(v) for v in values) else min(values)


def decide_photo_gate(
    candidate: Mapping[str, float],
    baselines: Sequence[Baseline],
    *,
    metric: str,
    domains: Sequence[str],
    tolerance: float,
) -> PhotoGateDecision:
    """Refuse a candidate worse than a baseline by more than ``tolerance`` (module docstring).

    Overall the promotion ``metric`` is compared; per domain (``domains``: those with both
    classes, `gate_domains`) the ``<domain>_<m>`` value for ``m = domain_metric(metric)``:
    against the champion in every domain, against the prior (``against == PRIOR``) in the
    worst domain of each (which may differ: the prior is weakest on drawings, a trained model
    on photos). A NaN candidate value fails; a NaN baseline value cannot be compared and passes.

    Raises:
        ValueError: An unknown metric, a negative tolerance, or a metric missing from the dicts.
    """
    per_domain = domain_metric(metric)
    domain_keys = [f"{d}_{per_domain}" for d in domains]
    _check_gate_inputs(candidate, baselines, metric, domain_keys, tolerance)
    checks = [
        check
        for baseline in baselines
        for check in _baseline_checks(candidate, baseline, metric, domains, tolerance)
    ]
    failed = [c for c in checks if not c.passed]
    if failed:
        reason = "; ".join(f"{c.reason} beyond -{tolerance}" for c in failed)
        return PhotoGateDecision(False, f"gate set: {reason}", tuple(checks))
    if not checks:
        return PhotoGateDecision(True, "gate set: no champion or prior to compare", ())
    compared = ", ".join(dict.fromkeys(f"{b.against} v{b.version}" for b in baselines))
    shown = ", ".join(["all", *domains])
    reason = f"gate set: not worse than {compared} beyond -{tolerance} ({shown})"
    return PhotoGateDecision(True, reason, tuple(checks))


def _check_gate_inputs(
    candidate: Mapping[str, float],
    baselines: Sequence[Baseline],
    metric: str,
    domain_keys: Sequence[str],
    tolerance: float,
) -> None:
    """Raise `ValueError` for an unknown metric, a negative tolerance or a missing metric."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown promotion metric {metric!r}; valid: {sorted(HIGHER_IS_BETTER)}")
    if tolerance < 0:
        raise ValueError(f"gate tolerance must be >= 0, got {tolerance}")
    for scores in (candidate, *(b.metrics for b in baselines)):
        for key in (metric, *domain_keys):
            if key not in scores:
                raise ValueError(f"gate-set metrics lack {key!r}; have {sorted(scores)}")


def _baseline_checks(
    candidate: Mapping[str, float],
    baseline: Baseline,
    metric: str,
    domains: Sequence[str],
    tolerance: float,
) -> list[DomainCheck]:
    """The candidate against one baseline: overall, then every domain (the worst for a prior)."""
    per_domain = domain_metric(metric)
    domain_keys = [f"{d}_{per_domain}" for d in domains]
    pairs = [("all", metric, float(candidate[metric]), float(baseline.metrics[metric]))]
    if baseline.against == PRIOR and domain_keys:
        worst = (_worst(candidate, domain_keys), _worst(baseline.metrics, domain_keys))
        pairs.append(("worst", per_domain, *worst))
    else:
        pairs += [
            (d, per_domain, float(candidate[k]), float(baseline.metrics[k]))
            for d, k in zip(domains, domain_keys, strict=True)
        ]
    return [
        DomainCheck(
            domain,
            baseline.against,
            baseline.version,
            name,
            value,
            other,
            math.isnan(other) or value >= other - tolerance,  # a NaN candidate fails
        )
        for domain, name, value, other in pairs
    ]


FALLBACK_REASON = "no candidate beat the untrained prior on the gate set"


def prior_fallback(
    champion: str | None, prior: str | None, results: Sequence[PromotionResult]
) -> str | None:
    """Why the prior must become champion after a run, or None when it must not.

    It must when nothing is champion, a prior is registered, no candidate of the run was
    promoted, and at least one was refused by the gate set as worse than the prior: every
    candidate that passed the other checks lost to the prior on real photos, and the rest (e.g.
    below the floors on the test split) may not serve at all. When no candidate even reached
    the gate set, nothing was compared with the prior and it does not take over. The reason
    names every candidate's refusal.
    """
    if champion is not None or prior is None or not results:
        return None
    if any(r.promoted for r in results) or not any(r.refused_by_prior for r in results):
        return None
    refusals = "; ".join(f"v{r.candidate_version}: {r.reason}" for r in results)
    return f"{FALLBACK_REASON} ({refusals})"
