"""The int8 check per domain against per split and domain, from `bench/int8_gated.py --save`.

Reads the per-image scores `bench/int8_gated.py --save DIR` wrote (float and int8 harmful
log-odds of every check image, per configuration and image size) and the stored threshold from
its ``--cache``, and prints three tables:

1. the verdict of ``int8.check_groups: split-domain`` and of ``domain`` (`harmscan.int8check`),
   with int8 - float ROC AUC in each pooled domain and in each check set's domain;
2. the gate set against the accuracy targets: AUC all / photo / emoji, harmful caught of 42 and
   safe flagged of 325 at the stored threshold, float and int8;
3. a paired bootstrap of int8 - float AUC on the validation emoji and on the pooled emoji
   (images resampled within each check set and label; 95 % interval, share of resamples < 0).

    nice -n 10 .venv/bin/python bench/int8_domain.py --cache /tmp/int8-gated /tmp/int8-save
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scipy.stats import rankdata  # noqa: E402

from harmscan.int8check import check_int8_groups, domain_groups  # noqa: E402

SPLIT_GROUPS = ("val/emoji", "val/illustration", "gate/photo", "gate/emoji")
DOMAINS = ("emoji", "photo", "illustration")


def load(path: Path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(name, labels, float log-odds, int8 log-odds, groups) of the decoded images of one run."""
    raw = np.load(path, allow_pickle=False)
    ok = ~np.isnan(raw["f_odds"]) & ~np.isnan(raw["q_odds"])
    groups = {k[len("group_") :]: raw[k][ok] for k in raw.files if k.startswith("group_")}
    return str(raw["name"]), raw["y"][ok], raw["f_odds"][ok], raw["q_odds"][ok], groups


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by the rank sum (ties count half)."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap(
    y: np.ndarray, f: np.ndarray, q: np.ndarray, strata: np.ndarray, rounds: int, seed: int
) -> tuple[float, float, float, float]:
    """int8 - float AUC, its 95 % paired-bootstrap interval, and the share of resamples < 0."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    deltas = np.empty(rounds)
    for r in range(rounds):
        idx = np.concatenate([rng.choice(m, m.size) for m in members])
        deltas[r] = auc(y[idx], q[idx]) - auc(y[idx], f[idx])
    low, high = np.percentile(deltas, [2.5, 97.5])
    return auc(y, q) - auc(y, f), float(low), float(high), float(np.mean(deltas < 0))


def strata_of(groups: dict[str, np.ndarray], y: np.ndarray, domain: str) -> np.ndarray:
    """A stratum per (check set, label) among a domain's images (-1 elsewhere)."""
    strata = np.full(len(y), -1)
    sets = [g for g in groups if g.endswith(f"/{domain}")]
    for i, name in enumerate(sets):
        strata[groups[name]] = 2 * i + y[groups[name]]
    return strata


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def rows(path: Path, threshold: float, px: int, rounds: int) -> tuple[str, str, str]:
    """The three tables' rows for one saved configuration."""
    name, y, f, q, groups = load(path)
    pf, pq = sigmoid(f), sigmoid(q)
    split = check_int8_groups(y, pf, pq, groups, "split-domain", threshold=threshold)
    domain = check_int8_groups(y, pf, pq, groups, "domain", threshold=threshold)
    pooled = domain_groups(groups)

    def delta(mask: np.ndarray) -> str:
        return f"{auc(y[mask], q[mask]) - auc(y[mask], f[mask]):+.4f}"

    verdict = {True: "pass", False: "fail"}
    every = np.ones(len(y), bool)
    check_row = (
        f"| {px} | {name} | {verdict[split.approved]} | {verdict[domain.approved]} | "
        f"{delta(every)} | " + " | ".join(delta(pooled[d]) for d in DOMAINS if d in pooled)
        + " | " + " | ".join(delta(groups[g]) for g in SPLIT_GROUPS if g in groups) + " |"
    )  # fmt: skip
    gate = groups["gate"]
    cut = float(np.log(threshold / (1 - threshold)))
    yg = y[gate]
    caught = [int(np.sum((s[gate] >= cut) & (yg == 1))) for s in (f, q)]
    flagged = [int(np.sum((s[gate] >= cut) & (yg == 0))) for s in (f, q)]
    aucs = [
        f"{auc(y[m], f[m]):.4f} → {auc(y[m], q[m]):.4f}"
        for m in (gate, groups["gate/photo"], groups["gate/emoji"])
    ]
    gate_row = (
        f"| {px} | {name} | {' | '.join(aucs)} | {caught[0]} → {caught[1]} of {int(yg.sum())} | "
        f"{flagged[0]} → {flagged[1]} of {int((1 - yg).sum())} |"
    )
    boot = []
    for mask, strata in (
        (groups["val/emoji"], 2 * groups["val/emoji"].astype(int) + y - 2),
        (pooled["emoji"], strata_of(groups, y, "emoji")),
    ):
        d, low, high, below = bootstrap(y[mask], f[mask], q[mask], strata[mask], rounds, seed=0)
        pairs = int(np.sum(y[mask] == 1)) * int(np.sum(y[mask] == 0))
        boot.append(f"{d:+.4f} [{low:+.4f}, {high:+.4f}] ({below:.0%} < 0; {pairs} pairs)")
    boot_row = f"| {px} | {name} | " + " | ".join(boot) + " |"
    return check_row, gate_row, boot_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saved", type=Path, nargs="+", help="folders int8_gated.py --save wrote")
    parser.add_argument("--cache", type=Path, required=True, help="int8_gated.py's --cache")
    parser.add_argument("--rounds", type=int, default=2000, help="bootstrap resamples")
    args = parser.parse_args()
    tables: tuple[list[str], list[str], list[str]] = ([], [], [])
    for path in sorted(p for folder in args.saved for p in folder.glob("*.npz")):
        px = int(path.stem.split("-")[0])
        spec = json.loads((args.cache / f"mobilenet_v2-{px}" / "spec.json").read_text())
        for table, row in zip(tables, rows(path, spec["threshold"], px, args.rounds), strict=True):
            table.append(row)
    heads = (
        "| px | int8 configuration | check split-domain | check domain | all | emoji | photo | "
        "illustration | val/emoji | val/illustration | gate/photo | gate/emoji |",
        "| px | int8 configuration | gate AUC all, float → int8 | gate/photo | gate/emoji | "
        "harmful caught | safe flagged |",
        "| px | int8 configuration | val/emoji Δ [95 %] | pooled emoji Δ [95 %] |",
    )
    for head, table in zip(heads, tables, strict=True):
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        print("\n".join(table) + "\n", flush=True)


if __name__ == "__main__":
    main()
