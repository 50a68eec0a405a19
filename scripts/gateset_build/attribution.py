"""The provenance and licence page (``ATTRIBUTION.md``) of one set."""

from __future__ import annotations

from .images import MAX_SIDE, SET_MAX_SIDE
from .sources import SOURCES, Source


def attribution(name: str, rows: list[dict[str, str]], version: str) -> str:
    """The licence and provenance page of one set."""
    used = sorted({r["source"] for r in rows})
    kinds = {"photo": "real photos", "emoji": "emoji"}
    counts = [
        f"{sum(r['label'] == 'harmful' and r['domain'] == d for r in rows)} harmful and "
        f"{sum(r['label'] == 'safe' and r['domain'] == d for r in rows)} safe {kind}"
        for d, kind in kinds.items()
        if any(r["domain"] == d for r in rows)
    ]
    flattened = "photo stamps" if counts[-1].endswith("photos") else "images"
    lines = [
        f"# {name}: provenance and licences",
        "",
        f"Version `{version}` (sha256 of `manifest.csv`, first 12 hex digits): "
        f"{'; '.join(counts)}, each re-encoded as a JPEG of at most "
        f"{SET_MAX_SIDE.get(name, MAX_SIDE)} px "
        f"({flattened} with transparency flattened on white).",
        "Built by `scripts/build_gate_set.py` from these registry packages; the per-image list "
        "(path inside the package, label, domain, what it shows, licence, sha256) is "
        "`manifest.csv`.",
        "",
        "| package@version | registry | images | licence | where stated |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label in used:
        source = _source(label)
        count = sum(r["source"] == label for r in rows)
        lines.append(
            f"| {label} | {source.registry.split('-')[0]} | {count} | {source.license} "
            f"| {source.license_note} |"
        )
    own = [
        r
        for r in rows
        if r.get("license", _source(r["source"]).license) != _source(r["source"]).license
    ]
    if own:
        lines += ["", "Images with a licence of their own (stated by their package per image):", ""]
        lines += [f"- `{r['file']}` ({r['subject']}): {r['license']}" for r in own]
    if any(r["domain"] == "emoji" for r in rows):
        lines += ["", *_emoji_notes(name)]
    lines.append("")
    return "\n".join(lines)


def _source(label: str) -> Source:
    return next(s for s in SOURCES.values() if s.label == label)


ICON_SETS = {
    "iconpool": "trains the probe (`train.extra_train_sets`)",
    "glyphpool": "may train the probe (`train.extra_train_sets`)",
    "colourpool": "may train the probe (`train.extra_train_sets`)",
    "vendorpool": "may train the probe (`train.extra_train_sets`)",
    "iconcheck": "is held out: nothing trains on it or picks a threshold with it",
}

# the catalogue module of an icon set other than `scripts/icon_pools.py`
CATALOGUES = {"colourpool": "colour_pool", "vendorpool": "vendor_pool"}


def _emoji_notes(name: str) -> list[str]:
    """How the emoji (and, in the drawing pool, the icons) were chosen and changed."""
    if name in ICON_SETS:
        return [
            "Icons (domain `emoji`; black glyphs, or colour where the vendor draws in colour): "
            f"chosen and labelled in `scripts/{CATALOGUES.get(name, 'icon_pools')}.py` "
            "(harmful: weapons, bombs, "
            "explosions, blood; safe: animals, plants, food, vehicles, tools, faces, people); "
            "those whose drawing says something else at 128 px are left out with the reason. "
            "The icon pool and the icon check set are split by icon family, never by glyph: "
            f"this set {ICON_SETS[name]}. Changes made: SVGs rendered at 128 px, transparency "
            "flattened on white, padded square on white, saved as JPEG."
        ]
    pistol = (
        "The pistol is in neither label: these vendors draw it as a water pistol."
        if name != "drawpool"
        else "The pistol is harmful here: EmojiOne 2.2 and Firefox OS emoji draw a revolver "
        "(`gate_emoji.VENDOR_HANDGUN`); vendors that draw a water pistol keep it in neither label."
    )
    notes = [
        "Emoji: chosen and labelled in `scripts/gate_emoji.py` (harmful: weapons, blood, "
        f"explosions; safe: faces, people, animals, plants, vehicles, food, objects). {pistol}"
    ]
    if name in SET_MAX_SIDE:
        notes[0] += (
            " Icons (domain `emoji`, black glyphs): chosen and labelled in "
            "`scripts/draw_icons.py` by the same rules; those whose drawing says something "
            "else at 128 px (a cartridge named rifle, a toy water gun) are left out with the "
            "reason."
        )
    square = ", padded square on white" if name in SET_MAX_SIDE else ""
    notes[0] += (
        " Changes made: SVGs rendered at 128 px, transparency flattened on white"
        f"{square}, saved as JPEG."
    )
    return notes
