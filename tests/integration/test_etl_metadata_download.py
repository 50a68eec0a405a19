"""The metadata download against a loopback HTTP server: cache, resume, size and MD5 checks.

The server here is a small fault injector (it can cut a body short or state a wrong MD5), which the
mirror's well-behaved server cannot do.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from rich.progress import Progress

from tasks.download import DownloadError, MetadataNotFound, expected_md5, fetch
from tasks.openimages import retry_on

BODY = os.urandom(300_000)
# A label file as a server may send it gzip-encoded (nginx gzip_static, GCS objects uploaded with
# Content-Encoding: gzip): Content-Length, ranges and the MD5 are those of the encoded bytes.
CSV = b"ImageID,Source,LabelName,Confidence\n" + b"".join(
    b"%016x,verification,/m/0%d,1\n" % (i, i % 7) for i in range(20_000)
)


class Faulty(BaseHTTPRequestHandler):
    """GET with Range support; ``cut`` truncates the next body, ``md5`` picks the stated MD5,
    ``gzip`` sends `CSV` gzip-encoded instead of `BODY`, ``csv`` sends it plain, ``length``
    False leaves Content-Length out (the body ends when the connection closes)."""

    state: ClassVar[dict] = {}

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        state = self.state
        state["requests"].append(self.headers.get("Range"))
        if state.get("throttle"):  # [(status, Retry-After), ...] answered before the body
            status, after = state["throttle"].pop(0)
            self.send_response(status)
            self.send_header("Retry-After", after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if state.get("status"):
            self.send_response(state["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        encode = bool(state.get("gzip"))
        start = 0
        if state["ranges"] and (wanted := self.headers.get("Range")):
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            # Like nginx compressing on the fly: a range is served plain.
            encode = encode and state["gzip"] != "on the fly"
        plain_csv = state.get("gzip") or state.get("csv")
        whole = gzip.compress(CSV, mtime=0) if encode else CSV if plain_csv else BODY
        if start >= len(whole):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(whole)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = whole[start:]
        self.send_response(206 if start else 200)
        if state.get("length", True):  # else HTTP/1.0 style: the body ends when the server closes
            self.send_header("Content-Length", str(len(body)))
        if encode:
            self.send_header("Content-Encoding", "gzip")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(whole) - 1}/{len(whole)}")
        digest = hashlib.md5(whole if state["md5"] == "right" else b"other").digest()
        if state["md5"] and not start:
            self.send_header("Content-MD5", base64.b64encode(digest).decode())
        if state["md5"]:
            self.send_header("ETag", f'"{digest.hex()}"')
        self.end_headers()
        cut = state.pop("cut", None)
        self.wfile.write(body[:cut] if cut else body)
        if cut:
            self.close_connection = True


@pytest.fixture
def server() -> Iterator[tuple[str, dict]]:
    state = {"requests": [], "ranges": True, "md5": "right"}
    handler = type("Handler", (Faulty,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v7/labels.csv", state
    httpd.shutdown()
    httpd.server_close()


def run_fetch(url: str, dest: Path) -> tuple[Path, bool]:
    with requests.Session() as session, Progress(disable=True) as progress:
        return fetch(url, dest, timeout=10, session=session, progress=progress)


def test_download_is_checked_then_cached(server, tmp_path):
    url, state = server
    dest = tmp_path / "labels.csv"
    assert run_fetch(url, dest) == (dest, True)
    assert dest.read_bytes() == BODY
    assert run_fetch(url, dest) == (dest, False)
    assert len(state["requests"]) == 1  # the second run asked nothing


def test_interrupted_download_resumes_with_range(server, tmp_path):
    url, state = server
    dest = tmp_path / "labels.csv"
    state["cut"] = 100_000
    with pytest.raises((DownloadError, requests.RequestException)):
        run_fetch(url, dest)
    part = tmp_path / "labels.csv.part"
    assert 0 < part.stat().st_size < len(BODY)
    had = part.stat().st_size
    assert run_fetch(url, dest) == (dest, True)
    assert dest.read_bytes() == BODY
    assert state["requests"][-1] == f"bytes={had}-"
    assert not part.exists()


def test_a_gzip_encoded_file_is_checked_as_sent_and_stored_decoded(server, tmp_path):
    """It failed every time: the decoded body never matched the encoded Content-Length."""
    url, state = server
    state["gzip"] = True
    dest = tmp_path / "labels.csv"
    assert run_fetch(url, dest) == (dest, True)
    assert dest.read_bytes() == CSV
    assert run_fetch(url, dest) == (dest, False)
    assert len(state["requests"]) == 1


def test_an_interrupted_gzip_download_resumes_on_the_encoded_bytes(server, tmp_path):
    url, state = server
    state["gzip"], state["cut"] = True, 20_000
    dest = tmp_path / "labels.csv"
    with pytest.raises((DownloadError, requests.RequestException)):
        run_fetch(url, dest)
    had = (tmp_path / "labels.csv.part").stat().st_size
    assert 0 < had < len(gzip.compress(CSV, mtime=0))
    assert run_fetch(url, dest) == (dest, True)
    assert state["requests"][-1] == f"bytes={had}-"
    assert dest.read_bytes() == CSV


@pytest.mark.parametrize("after", ["1", "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_a_throttled_download_waits_as_asked_and_goes_on(server, tmp_path, after):
    """429/503 with Retry-After (seconds or a date) failed the task at once; Prefect's fixed
    retry delays then asked again sooner than the server said."""
    url, state = server
    state["throttle"] = [(429, after), (503, after)]
    dest = tmp_path / "labels.csv"
    assert run_fetch(url, dest) == (dest, True)
    assert dest.read_bytes() == BODY
    assert len(state["requests"]) == 3


def test_a_server_asking_for_a_long_wait_is_named(server, tmp_path):
    url, state = server
    state["throttle"] = [(503, "7200")]
    with pytest.raises(DownloadError, match=r"HTTP 503.*retry after 7200 s"):
        run_fetch(url, tmp_path / "labels.csv")
    assert len(state["requests"]) == 1


def test_a_resume_answered_in_another_encoding_starts_over(server, tmp_path):
    """A server compressing on the fly serves a range plain: the gzip bytes already fetched
    and the plain rest were joined into a file that was neither."""
    url, state = server
    state["gzip"], state["cut"], state["md5"] = "on the fly", 20_000, None  # nginx: no MD5
    dest = tmp_path / "labels.csv"
    with pytest.raises((DownloadError, requests.RequestException)):
        run_fetch(url, dest)
    assert run_fetch(url, dest) == (dest, True)
    assert dest.read_bytes() == CSV


def unstated(state: dict, *, ranges: bool, cut: int | None = None) -> None:
    """Serve `CSV` with no Content-Length and no MD5, so only the server's closing ends it."""
    state.update(csv=True, md5=None, length=False, ranges=ranges)
    if cut is not None:
        state["cut"] = cut


def test_a_body_without_length_cut_short_is_completed_by_asking_past_its_end(server, tmp_path):
    url, state = server
    unstated(state, ranges=True, cut=100_001)  # mid-line, and the close looks like the end
    dest = tmp_path / "labels.csv"
    assert run_fetch(url, dest) == (dest, True)
    assert dest.read_bytes() == CSV
    # The end was asked for twice: the missing bytes came (206), then nothing more (416).
    assert state["requests"] == [None, "bytes=100001-", f"bytes={len(CSV)}-"]
    meta = json.loads((tmp_path / "labels.csv.meta.json").read_text())
    assert meta["end_checked_by"] == "range"


def test_a_body_without_length_cut_mid_line_is_refused_where_ranges_are_not_served(
    server, tmp_path
):
    url, state = server
    unstated(state, ranges=False, cut=100_001)
    dest = tmp_path / "labels.csv"
    with pytest.raises(DownloadError, match="ends mid-line"):
        run_fetch(url, dest)
    assert not dest.exists()
    assert not (tmp_path / "labels.csv.part").exists()
    assert run_fetch(url, dest) == (dest, True)  # the whole body next time: kept
    assert dest.read_bytes() == CSV
    meta = json.loads((tmp_path / "labels.csv.meta.json").read_text())
    assert meta["end_checked_by"] == "none"


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    url, state = server
    state["ranges"] = False
    (tmp_path / "labels.csv.part").write_bytes(BODY[:5000])
    run_fetch(url, tmp_path / "labels.csv")
    assert (tmp_path / "labels.csv").read_bytes() == BODY


def test_md5_mismatch_fails_and_discards_the_part(server, tmp_path):
    url, state = server
    state["md5"] = "wrong"
    with pytest.raises(DownloadError, match="MD5"):
        run_fetch(url, tmp_path / "labels.csv")
    assert not (tmp_path / "labels.csv").exists()
    assert not (tmp_path / "labels.csv.part").exists()


@pytest.mark.parametrize(
    ("headers", "whole", "expected"),
    [
        ({"ETag": '"0123456789abcdef0123456789abcdef"'}, True, "0123456789abcdef0123456789abcdef"),
        ({"ETag": '"0123456789abcdef0123456789abcdef-3"'}, True, None),  # multipart: not an MD5
        ({"ETag": '"12a-1bc"'}, True, None),
        (
            {"x-goog-hash": "crc32c=AAAAAA==,md5=AAECAwQFBgcICQoLDA0ODw=="},
            False,
            "000102030405060708090a0b0c0d0e0f",
        ),
        ({"Content-MD5": "AAECAwQFBgcICQoLDA0ODw=="}, False, None),  # of a range, not the file
    ],
)
def test_expected_md5_from_headers(headers, whole, expected):
    response = requests.Response()
    response.headers.update(headers)
    assert expected_md5(response, whole=whole) == expected


@pytest.mark.parametrize("status", [403, 404])
def test_a_file_the_server_does_not_have_is_named_and_not_retried(server, tmp_path, status):
    """A wrong base URL or path was retried as DownloadError for 42 s before failing."""
    url, state = server
    state["status"] = status
    with pytest.raises(
        MetadataNotFound, match=f"HTTP {status}; check openimages.metadata_base_url"
    ):
        run_fetch(url, tmp_path / "labels.csv")
    assert state["requests"] == [None]

    class Failed:
        def __init__(self, error: BaseException) -> None:
            self.error = error

        def result(self, raise_on_failure: bool) -> BaseException:
            return self.error

    retry = retry_on(DownloadError, requests.RequestException, ConnectionError)
    assert not retry(None, None, Failed(MetadataNotFound("gone")))
    assert retry(None, None, Failed(DownloadError("short body")))
