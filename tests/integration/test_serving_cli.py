"""``harmscan produce`` against a real broker: one path request per image, absolute paths."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import _register_areas, app
from serving.schema import decode_request
from tests.kafka_support import read_topic
from tests.serving_support import BLUE, RED, write_image

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def cli() -> CliRunner:
    _register_areas()
    return CliRunner()


def test_produce_sends_path_and_inline_requests(
    cli: CliRunner,
    kafka_bootstrap: str,
    kafka_topics: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = kafka_topics("requests")
    folder = tmp_path / "images"
    write_image(folder / "a.jpg", RED)
    write_image(folder / "sub" / "b.png", BLUE, "PNG")
    (folder / "notes.txt").write_text("not an image suffix: not sent")
    monkeypatch.chdir(tmp_path)
    common = ["--profile", "ci", "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
              "--set", f"kafka.requests_topic={topic}"]  # fmt: skip

    result = cli.invoke(app, [*common, "produce", "images", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "sent 2 requests" in result.output
    result = cli.invoke(app, [*common, "produce", str(folder / "a.jpg"), "--inline", "--rate",
                              "50", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output

    requests = [decode_request(m.value()) for m in read_topic(kafka_bootstrap, topic, idle=2)]
    paths = sorted(r.source for r in requests if r.kind == "path")
    assert paths == [str(folder / "a.jpg"), str(folder / "sub" / "b.png")]
    assert [r.kind for r in requests].count("image_b64") == 1
    assert all(r.sent_at for r in requests)


def test_produce_sends_s3_requests_beside_paths(
    cli: CliRunner, kafka_bootstrap: str, kafka_topics: Callable[..., str], tmp_path: Path
) -> None:
    topic = kafka_topics("requests")
    write_image(tmp_path / "a.jpg", RED)
    common = ["--profile", "ci", "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
              "--set", f"kafka.requests_topic={topic}",
              "--set", "serving.allowed_buckets=[b]"]  # fmt: skip

    result = cli.invoke(app, [*common, "produce", "s3://b/x/y.jpg", str(tmp_path / "a.jpg"),
                              "s3://other/z.png", "s3://b/x/y.jpg", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sent 3 requests" in result.output
    assert "bucket 'other' is not in serving.allowed_buckets" in result.output

    requests = [decode_request(m.value()) for m in read_topic(kafka_bootstrap, topic, idle=2)]
    assert sorted((r.kind, r.source) for r in requests) == [
        ("path", str(tmp_path / "a.jpg")),
        ("s3", "s3://b/x/y.jpg"),
        ("s3", "s3://other/z.png"),
    ]


def test_produce_sends_a_name_that_is_not_utf8_only_inline(
    cli: CliRunner, kafka_bootstrap: str, kafka_topics: Callable[..., str], tmp_path: Path
) -> None:
    topic = kafka_topics("requests")
    folder = tmp_path / "images"
    write_image(folder / "good.jpg", RED)
    odd = folder / os.fsdecode(b"na\xffme.png")  # a name from a Latin-1 file system
    write_image(odd, BLUE, "PNG")
    common = ["--profile", "ci", "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
              "--set", f"kafka.requests_topic={topic}"]  # fmt: skip

    result = cli.invoke(app, [*common, "produce", str(folder), "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "sent 1 requests" in result.output
    assert "its path is not UTF-8, which a path request cannot carry: send it with --inline" in (
        result.output
    )
    result = cli.invoke(app, [*common, "produce", str(odd), "--inline", "--no-progress"])
    assert result.exit_code == 0, result.output

    requests = [decode_request(m.value()) for m in read_topic(kafka_bootstrap, topic, idle=2)]
    assert sorted(r.kind for r in requests) == ["image_b64", "path"]
    assert [r.source for r in requests if r.kind == "path"] == [str(folder / "good.jpg")]


def test_produce_names_a_missing_path(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["--profile", "ci", "produce", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "nope" in result.output


def test_produce_inline_refuses_a_fifo_instead_of_blocking(cli: CliRunner, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    result = cli.invoke(app, ["--profile", "ci", "produce", "--inline", str(tmp_path / "pipe.jpg")])
    assert result.exit_code == 2
    assert "pipe.jpg is neither a regular file nor a folder" in result.output


def test_dlq_list_escapes_what_a_request_wrote(
    cli: CliRunner, kafka_bootstrap: str, kafka_topics: Callable[..., str], tmp_path: Path
) -> None:
    """A dead letter's detail quotes the request: a newline or an escape sequence in its path
    must not forge lines or drive the operator's terminal."""
    from confluent_kafka import Producer

    from serving.headers import dead_letter_headers

    topic = kafka_topics("dead_letter")
    forged = "/srv/x\n0:9  not_found  id=-  \x1b[2J\u202e"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    headers = dead_letter_headers("not_found", f"no such file: {forged}", None, "req/0/3")
    producer.produce(topic, value=b"{}", key=b"k", headers=headers)
    assert producer.flush(30) == 0
    common = ["--profile", "ci", "--set", f"paths.root={tmp_path}",
              "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
              "--set", f"kafka.dead_letter_topic={topic}"]  # fmt: skip
    result = cli.invoke(app, [*common, "dlq", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("1 dead letters")
    assert len(lines) == 3, lines  # the count, one reason, one dead letter
    assert "\x1b" not in result.output
    assert "no such file: /srv/x\\n0:9  not_found" in lines[2]


def test_dlq_replay_that_matches_nothing_says_so_and_list_refuses_a_negative_limit(
    cli: CliRunner, kafka_bootstrap: str, kafka_topics: Callable[..., str], tmp_path: Path
) -> None:
    from confluent_kafka import Producer

    from serving.headers import dead_letter_headers

    topic = kafka_topics("dead_letter")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    headers = dead_letter_headers("not_found", "no such file: /srv/a.jpg", "req-a1", "req/0/4")
    producer.produce(topic, value=b"{}", key=b"k", headers=headers)
    assert producer.flush(30) == 0
    common = ["--profile", "ci", "--set", f"paths.root={tmp_path}",
              "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
              "--set", f"kafka.dead_letter_topic={topic}"]  # fmt: skip

    nothing = cli.invoke(app, [*common, "dlq", "replay", "--id", "nosuch\x1b", "--dry-run"])
    one = cli.invoke(app, [*common, "dlq", "replay", "--id", "req-a1", "--dry-run"])
    negative = cli.invoke(app, [*common, "dlq", "list", "--limit", "-1"])

    assert nothing.exit_code == 1, nothing.output
    assert f"no dead letter in {topic} matches --id nosuch\\x1b; `harmscan dlq list`" in (
        nothing.output
    )
    assert one.exit_code == 0, one.output
    assert one.output.startswith("would replay 1 to ")
    assert negative.exit_code == 2
    assert "greater than or equal to 0" in negative.output


def test_dlq_list_limit_shows_the_latest_across_partitions(
    cli: CliRunner, kafka_bootstrap: str, kafka_topics: Callable[..., str], tmp_path: Path
) -> None:
    """``--limit`` cut the partition/offset order: the newest letter, on partition 0, was left
    out behind the end of the highest partition."""
    import time

    from confluent_kafka import Producer

    from serving.headers import dead_letter_headers

    topic = kafka_topics("dead_letter", partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    now = int(time.time() * 1000)
    for n, (partition, age_ms) in enumerate([(2, 3000), (2, 2000), (0, 0)]):
        headers = dead_letter_headers("not_found", f"letter {n}", f"req-{n}", f"r/0/{n}")
        producer.produce(topic, value=b"{}", key=b"k", partition=partition, headers=headers,
                         timestamp=now - age_ms)  # fmt: skip
    assert producer.flush(30) == 0
    common = ["--profile", "ci", "--set", f"paths.root={tmp_path}",
              "--set", f"kafka.bootstrap_servers={kafka_bootstrap}",
              "--set", f"kafka.dead_letter_topic={topic}"]  # fmt: skip

    result = cli.invoke(app, [*common, "dlq", "list", "--limit", "2"])

    assert result.exit_code == 0, result.output
    shown = [line.split()[2] for line in result.output.splitlines() if " id=" in line]
    assert shown == ["id=req-1", "id=req-2"]  # the two newest, oldest first


def test_dlq_refuses_a_missing_topic_and_counts_an_empty_one(
    cli: CliRunner,
    kafka_bootstrap: str,
    kafka_topics: Callable[..., str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """A topic nothing made (a typo in the setting) was listed as ``0 dead letters``."""
    common = ["--profile", "ci", "--set", f"paths.root={tmp_path}",
              "--set", f"kafka.bootstrap_servers={kafka_bootstrap}"]  # fmt: skip
    missing = unique("no-such-dead-letters")
    empty = kafka_topics("dead_letter")

    listed = cli.invoke(
        app, [*common, "--set", f"kafka.dead_letter_topic={missing}", "dlq", "list"]
    )
    replayed = cli.invoke(
        app,
        [*common, "--set", f"kafka.dead_letter_topic={missing}", "dlq", "replay",
         "--reason", "corrupt", "--dry-run"],
    )  # fmt: skip
    counted = cli.invoke(app, [*common, "--set", f"kafka.dead_letter_topic={empty}", "dlq", "list"])

    for result in (listed, replayed):
        assert result.exit_code == 2, result.output
        assert result.output.startswith(
            f"error: the dead-letter topic {missing} does not exist (kafka.dead_letter_topic); "
            "`harmscan serve` and `harmscan produce` create the serving topics"
        )
    assert counted.exit_code == 0, counted.output
    assert counted.output == f"0 dead letters in {empty}\n"
