"""Reading back the answers to one's own requests, on the real broker: `serving.outcomes` and
``harmscan produce --wait`` against a running consumer (the colour model: red is harmful)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from cli.app import _register_areas, app
from serving.headers import H_DETAIL, H_REASON, H_REQUEST_ID
from serving.outcomes import OutcomeReader
from tests.kafka_support import LoopThread
from tests.serving_support import BLUE, RED, LocalStage, local_stage, serving_overrides, write_image

pytestmark = pytest.mark.kafka


def _result(request_id: str, label: str = "safe", version: str = "1") -> bytes:
    body = {"v": 1, "id": request_id, "label": label, "p_harmful": 0.1, "threshold": 0.5,
            "review": False, "model_name": "m", "model_version": version, "source": "inline",
            "sent_at": None, "received_at": 1.0, "completed_at": 1.0,
            "latency_ms": 1.0}  # fmt: skip
    return json.dumps(body).encode()


def _cli_args(stage: LocalStage, bootstrap: str) -> list[str]:
    """The stage's settings as the command line gives them."""
    overrides = serving_overrides(bootstrap=bootstrap, tracking_uri="http://127.0.0.1:9",
                                  model_name="unused", topics=stage.topics, group=stage.group,
                                  roots=[stage.root])  # fmt: skip
    args = ["--profile", "ci", "--set", f"paths.root={stage.root.parent / 'harmscan'}"]
    for override in overrides:
        args += ["--set", override]
    return args


def test_the_reader_reads_only_what_follows_it_and_skips_what_is_not_an_answer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stage = local_stage(kafka_bootstrap, tmp_path)
    results, dead = stage.topics["results"], stage.topics["dead_letter"]
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(results, key=b"old", value=_result("old", version="1"))  # history: not read
    raw.produce(dead, key=b"gone", value=b"x", headers=[(H_REASON, b"not_found")])
    assert raw.flush(30) == 0

    with OutcomeReader(stage.settings) as reader:
        raw.produce(results, key=b"junk", value=b"not a result")  # skipped, not fatal
        raw.produce(dead, key=b"anon", value=b"x", headers=[(H_REASON, b"bad_schema")])  # no id
        raw.produce(results, key=b"old", value=_result("old", label="harmful", version="2"))
        said = [(H_REASON, b"truncated"), (H_DETAIL, b"cut\nshort"), (H_REQUEST_ID, b"bad")]
        raw.produce(dead, key=b"bad", value=b"x", headers=said)
        raw.produce(results, key=b"other", value=_result("other"))  # not asked for
        assert raw.flush(30) == 0
        seen = []
        outcomes = reader.collect(["old", "bad", "never"], timeout=6, on_outcome=seen.append)

    assert sorted(outcomes) == ["bad", "old"]
    assert [o.request_id for o in seen] == [o.request_id for o in outcomes.values()]
    assert (outcomes["old"].label, outcomes["old"].model_version) == ("harmful", "2")
    assert not outcomes["old"].rejected
    assert outcomes["bad"].rejected
    assert outcomes["bad"].describe() == "rejected: truncated (cut\\nshort)"  # escaped


def test_a_reader_on_a_topic_that_is_not_there_names_what_creates_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stage = local_stage(kafka_bootstrap, tmp_path)
    settings = stage.settings.model_copy(
        update={"kafka": stage.settings.kafka.model_copy(update={"results_topic": "absent-x1"})}
    )
    with pytest.raises(RuntimeError, match=r"absent-x1 is not there.*harmscan serve"):
        OutcomeReader(settings)


def test_produce_wait_prints_every_image_outcome(kafka_bootstrap: str, tmp_path: Path) -> None:
    stage = local_stage(kafka_bootstrap, tmp_path)
    write_image(stage.root / "red.jpg", RED)
    write_image(stage.root / "blue.png", BLUE, "PNG")
    (stage.root / "cut.jpg").write_bytes((stage.root / "red.jpg").read_bytes()[:200])
    _register_areas()
    args = [*_cli_args(stage, kafka_bootstrap), "produce", str(stage.root), "--no-progress"]

    with LoopThread(stage.consumer()):
        result = CliRunner().invoke(app, [*args, "--wait", "60"])
        as_json = CliRunner().invoke(app, [*args, "--wait", "60", "--json"])

    assert result.exit_code == 0, result.output
    lines = {line.split(" -> ")[0]: line.split(" -> ")[1] for line in result.output.splitlines()
             if " -> " in line}  # fmt: skip
    assert sorted(lines) == sorted(str(stage.root / n) for n in ("red.jpg", "blue.png", "cut.jpg"))
    assert lines[str(stage.root / "red.jpg")].startswith("harmful (p_harmful ")
    assert lines[str(stage.root / "blue.png")].startswith("safe (p_harmful ")
    assert lines[str(stage.root / "cut.jpg")].startswith("rejected: truncated")
    assert as_json.exit_code == 0, as_json.output
    records = {r["file"]: r for r in map(json.loads, as_json.stdout.splitlines())}  # only JSON
    assert sorted(records) == sorted(lines)
    red, cut = records[str(stage.root / "red.jpg")], records[str(stage.root / "cut.jpg")]
    assert (red["label"], red["reason"], red["model_version"]) == ("harmful", None, "1")
    assert red["p_harmful"] > 0.5
    assert (cut["label"], cut["reason"]) == (None, "truncated")


def test_produce_wait_names_the_images_left_without_an_answer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stage = local_stage(kafka_bootstrap, tmp_path)
    image = write_image(stage.root / "red.jpg", RED)
    _register_areas()
    args = [*_cli_args(stage, kafka_bootstrap), "produce", str(image), "--no-progress"]

    result = CliRunner().invoke(app, [*args, "--wait", "2"])  # no consumer runs

    assert result.exit_code == 1
    assert "sent 1 requests" in result.output
    assert f"no answer within 2 s: {image}" in result.output
    bad = CliRunner().invoke(app, [*args, "--wait", "0"])
    assert bad.exit_code == 2
    assert "--wait must be a positive number of seconds" in bad.output
    no_wait = CliRunner().invoke(app, [*args, "--json"])
    assert no_wait.exit_code == 2
    assert "give --wait SECONDS too" in no_wait.output


def test_produce_inline_sends_an_empty_file_and_goes_on_past_one_it_cannot_read(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = local_stage(kafka_bootstrap, tmp_path)
    (stage.root / "a-empty.jpg").write_bytes(b"")
    gone = write_image(stage.root / "b-gone.jpg", RED)
    red = write_image(stage.root / "c-red.jpg", RED)
    read_bytes = Path.read_bytes

    def unreadable(path: Path) -> bytes:  # the fault: a file that went away after the listing
        if path == gone:
            raise FileNotFoundError(2, "No such file or directory")
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", unreadable)
    _register_areas()
    args = [*_cli_args(stage, kafka_bootstrap), "produce", str(stage.root), "--no-progress"]

    with LoopThread(stage.consumer()):
        result = CliRunner().invoke(app, [*args, "--inline", "--wait", "60"])

    assert result.exit_code == 1, result.output  # one file failed; the others were answered
    assert "sent 2 requests" in result.output
    assert f"failed: {gone}: cannot read it: No such file or directory" in result.output
    assert f"{stage.root / 'a-empty.jpg'} -> rejected: not_an_image" in result.output
    assert f"{red} -> harmful (p_harmful " in result.output
