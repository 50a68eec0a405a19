"""Which files `harmscan produce` sends: each image once, and a clear error when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import _register_areas, app
from serving.producer import iter_image_files, split_sources, unlisted_buckets


def test_a_file_named_twice_or_with_its_folder_is_sent_once(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    a = tmp_path / "a.jpg"
    files = list(iter_image_files([a, a, tmp_path, tmp_path / "." / "b.png"]))
    assert files == [a, tmp_path / "b.png"]


def test_a_folder_without_an_image_is_refused_before_kafka_is_asked(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").mkdir()  # a folder that only looks like an image
    (tmp_path / "notes.txt").write_text("not an image")
    _register_areas()
    no_broker = ["--profile", "ci", "--set", "kafka.bootstrap_servers=127.0.0.1:9"]
    result = CliRunner().invoke(app, [*no_broker, "produce", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"no image file in {tmp_path}" in result.output


def test_s3_uris_are_told_from_paths_and_sent_once() -> None:
    given = split_sources(["s3://b/x.jpg", "local/a.jpg", "S3://b/x.jpg", "s3://c/d/y.png"])
    assert given.s3_uris == ["s3://b/x.jpg", "s3://c/d/y.png"]
    assert given.paths == [Path("local/a.jpg")]
    assert unlisted_buckets(given.s3_uris, ["b"]) == ["c"]


def test_a_malformed_s3_uri_is_refused_before_kafka_is_asked() -> None:
    _register_areas()
    no_broker = ["--profile", "ci", "--set", "kafka.bootstrap_servers=127.0.0.1:9"]
    for uri, named in (("s3://bucket-only", "s3://bucket/key"), ("s3://b/a/../k", "'..'")):
        result = CliRunner().invoke(app, [*no_broker, "produce", uri])
        assert result.exit_code == 2, result.output
        assert named in result.output


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--wait", "nan", "--wait must be a positive number of seconds"),
        ("--wait", "inf", "--wait must be a positive number of seconds"),
        ("--rate", "nan", "--rate must be a finite number of requests per second"),
        ("--rate", "inf", "--rate must be a finite number of requests per second"),
        ("--rate", "1e-300", "at least 0.001"),  # was an OverflowError of time_t
        ("--rate", "0", "at least 0.001"),
    ],
)
def test_a_wait_or_rate_that_is_no_number_is_refused_before_kafka_is_asked(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8\xff")
    _register_areas()
    no_broker = ["--profile", "ci", "--set", "kafka.bootstrap_servers=127.0.0.1:9"]
    result = CliRunner().invoke(app, [*no_broker, "produce", "--inline", option, value, str(image)])
    assert result.exit_code == 2, result.output
    assert says in result.output
