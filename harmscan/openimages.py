"""Open Images V7 metadata logic: class names, the class hierarchy, label filtering.

Pure functions over the real OIDv7 file layouts:

- class descriptions ``LabelName,DisplayName`` (``oidv7-class-descriptions.csv``; older files
  have no header row, both are accepted);
- the hierarchy JSON ``{"LabelName": ..., "Subcategory": [...]}`` (``Part`` edges are ignored:
  a face is part of a person, not a kind of person);
- human-verified image-level labels ``ImageID,Source,LabelName,Confidence``;
- image lists ``ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,
  Title,OriginalSize,OriginalMD5,Thumbnail300KURL,Rotation``.

Class names resolve to EXACT class ids (never substrings: "Bloodhound" is not "Blood"), then
optionally grow through the hierarchy. Label files are several GB, so they are streamed with
pyarrow in bounded blocks and filtered by class id as they are read.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

logger = logging.getLogger(__name__)

HARMFUL = "harmful"
SAFE = "safe"
# A class that keeps an image out of the safe side without making it a harmful example.
NEVER_SAFE = "never_safe"
LABEL_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence")
# Label sources that are a model's guess, not a person's: never counted.
MACHINE_SOURCE_PREFIX = "machine"
# The full OIDv7 image-list header, in file order, and the columns the ETL reads from it.
IMAGE_LIST_COLUMNS = (
    "ImageID", "Subset", "OriginalURL", "OriginalLandingURL", "License", "AuthorProfileURL",
    "Author", "Title", "OriginalSize", "OriginalMD5", "Thumbnail300KURL", "Rotation",
)  # fmt: skip
IMAGE_COLUMNS = ("ImageID", "Subset", "OriginalURL", "License", "Author", "Rotation")
# What an image is: a photo (all of Open Images), an illustration (clip-art) or an emoji.
DOMAINS = ("photo", "illustration", "emoji")
# The side file of the offline mirror (below its metadata root) that names each image's domain.
MIRROR_DOMAINS_FILE = "harmscan/image-domains.csv"
# Bytes per streamed block for one "row" of the chunk setting (label rows are ~50 bytes).
BYTES_PER_ROW = 64

Source = str | Path | IO[bytes]


class MetadataError(ValueError):
    """A metadata file cannot be read as what it should be; the message names the file."""


class ClassResolutionError(ValueError):
    """A configured class name is unknown or ambiguous; the message says what to write instead."""


@dataclass(frozen=True)
class ClassTable:
    """The class descriptions: id -> display name, and display name -> ids."""

    names: Mapping[str, str]

    @property
    def ids_by_name(self) -> dict[str, list[str]]:
        """Every display name with the (sorted) ids carrying it."""
        out: dict[str, list[str]] = {}
        for label_id, name in sorted(self.names.items()):
            out.setdefault(name, []).append(label_id)
        return out


def read_class_descriptions(source: Source) -> ClassTable:
    """Read ``LabelName,DisplayName`` rows (with or without the header row)."""
    try:
        frame = pd.read_csv(source, header=None, names=["LabelName", "DisplayName"], dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MetadataError(f"{source}: not a LabelName,DisplayName CSV: {exc}") from None
    frame = frame.dropna()
    if len(frame) and frame.iloc[0]["LabelName"].lstrip("\ufeff") == "LabelName":
        frame = frame.iloc[1:]
    if frame.empty:
        raise MetadataError(f"{source}: no classes; needs LabelName,DisplayName rows")
    return ClassTable(names=dict(zip(frame["LabelName"], frame["DisplayName"], strict=True)))


@dataclass(frozen=True)
class Hierarchy:
    """The Open Images class hierarchy as parent id -> child ids (``Subcategory`` edges only)."""

    children: Mapping[str, frozenset[str]]

    @classmethod
    def from_json(cls, tree: Mapping[str, Any]) -> Hierarchy:
        """Build from the parsed hierarchy JSON (a class may sit under several parents)."""
        children: dict[str, set[str]] = {}
        stack = [tree]
        while stack:
            node = stack.pop()
            subs = node.get("Subcategory", [])
            children.setdefault(node["LabelName"], set()).update(s["LabelName"] for s in subs)
            stack.extend(subs)
        return cls(children={k: frozenset(v) for k, v in children.items()})

    @classmethod
    def read(cls, path: Path) -> Hierarchy:
        """Read the hierarchy JSON file.

        Raises:
            MetadataError: Not JSON, or not a tree of ``LabelName``/``Subcategory`` nodes.
        """
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8-sig")))
        except (
            json.JSONDecodeError,
            UnicodeDecodeError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            raise MetadataError(
                f"{path}: not an Open Images hierarchy (JSON nodes with LabelName and "
                f"Subcategory): {type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    def descendants(self, label_id: str) -> set[str]:
        """Every class below ``label_id`` (not itself), through any depth."""
        seen: set[str] = set()
        frontier = list(self.children.get(label_id, ()))
        while frontier:
            node = frontier.pop()
            if node not in seen:
                seen.add(node)
                frontier.extend(self.children.get(node, ()))
        return seen


@dataclass(frozen=True)
class ClassSets:
    """Resolved class ids per side, each with its own display name."""

    harmful: Mapping[str, str]
    safe: Mapping[str, str]
    # Configured name -> ids it brought in (for the summary and for debugging a selection).
    origin: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    never_safe: Mapping[str, str] = field(default_factory=dict)

    def side_of(self) -> dict[str, str]:
        """Class id -> side (harmful, never_safe or safe); where the hierarchy put an id in
        several sets, harmful wins, then never_safe."""
        sides = dict.fromkeys(self.safe, SAFE)
        sides.update(dict.fromkeys(self.never_safe, NEVER_SAFE))
        sides.update(dict.fromkeys(self.harmful, HARMFUL))
        return sides

    @property
    def all_ids(self) -> set[str]:
        """Every class id of any set (the never_safe ones too: they decide images)."""
        return set(self.harmful) | set(self.safe) | set(self.never_safe)


def resolve_name(
    name: str, table: ClassTable, on_ambiguous: Literal["error", "all"] = "error"
) -> list[str]:
    """Resolve one configured class to its exact id(s).

    ``name`` is a display name or a class id (``/m/...``). Display names match exactly and
    case-sensitively first; only when that finds nothing, a case-insensitive exact match is tried.
    Substrings never match.

    Raises:
        ClassResolutionError: Unknown (with the closest valid names) or ambiguous (with the ids).
    """
    if name in table.names:
        return [name]
    by_name = table.ids_by_name
    ids = by_name.get(name)
    if ids is None:
        folded = [n for n in by_name if n.casefold() == name.casefold()]
        if len(folded) == 1:
            ids = by_name[folded[0]]
        elif len(folded) > 1:
            raise ClassResolutionError(
                f"class name {name!r} matches several names differing only in case: {folded}; "
                "write the exact one"
            )
    if ids is None:
        close = difflib.get_close_matches(name, list(by_name), n=5, cutoff=0.5)
        close += [n for n in sorted(by_name) if name.casefold() in n.casefold()][:5]
        close = list(dict.fromkeys(close))[:6]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ClassResolutionError(f"unknown Open Images class {name!r}{hint}")
    if len(ids) > 1 and on_ambiguous == "error":
        raise ClassResolutionError(
            f"class name {name!r} is ambiguous: it names {len(ids)} classes {ids}; list one id "
            "instead of the name, or set classes.on_ambiguous=all"
        )
    return list(ids)


def resolve_classes(
    harmful: Iterable[str],
    safe: Iterable[str],
    table: ClassTable,
    hierarchy: Hierarchy | None = None,
    *,
    exclude: Iterable[str] = (),
    never_safe: Iterable[str] = (),
    on_ambiguous: Literal["error", "all"] = "error",
) -> ClassSets:
    """Resolve the harmful and safe sets to class ids, expanded through ``hierarchy`` if given.

    Excluded names (and, with a hierarchy, everything below them) are removed from every set.
    An id reached from several sets stays in one: harmful first, then never_safe, then safe.
    """
    origin: dict[str, tuple[str, ...]] = {}

    def expand(names: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for name in names:
            ids = set(resolve_name(name, table, on_ambiguous))
            if hierarchy is not None:
                for label_id in list(ids):
                    ids |= hierarchy.descendants(label_id)
            origin[name] = tuple(sorted(ids))
            found |= ids
        return found

    harmful_ids, safe_ids, never_ids = expand(harmful), expand(safe), expand(never_safe)
    dropped = expand(exclude)
    harmful_ids -= dropped
    never_ids -= dropped | harmful_ids
    safe_ids -= dropped | harmful_ids | never_ids
    if not harmful_ids or not safe_ids:
        raise ClassResolutionError("after exclusions, a side has no classes left")

    def named(ids: set[str]) -> dict[str, str]:
        return {i: table.names.get(i, i) for i in sorted(ids)}

    return ClassSets(
        harmful=named(harmful_ids),
        safe=named(safe_ids),
        origin=origin,
        never_safe=named(never_ids),
    )


def _header_line(source: Source) -> str:
    if not isinstance(source, str | Path):
        return "?"
    with open(source, "rb") as handle:
        line = handle.readline(4096).decode("utf-8", errors="replace")
    return line.lstrip("\ufeff").strip()[:300] or "(empty)"


@contextmanager
def _reading(source: Source, columns: Iterable[str]) -> Iterator[None]:
    """Turn pyarrow's errors into a `MetadataError` naming the file and the columns needed."""
    try:
        yield
    except pa.ArrowException as exc:
        name = source if isinstance(source, str | Path) else "a CSV stream"
        raise MetadataError(
            f"{name}: {str(exc).strip()[:300]}; needs the columns {', '.join(columns)} "
            f"(a header line, then one row per line); its first line: {_header_line(source)!r}"
        ) from None


def _csv_stream(
    source: Source, columns: Iterable[str], types: Mapping[str, pa.DataType], chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    read = pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * BYTES_PER_ROW))
    convert = pacsv.ConvertOptions(include_columns=list(columns), column_types=dict(types))
    path = str(source) if isinstance(source, str | Path) else source
    with _reading(source, columns):
        yield from pacsv.open_csv(path, read_options=read, convert_options=convert)


def filter_labels(
    source: Source,
    class_ids: Iterable[str],
    chunk_rows: int = 1_000_000,
    on_rows: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Stream a human image-label CSV, keeping verified positives of ``class_ids``.

    A row counts when Confidence == 1 and its Source is a person's (``verification``,
    ``crowdsource-verification``, ...), not a model's (``machine...``).

    Memory is bounded by the block size plus the matching rows, whatever the file size.
    ``on_rows`` is called with the row count of every block read (for a progress display).

    Returns:
        A frame with columns ``ImageID``, ``LabelName`` (one row per matching label).
    """
    wanted = pa.array(sorted(set(class_ids)), type=pa.string())
    types = {c: pa.string() for c in LABEL_COLUMNS} | {"Confidence": pa.float32()}
    kept: list[pa.Table] = []
    total = 0
    for batch in _csv_stream(source, LABEL_COLUMNS, types, chunk_rows):
        total += batch.num_rows
        if on_rows is not None:
            on_rows(batch.num_rows)
        mask = pc.and_(
            pc.and_(
                pc.is_in(batch["LabelName"], value_set=wanted), pc.equal(batch["Confidence"], 1.0)
            ),
            pc.invert(pc.starts_with(batch["Source"], MACHINE_SOURCE_PREFIX)),
        )
        picked = batch.filter(mask)
        if picked.num_rows:
            kept.append(pa.Table.from_batches([picked.select(["ImageID", "LabelName"])]))
    logger.info("scanned %d label rows, kept %d", total, sum(t.num_rows for t in kept))
    if not kept:
        return pd.DataFrame({"ImageID": pd.Series(dtype=str), "LabelName": pd.Series(dtype=str)})
    return pa.concat_tables(kept).to_pandas()


def read_image_index(
    source: Source, image_ids: Iterable[str], chunk_rows: int = 1_000_000
) -> pd.DataFrame:
    """Stream an image-list CSV, keeping the rows of ``image_ids``.

    Returns:
        Columns ``ImageID, Subset, OriginalURL, License, Author, Rotation`` (Rotation as a float,
        NaN where the file leaves it empty).
    """
    wanted = pa.array(sorted(set(image_ids)), type=pa.string())
    types = {c: pa.string() for c in IMAGE_COLUMNS} | {"Rotation": pa.float64()}
    kept = [
        pa.Table.from_batches([batch.filter(pc.is_in(batch["ImageID"], value_set=wanted))])
        for batch in _csv_stream(source, IMAGE_COLUMNS, types, chunk_rows)
    ]
    if not kept:
        return pd.DataFrame(columns=list(IMAGE_COLUMNS))
    return pa.concat_tables(kept).to_pandas()


def label_images(labels: pd.DataFrame, classes: ClassSets) -> pd.DataFrame:
    """One row per image with its side and the display names that put it there.

    An image with ANY harmful label is harmful (never safe); its ``source_labels`` are its harmful
    classes only. Otherwise an image with any never_safe label is left out (neither side). Safe
    images list their safe classes.

    Args:
        labels: ``ImageID, LabelName`` (and optionally ``Subset``) rows, already restricted to
            positive labels.
        classes: The resolved class sets.

    Returns:
        Columns ``image_id``, ``label`` (harmful|safe), ``source_labels`` (``;``-joined sorted
        display names) and ``subset`` (when given), sorted by image id.
    """
    columns = ["image_id", "label", "source_labels"] + (["subset"] if "Subset" in labels else [])
    if labels.empty:
        return pd.DataFrame(columns=columns)
    frame = labels[[c for c in ("ImageID", "LabelName", "Subset") if c in labels]].copy()
    frame["side"] = frame["LabelName"].map(classes.side_of())
    frame = frame.dropna(subset=["side"])
    harmful_images = pd.Index(frame.loc[frame["side"] == HARMFUL, "ImageID"].unique())
    never_safe_images = pd.Index(frame.loc[frame["side"] == NEVER_SAFE, "ImageID"].unique())
    frame = frame[~frame["ImageID"].isin(never_safe_images.difference(harmful_images))].copy()
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["label"] = SAFE
    frame.loc[frame["ImageID"].isin(harmful_images), "label"] = HARMFUL
    frame = frame[frame["side"] == frame["label"]]
    names = {**classes.safe, **classes.harmful}
    frame["name"] = frame["LabelName"].map(names)
    frame = frame.drop_duplicates(["ImageID", "name"]).sort_values(["ImageID", "name"])
    keep = ["ImageID", "label", "name"] + (["Subset"] if "Subset" in frame else [])
    schema = pa.schema([(c, pa.string()) for c in keep])
    table = pa.Table.from_pandas(frame[keep], schema=schema, preserve_index=False)
    # Ordered (single-threaded) hash aggregation keeps the sorted name order inside each list.
    aggregations = [("label", "min"), ("name", "list")]
    aggregations += [("Subset", "min")] if "Subset" in frame else []
    grouped = table.group_by("ImageID", use_threads=False).aggregate(aggregations)
    out = pd.DataFrame(
        {
            "image_id": grouped["ImageID"].to_pandas(),
            "label": grouped["label_min"].to_pandas(),
            "source_labels": pc.binary_join(grouped["name_list"], ";").to_pandas(),
        }
    )
    if "Subset" in frame:
        out["subset"] = grouped["Subset_min"].to_pandas()
    return out.sort_values("image_id").reset_index(drop=True)[columns]


def image_domains(image_ids: pd.Series, domains: Source | None) -> pd.Series:
    """The domain of each image: from a ``ImageID,Domain`` CSV, or ``photo`` when there is none.

    A row repeated word for word counts once.

    Raises:
        ValueError: The CSV names a domain outside `DOMAINS`, gives one image two domains, or
            lacks some of ``image_ids``.
    """
    if domains is None:
        return pd.Series("photo", index=image_ids.index, dtype=object)
    table = pd.read_csv(domains, dtype=str, keep_default_na=False)
    if list(table.columns) != ["ImageID", "Domain"]:
        raise ValueError(f"domains file has columns {list(table.columns)}; needs ImageID,Domain")
    unknown = sorted(set(table["Domain"]) - set(DOMAINS))
    if unknown:
        raise ValueError(f"unknown image domains {unknown}; valid: {', '.join(DOMAINS)}")
    table = table.drop_duplicates()
    clashing = sorted(set(table.loc[table["ImageID"].duplicated(), "ImageID"]))
    if clashing:
        raise ValueError(
            f"{len(clashing)} images have two domains in the domains file: {clashing[:5]}; "
            "give each image one row"
        )
    out = image_ids.map(table.set_index("ImageID")["Domain"])
    if out.isna().any():
        missing = sorted(image_ids[out.isna()])
        raise ValueError(f"{len(missing)} images have no domain in the domains file: {missing[:5]}")
    return out.astype(object)
