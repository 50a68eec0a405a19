"""The model card (markdown) and the evaluation figures (confusion matrix, ROC and PR curves).

Figures are drawn with matplotlib's object API (``Figure`` on the Agg canvas), so no display and
no global pyplot state are involved.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn import metrics as skm

from harmscan.bundle import LABELS, ServingSpec
from harmscan.metrics import DOMAINS


def _figure() -> tuple[Figure, Axes]:
    """A square figure of one plot, the size of every evaluation figure."""
    fig = Figure(figsize=(4, 4))
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_confusion(metrics: Mapping[str, float], path: Path, title: str = "") -> Path:
    """Confusion matrix (rows true, columns predicted, in `LABELS` order) from tn/fp/fn/tp."""
    matrix = np.array([[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]])
    fig, ax = _figure()
    ax.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, f"{int(value)}", ha="center", va="center", fontsize=14)
    ax.set_xticks([0, 1], labels=list(LABELS))
    ax.set_yticks([0, 1], labels=list(LABELS))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion at threshold {metrics['threshold']:.3f}")
    return _save(fig, path)


def plot_roc(y_true: np.ndarray, p_harmful: np.ndarray, path: Path, title: str = "ROC") -> Path:
    """ROC curve of the harmful class."""
    fpr, tpr, _ = skm.roc_curve(y_true, p_harmful)
    auc = skm.auc(fpr, tpr)
    fig, ax = _figure()
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("harmful recall")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_roc_by_domain(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, float]],
    path: Path,
    title: str = "",
) -> Path:
    """ROC curves of several models side by side, one panel per domain (``all`` first).

    ``curves`` maps a model's name to (y_true, p_harmful, domains, its stored threshold); each
    curve carries a dot where that threshold operates (safe flagged, harmful caught). A domain
    needs both labels to get a panel.
    """
    panels = [
        d for d in ("all", *DOMAINS)
        if any(len(np.unique(_in(y, dom, d))) == 2 for y, _p, dom, _t in curves.values())
    ]  # fmt: skip
    first_y, _p, first_domains, _t = next(iter(curves.values()))  # every model: the same images
    fig = Figure(figsize=(4 * max(len(panels), 1), 4.4))
    for index, domain in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), index + 1)
        for rank, (name, (y, p, domains, threshold)) in enumerate(curves.items()):
            ys, ps = _in(y, domains, domain), _in(p, domains, domain)
            if len(np.unique(ys)) < 2:
                continue
            fpr, tpr, _ = skm.roc_curve(ys, ps)
            # Solid, dashed, dotted: curves that coincide (a gated head's photos are the prior's)
            # stay visible one under the other.
            (line,) = ax.plot(fpr, tpr, linestyle=("-", "--", ":")[rank % 3],
                              label=f"{name}: AUC {skm.auc(fpr, tpr):.3f}")  # fmt: skip
            flagged = float(np.mean(ps[ys == 0] >= threshold))
            caught = float(np.mean(ps[ys == 1] >= threshold))
            ax.plot([flagged], [caught], "o", color=line.get_color())
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        ax.set_xlabel("safe flagged (false positive rate)")
        ax.set_ylabel("harmful caught (recall)")
        ax.set_title(f"{domain} ({len(_in(first_y, first_domains, domain))} images)")
        ax.legend(loc="lower right", fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _in(values: np.ndarray, domains: np.ndarray, domain: str) -> np.ndarray:
    """The values of one domain (``all``: every value)."""
    values = np.asarray(values)
    return values if domain == "all" else values[np.asarray(domains) == domain]


def plot_pr(y_true: np.ndarray, p_harmful: np.ndarray, path: Path, title: str = "PR") -> Path:
    """Precision-recall curve of the harmful class."""
    precision, recall, _ = skm.precision_recall_curve(y_true, p_harmful)
    ap = skm.average_precision_score(y_true, p_harmful)
    fig, ax = _figure()
    ax.plot(recall, precision, label=f"AP {ap:.3f}")
    ax.axhline(float(np.mean(y_true)), linestyle="--", color="grey", label="chance")
    ax.set_xlabel("harmful recall")
    ax.set_ylabel("harmful precision")
    ax.set_title(title)
    ax.legend(loc="lower left")
    return _save(fig, path)


def _table(rows: Mapping[str, Mapping[str, int]]) -> list[str]:
    lines = ["| split | " + " | ".join(LABELS) + " |", "|---|" + "---|" * len(LABELS)]
    for split, counts in rows.items():
        lines.append(f"| {split} | " + " | ".join(str(counts.get(k, 0)) for k in LABELS) + " |")
    return lines


def model_card(
    *,
    spec: ServingSpec,
    counts: Mapping[str, Mapping[str, int]],
    test_metrics: Mapping[str, float],
    weights: str,
    target_recall: float,
    epochs_run: int,
    best_epoch: int,
) -> str:
    """The model card in markdown: data, metrics, thresholds, intended use and limits."""
    names = ("accuracy", "precision", "recall", "f1", "auc", "pr_auc", "ece")
    metric_lines = [f"| {n} | {test_metrics[n]:.4f} |" for n in names if n in test_metrics]
    lines = [
        f"# harmscan model card — {spec.arch}",
        "",
        "Binary image moderation: **harmful** (weapons, knives, blood, explosions) vs **safe**.",
        f"Output order `{list(spec.labels)}` (index {spec.harmful_index} = harmful).",
        "",
        "## Data",
        "The ETL dataset (Open Images V7, or its offline mirror), plus the training pools the "
        "recipe names (`train.extra_train_sets`); dataset version (manifest hash) "
        f"`{spec.dataset_version}`.",
        "",
        *_table(counts),
        "",
        "## Training",
        f"Initial weights: `{weights}`. Epochs run: {epochs_run}, best epoch: {best_epoch + 1} "
        "(counted from 1, as the training log does; the run's `best_epoch` metric counts from 0).",
        f"Preprocessing: resize {spec.resize_size}, centre crop {spec.image_size}, "
        f"mean {list(spec.mean)}, std {list(spec.std)}.",
        "",
        "## Test metrics (at the decision threshold)",
        "| metric | value |",
        "|---|---|",
        *metric_lines,
        "",
        "## Decision thresholds",
        f"- threshold (P(harmful) >= t is harmful): **{spec.threshold:.4f}**, chosen on the "
        f"calibrated validation mix for harmful recall >= {target_recall:.2f}, within the cap "
        "of safe images flagged (`train.max_safe_flagged`; one threshold per branch, folded "
        "into the graph, for the gated head)",
        f"- review band: [{spec.review_low:.4f}, {spec.review_high:.4f}] goes to human review",
        "",
        "## Intended use",
        "First-pass triage of user-uploaded images in a moderation queue, with human review of "
        "the review band and of every harmful decision that has consequences for a person.",
        "",
        "## Limits",
        "- Trained on a few thousand images at most; labels are image-level, "
        "human-verified but not exhaustive.",
        "- Harmful means the listed object classes are visible; context (a kitchen knife in "
        "a kitchen, a toy gun, a film still) is not understood.",
        "- Measured per domain (photo, illustration, emoji) on the test split and, when "
        "configured, the gate set (the run's `test_<domain>_*` and `gate_<domain>_*` "
        "metrics); not evaluated on screenshots, memes, text in images, or video frames.",
        "- Probabilities are calibrated only as far as the ECE above says; re-choose the "
        "threshold when the image distribution changes.",
        "- Not for decisions about people without human review.",
    ]
    return "\n".join(lines) + "\n"
