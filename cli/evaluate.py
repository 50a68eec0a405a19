"""``harmscan evaluate``: registered versions scored on your own images, per domain.

Only typer is imported at start; torch, MLflow and the scoring load inside the command.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import settings_of
from cli.failures import FAILED, USAGE, fail
from cli.preflight import mlflow_reachable

if TYPE_CHECKING:
    from harmscan.imagesets import ImageSet
    from harmscan.metrics import DomainCounts
    from registry import Registry


def evaluate_command(
    ctx: typer.Context,
    folder: Annotated[
        Path,
        typer.Argument(
            help="A photo set (manifest.csv + VERSION, like gateset/) or a folder with harmful/ "
            "and safe/ subfolders of images."
        ),
    ],
    version: Annotated[
        list[str] | None,
        typer.Option(help="Version to score (repeatable; default: the champion)."),
    ] = None,
    domain: Annotated[
        str,
        typer.Option(
            help="Domain of a plain folder's images (photo, illustration or emoji); a subfolder "
            "named after a domain (harmful/emoji/...) sets its own."
        ),
    ] = "photo",
    scores: Annotated[
        Path | None, typer.Option(help="Write every image's score per version to this CSV.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Draw the versions' ROC curves per domain into this PNG."),
    ] = None,
) -> None:
    """Score registered versions on your own images, per domain, beside champion and prior.

    For each version, the champion and the untrained prior: ROC AUC, harmful caught and safe
    flagged at each version's stored threshold, and the calibration error of its probabilities.
    """
    from harmscan.gateset import PhotoSetError
    from harmscan.imagesets import ImageSetError, open_image_set

    settings = settings_of(ctx)
    try:
        images = open_image_set(folder, domain)
    except (ImageSetError, PhotoSetError) as exc:
        raise fail(exc, USAGE) from None
    scores = _writable(scores, "--scores", ".csv")  # before minutes of scoring, not after
    plot = _writable(plot, "--plot", ".png")
    labels = set(images.photos.manifest["label"])
    if plot is not None and len(labels) < 2:
        (only,) = labels
        raise fail(f"--plot draws ROC curves, which need harmful and safe images: {folder} has "
                   f"{only} images only", USAGE)  # fmt: skip
    mlflow_reachable(settings)
    from harmscan.metrics import domain_counts
    from registry import CHAMPION, Registry, RegistryError
    from tasks.recipes import prior_version, score_version

    registry = Registry(settings.mlflow.tracking_uri)
    name = settings.mlflow.registered_model
    try:
        roles = _roles(registry, name, version or [], CHAMPION, prior_version(registry, name))
    except RegistryError as exc:
        raise fail(exc, USAGE) from None
    typer.echo(f"scoring {len(roles)} version(s) of {name} on {images.describe()}")
    _warn(images)
    rows, curves = [], {}
    for scored_version, role in roles.items():
        scored, threshold = score_version(registry, name, scored_version, images.photos)
        label = f" ({role})" if role else ""
        curves[f"v{scored_version}{label}"] = (scored.y, scored.p, scored.domains, threshold)
        typer.echo(f"\n{name} v{scored_version}{label}, stored threshold {threshold:.4f}")
        typer.echo(_table(domain_counts(scored.y, scored.p, scored.domains, threshold)))
        manifest = images.photos.manifest
        for file, lab, dom, p in zip(manifest["file"], manifest["label"], manifest["domain"],
                                     scored.p, strict=True):  # fmt: skip
            rows.append((file, lab, dom, scored_version, role, f"{p:.6f}", int(p >= threshold)))
    if scores is not None:
        _write_scores(scores, rows)
        typer.echo(f"\nscores of every image: {scores}")
    if plot is not None:
        from harmscan.modelcard import plot_roc_by_domain

        title = f"{name} on {images.photos.root.name} (version {images.photos.version})"
        plot_roc_by_domain(curves, plot, title)
        typer.echo(f"ROC curves per domain (dots: each version's stored threshold): {plot}")


def _writable(path: Path | None, option: str, suffix: str) -> Path | None:
    """``path`` with ``suffix`` added when it has none, its folder made; checked writable.

    Raises:
        typer.Exit: Another suffix, a folder, or a place that cannot be written (USAGE, named).
    """
    if path is None:
        return None
    if path.is_dir():
        raise fail(f"{option} {path} is a folder; name a {suffix} file in it", USAGE)
    if not path.suffix:
        path = path.with_suffix(suffix)
    if path.suffix.lower() != suffix or path.is_dir():
        raise fail(f"{option} {path}: it writes a {suffix} file; name it *{suffix}", USAGE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"{option} {path}: cannot make its folder: {exc}", USAGE) from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise fail(f"{option} {path}: not writable", USAGE)
    return path


def _warn(images: ImageSet) -> None:
    """What was left out and what the user should know about the set, on stderr."""
    for file, why in images.skipped.items():
        typer.secho(f"  left out {file}: {why}", fg="yellow", err=True)
    for note in images.notes:
        typer.secho(f"  note: {note}", fg="yellow", err=True)


def _roles(
    registry: Registry, name: str, asked: list[str], champion_alias: str, prior: str | None
) -> dict[str, str]:
    """Version -> its role (``champion``, ``the untrained prior`` or ""), asked ones first.

    Raises:
        RegistryError: An asked version does not exist, or nothing to score (no champion).
    """
    from registry import RegistryError

    champion = registry.alias_version(name, champion_alias)
    # The registry's own name of each (01 is 1); RegistryError if there is no such version.
    asked = [registry.model_version(name, wanted.strip()).version for wanted in asked]
    if not asked and champion is None:
        raise RegistryError(f"{name} has no {champion_alias}; name a version with --version")
    roles = dict.fromkeys(asked, "")
    for version, role in ((champion, champion_alias), (prior, "the untrained prior")):
        if version is not None:
            roles[version] = role if not roles.get(version) else roles[version]
    return roles


def _table(rows: list[DomainCounts]) -> str:
    lines = [
        f"  {'domain':<13}{'harmful':>8}{'safe':>6}{'ROC AUC':>9}  {'caught':<18}{'flagged':<19}ECE"
    ]
    for r in rows:
        auc = "-" if math.isnan(r.auc) else f"{r.auc:.3f}"
        lines.append(
            f"  {r.domain:<13}{r.harmful:>8}{r.safe:>6}{auc:>9}  "
            f"{_share(r.caught, r.harmful):<18}{_share(r.flagged, r.safe):<19}{r.ece:.3f}"
        )
    return "\n".join(lines)


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part / whole:.1%})" if whole else "-"


def _write_scores(path: Path, rows: list[tuple[object, ...]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "domain", "version", "role", "p_harmful", "flagged"])
        writer.writerows(rows)


def imageset_command(
    folder: Annotated[
        Path, typer.Argument(help="A folder with harmful/ and safe/ subfolders, or a photo set.")
    ],
    domain: Annotated[
        str, typer.Option(help="Domain of a plain folder's images (photo, illustration, emoji).")
    ] = "photo",
    freeze: Annotated[
        bool,
        typer.Option(
            help="Write manifest.csv and VERSION into the folder: it becomes a photo set, "
            "verified on every load, that mlflow.gate_set can name."
        ),
    ] = False,
) -> None:
    """Show what an image set holds (labels, domains, version, files left out); --freeze it."""
    from harmscan.gateset import PhotoSetError
    from harmscan.imagesets import ImageSetError, open_image_set
    from harmscan.imagesets import freeze as freeze_set

    try:
        images = open_image_set(folder, domain)
        typer.echo(images.describe())
        _warn(images)
        if freeze:
            root = freeze_set(images)
            typer.echo(f"frozen: {root}/manifest.csv and VERSION {images.photos.version}; gate "
                       f"promotions on it with --set mlflow.gate_set={root}")  # fmt: skip
    except (ImageSetError, PhotoSetError) as exc:
        raise fail(exc, USAGE) from None
    except OSError as exc:  # e.g. a folder this user may not write into
        raise fail(f"cannot freeze {folder}: {exc}", FAILED) from None


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``imageset`` to the harmscan app."""
    app.command("evaluate")(evaluate_command)
    app.command("imageset")(imageset_command)
