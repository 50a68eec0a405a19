"""The review figures of each model version: waiting, oldest age, agreement, overturns.

`version_stats` folds the review store's per-(version, label) counts into one `VersionStats`
per model version, newest first; pure, so the store keeps only the SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class VersionStats:
    """The review figures of one model version."""

    model_version: str
    waiting: int
    oldest_age_s: float
    decided: int
    agreed: int
    # Per model label: how many the reviewers decided, and how many of those they overturned.
    decided_by_label: dict[str, int]
    overturned_by_label: dict[str, int]

    @property
    def agreement(self) -> float | None:
        """Share of decisions that kept the model's label (None before any decision)."""
        return self.agreed / self.decided if self.decided else None

    def overturn_rate(self, label: str) -> float | None:
        """Share of the model's ``label`` results that reviewers turned into the other label."""
        total = self.decided_by_label.get(label, 0)
        return self.overturned_by_label.get(label, 0) / total if total else None


@dataclass
class _Tally:
    waiting: int = 0
    oldest: float | None = None
    decided: int = 0
    agreed: int = 0
    by_label: dict[str, int] = field(default_factory=dict)
    overturned: dict[str, int] = field(default_factory=dict)

    def add(
        self, label: str, waiting: int, oldest: float | None, decided: int, agreed: int | None
    ) -> None:
        self.waiting += waiting or 0
        if oldest is not None:
            self.oldest = oldest if self.oldest is None else min(self.oldest, oldest)
        self.decided += decided or 0
        self.agreed += agreed or 0
        self.by_label[label] = decided or 0
        self.overturned[label] = (decided or 0) - (agreed or 0)

    def stats(self, version: str, now: float) -> VersionStats:
        return VersionStats(
            model_version=version,
            waiting=self.waiting,
            oldest_age_s=max(0.0, now - self.oldest) if self.oldest is not None else 0.0,
            decided=self.decided,
            agreed=self.agreed,
            decided_by_label=self.by_label,
            overturned_by_label=self.overturned,
        )


def version_stats(rows: Iterable[tuple], now: float) -> list[VersionStats]:
    """Per model version (newest first), from rows of (version, model label, waiting, oldest
    waiting ``scored_at``, decided, agreed) as `review.store.ReviewStore.stats` reads them."""
    merged: dict[str, _Tally] = {}
    for version, label, waiting, oldest, decided, agreed in rows:
        merged.setdefault(version, _Tally()).add(label, waiting, oldest, decided, agreed)
    ordered = sorted(merged.items(), key=lambda kv: version_key(kv[0]), reverse=True)
    return [tally.stats(version, now) for version, tally in ordered]


def version_key(version: str) -> tuple[int, str]:
    """Sort key of a model version: registry numbers in order, other names before them."""
    return (int(version), "") if version.isdigit() else (-1, version)
