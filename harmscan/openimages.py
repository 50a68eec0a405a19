"""Open Images V7 metadata logic: label and image-list streaming, images to sides and domains.

Pure functions over the real OIDv7 file layouts (class names and the hierarchy are in
`harmscan.classtree`):

- human-verified image-level labels ``ImageID,Source,LabelName,Confidence``;
- image lists ``ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,
  Title,OriginalSize,OriginalMD5,Thumbnail300KURL,Rotation``.

Label files are several GB, so they are streamed with
pyarrow in bounded blocks and filtered by class id as they are read. Image lists carry free text
(Title, Author) whose quoted values may hold line breaks, so they are read with pyarrow's
``newlines_in_values``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

if TYPE_CHECKING:
    from harmscan.classtree import ClassSets

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
    source: Source,
    columns: Iterable[str],
    types: Mapping[str, pa.DataType],
    chunk_rows: int,
    *,
    free_text: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Stream ``columns`` of a CSV in blocks. ``free_text``: quoted values may hold line breaks
    (image lists: Title, Author); pyarrow must then split blocks by parsing, not at newlines."""
    read = pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * BYTES_PER_ROW))
    parse = pacsv.ParseOptions(newlines_in_values=free_text)
    convert = pacsv.ConvertOptions(include_columns=list(columns), column_types=dict(types))
    path = str(source) if isinstance(source, str | Path) else source
    with _reading(source, columns):
        yield from pacsv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )


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
        for batch in _csv_stream(source, IMAGE_COLUMNS, types, chunk_rows, free_text=True)
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
