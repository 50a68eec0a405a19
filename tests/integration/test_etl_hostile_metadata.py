"""Open Images metadata written the way other tools write CSVs, over the mirror's own HTTP server.

A copy of the mirror's metadata is rewritten with a UTF-8 BOM (the hierarchy JSON too), CRLF line
endings, empty lines, quoted fields holding commas and quotes, an extra column, the columns in
another order, repeated image and label rows, class ids no description or hierarchy knows, label
rows of images no image list has, and repeated rows in the domains side file. Downloading it and
selecting the candidates must give exactly the candidates of the pristine mirror. A page served
where a label file should be fails naming the file and the columns it needs.
"""

from __future__ import annotations

import csv
import io
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from prefect.logging import disable_run_logger

from conf.loader import load_settings
from harmscan.openimages import MetadataError
from stack.mirror_metadata import MetadataHandler
from tasks.openimages import download_metadata, select_candidates
from tests.fixtures.mirror import METADATA_DIR

IMAGE_LISTS = (
    "v6/oidv6-train-images-with-labels-with-rotation.csv",
    "2018_04/validation/validation-images-with-rotation.csv",
    "2018_04/test/test-images-with-rotation.csv",
)
AUTHOR = 'Doe, "Jo" & Co.'
UNLISTED = "ffffffffffffff01"


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """BOM, CRLF, minimal quoting, an empty line every few rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for index, row in enumerate(rows):
        writer.writerow(row)
        if index % 7 == 3:
            buffer.write("\r\n")
    path.write_text("\ufeff" + buffer.getvalue(), encoding="utf-8", newline="")


def _reordered(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """An extra column with a comma and quotes in its name and values, all columns reversed."""
    header = [*header, 'Note, "extra"']
    rows = [[*row, 'a, "b", c'] for row in rows]
    return header[::-1], [row[::-1] for row in rows]


def hostile_copy(root: Path) -> None:
    shutil.copytree(METADATA_DIR, root)
    for rel in IMAGE_LISTS:
        header, rows = _read(root / rel)
        author = header.index("Author")
        rows = [[*row[:author], AUTHOR, *row[author + 1 :]] for row in rows]
        _write(root / rel, *_reordered(header, rows + rows[:5]))
    for path in sorted((root / "v7").glob("*-annotations-human-imagelabels.csv")):
        header, rows = _read(path)
        known = rows[0][header.index("LabelName")]
        ghost = dict.fromkeys(header, "1") | {"Source": "verification"}
        extra = [
            [*(ghost | {"ImageID": rows[0][0], "LabelName": "/m/0zzzzzz"}).values()],
            [*(ghost | {"ImageID": UNLISTED, "LabelName": known}).values()],
        ]
        _write(path, *_reordered(header, rows + rows[:20] + extra))
    descriptions = root / "v7/oidv7-class-descriptions.csv"
    header, rows = _read(descriptions)
    _write(descriptions, header, [*rows, ["/m/0yyyyyy", 'Odd, "quoted" name']])
    hierarchy = root / "2018_04/bbox_labels_600_hierarchy.json"
    text = hierarchy.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\n", "\r\n")
    hierarchy.write_text("\ufeff" + text, encoding="utf-8", newline="")
    domains = root / "harmscan/image-domains.csv"
    header, rows = _read(domains)
    _write(domains, header, rows + rows[:3])


def html_instead_of_labels(root: Path) -> None:
    """What a proxy or a moved bucket serves: a page where the validation labels should be."""
    shutil.copytree(METADATA_DIR, root)
    (root / "v7/oidv7-val-annotations-human-imagelabels.csv").write_text(
        "<!DOCTYPE html><html><body><h1>Access denied</h1></body></html>\n"
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The pristine and the hostile metadata, each behind the mirror's HTTP handler."""
    folder = tmp_path_factory.mktemp("metadata")
    hostile_copy(folder / "hostile")
    html_instead_of_labels(folder / "html")
    servers, urls = [], {}
    roots = {"pristine": METADATA_DIR, "hostile": folder / "hostile", "html": folder / "html"}
    for name, root in roots.items():
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(MetadataHandler, directory=str(root)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        urls[name] = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield urls
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def candidates(url: str, root: Path) -> tuple[pd.DataFrame, dict]:
    settings = load_settings(
        "ci",
        [f"paths.root={root}", f"openimages.metadata_base_url={url}",
         "etl.max_per_side=10000", "etl.max_per_label=10000"],
        env={},
    )  # fmt: skip
    oi, subsets = settings.openimages, list(settings.openimages.subsets)
    with disable_run_logger():
        metadata = download_metadata.fn(oi, settings.paths.cache, subsets)
        picked = select_candidates.fn(metadata, settings.classes, settings.etl, subsets, root / "w")
    return pd.read_parquet(picked["candidates"]), picked["counts"]


def test_hostile_csvs_give_the_pristine_candidates(served: dict[str, str], tmp_path: Path) -> None:
    pristine, _ = candidates(served["pristine"], tmp_path / "pristine")
    hostile, counts = candidates(served["hostile"], tmp_path / "hostile")
    assert len(pristine) > 100
    same = [c for c in pristine.columns if c != "author"]
    pd.testing.assert_frame_equal(hostile[same], pristine[same])
    assert set(hostile["author"]) == {AUTHOR}  # quotes and comma survive, nothing shifted
    assert UNLISTED not in set(hostile["image_id"])
    assert counts["not_in_image_list"] == {"all": 1}


def test_a_page_instead_of_a_label_file_is_named(served: dict[str, str], tmp_path: Path) -> None:
    """It failed in pyarrow with "Column 'ImageID' in include_columns does not exist" alone."""
    with pytest.raises(MetadataError) as caught:
        candidates(served["html"], tmp_path)
    message = str(caught.value)
    assert "oidv7-val-annotations-human-imagelabels.csv" in message
    assert "needs the columns ImageID, Source, LabelName, Confidence" in message
    assert "<!DOCTYPE html>" in message
