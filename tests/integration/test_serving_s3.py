"""S3 image sources against a real S3-compatible server (moto): allowed buckets, size limits,
missing keys, and an unreachable endpoint reported as an infrastructure failure."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from serving.classifier import BatchClassifier, Rejection
from serving.inputs import InputReader, SourceUnavailable
from serving.s3source import boto3_s3_factory
from serving.schema import Request, Result, encode_request
from serving.source import load_model_folder
from stack.process import free_port
from tests.serving_support import BLUE, RED, image_bytes, save_local_model

pytestmark = pytest.mark.slow


@pytest.fixture
def bucket(mirror_endpoints, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = mirror_endpoints.s3_endpoint
    name = f"serving-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="red.jpg", Body=image_bytes(RED))
    s3.put_object(Bucket=name, Key="blue.png", Body=image_bytes(BLUE, "PNG"))
    s3.put_object(Bucket=name, Key="big.jpg", Body=b"\xff\xd8" + b"0" * 5000)
    s3.put_object(Bucket=name, Key="empty.jpg", Body=b"")
    yield endpoint, name
    for key in ("red.jpg", "blue.png", "big.jpg", "empty.jpg"):
        s3.delete_object(Bucket=name, Key=key)
    s3.delete_bucket(Bucket=name)


def classifier_for(endpoint: str, buckets: list[str]) -> BatchClassifier:
    reader = InputReader([], buckets, 4000, boto3_s3_factory(endpoint, "us-east-1"))
    return BatchClassifier(reader, workers=2, max_pixels=1_000_000, decode_timeout_s=10)


def test_s3_requests(bucket: tuple[str, str], tmp_path: Path) -> None:
    endpoint, name = bucket
    model = load_model_folder(save_local_model(tmp_path / "m"), name="m", version="1",
                              runtime="onnx")  # fmt: skip
    classifier = classifier_for(endpoint, [name])
    values = [
        encode_request("red", s3=f"s3://{name}/red.jpg"),
        encode_request("blue", s3=f"s3://{name}/blue.png"),
        encode_request("missing", s3=f"s3://{name}/nope.jpg"),
        encode_request("big", s3=f"s3://{name}/big.jpg"),
        encode_request("other", s3="s3://not-allowed/red.jpg"),
        encode_request("empty", s3=f"s3://{name}/empty.jpg"),
    ]
    try:
        red, blue, missing, big, other, empty = classifier.classify(values, model, 0.0)
    finally:
        classifier.close()
    assert isinstance(red, Result)
    assert isinstance(blue, Result)
    assert (red.label, blue.label, red.source) == ("harmful", "safe", f"s3://{name}/red.jpg")
    rejected = (missing, big, other, empty)
    reasons = [r.reason if isinstance(r, Rejection) else r for r in rejected]
    assert reasons == ["not_found", "too_large", "forbidden_path", "not_an_image"]


def test_unreachable_s3_is_infrastructure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    model = load_model_folder(save_local_model(tmp_path / "m"), name="m", version="1",
                              runtime="onnx")  # fmt: skip
    classifier = classifier_for(f"http://127.0.0.1:{free_port()}", ["b"])
    try:
        with pytest.raises(SourceUnavailable, match=r"s3://b/k\.jpg"):
            classifier.classify([encode_request("x", s3="s3://b/k.jpg")], model, 0.0)
    finally:
        classifier.close()


def test_a_gzip_content_encoded_object_is_read_as_stored_not_inflated(
    bucket: tuple[str, str], tmp_path: Path
) -> None:
    # A 64 MB gzip bomb (65 kB stored) and a gzipped image, both with Content-Encoding: gzip:
    # botocore hands back the stored bytes, capped by the object size limit, never the inflated.
    import gzip
    import resource

    endpoint, name = bucket
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bomb = gzip.compress(bytes(64 * 2**20), 9)
    s3.put_object(Bucket=name, Key="bomb.jpg", Body=bomb, ContentEncoding="gzip")
    s3.put_object(Bucket=name, Key="zipped.png", Body=gzip.compress(image_bytes(RED, "PNG")),
                  ContentEncoding="gzip", ContentType="image/png")  # fmt: skip
    model = load_model_folder(save_local_model(tmp_path / "m"), name="m", version="1",
                              runtime="onnx")  # fmt: skip
    reader = InputReader([], [name], 200_000, boto3_s3_factory(endpoint, "us-east-1"))
    classifier = BatchClassifier(reader, workers=1, max_pixels=1_000_000, decode_timeout_s=10)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        outcomes = classifier.classify(
            [encode_request(k, s3=f"s3://{name}/{k}") for k in ("bomb.jpg", "zipped.png")],
            model,
            0.0,
        )
    finally:
        classifier.close()
        for key in ("bomb.jpg", "zipped.png"):
            s3.delete_object(Bucket=name, Key=key)
    grew_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    for outcome in outcomes:
        assert isinstance(outcome, Rejection)
        assert outcome.reason == "unsupported_format"
        assert outcome.detail.startswith("gzip-compressed data")
    assert grew_kb < 32 * 1024  # the 64 MB were never inflated here


class _SlowS3(threading.Thread):
    """An S3 endpoint answering every GET with a 100 kB object, one byte every 50 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                try:
                    for _ in range(100_000):
                        self.wfile.write(b"\xff")
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    return

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def run(self) -> None:
        self.server.serve_forever(poll_interval=0.1)


def test_a_slow_endpoint_is_infrastructure_within_the_read_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each byte came within botocore's read timeout, so the read went on for ~80 minutes.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    slow = _SlowS3()
    slow.start()
    reader = InputReader([], ["b"], 200_000, boto3_s3_factory(slow.endpoint, "us-east-1"),
                         s3_read_deadline_s=1.5)  # fmt: skip
    request = Request(id="slow", kind="s3", source="s3://b/k.jpg")
    started = time.monotonic()
    try:
        with pytest.raises(SourceUnavailable, match=r"serving\.s3_read_deadline_s"):
            reader.read(request)
    finally:
        slow.server.shutdown()
    assert time.monotonic() - started < 10


ODD_KEYS = [
    "with space.jpg",
    "plus+sign.jpg",
    "hash#frag.jpg",
    "query?versionId=1.jpg",
    "percent%2e%2e.jpg",
    "é/ü/名前.jpg",
    "a//double/slash.jpg",
    "trailing.dot.",
    "\u202ertl.jpg",
]


def test_s3_keys_with_odd_characters_name_exactly_their_object(
    bucket: tuple[str, str], tmp_path: Path
) -> None:
    # Every key is sent percent-encoded as it is: each reads its own object (a red image), and
    # the same key with one character changed is not_found, never another object.
    endpoint, name = bucket
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    model = load_model_folder(save_local_model(tmp_path / "m"), name="m", version="1",
                              runtime="onnx")  # fmt: skip
    classifier = classifier_for(endpoint, [name])
    uris = [f"s3://{name}/{key}" for key in ODD_KEYS]
    values = [encode_request(f"k{i}", s3=uri) for i, uri in enumerate(uris)]
    values += [encode_request(f"m{i}", s3=uri[:-1] + "x") for i, uri in enumerate(uris)]
    try:
        for key in ODD_KEYS:
            s3.put_object(Bucket=name, Key=key, Body=image_bytes(RED))
        outcomes = classifier.classify(values, model, 0.0)
    finally:
        classifier.close()
        for key in ODD_KEYS:
            s3.delete_object(Bucket=name, Key=key)
    found, missing = outcomes[: len(ODD_KEYS)], outcomes[len(ODD_KEYS) :]
    assert [(o.label, o.source) if isinstance(o, Result) else o for o in found] == [
        ("harmful", uri) for uri in uris
    ]
    assert [o.reason if isinstance(o, Rejection) else o for o in missing] == ["not_found"] * len(
        ODD_KEYS
    )
