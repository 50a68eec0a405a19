"""The checks `harmscan train|retrain|promote` make before any work: one line, at once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import typer

from cli.failures import UNREACHABLE, USAGE
from cli.preflight import (
    checked_dataset,
    checked_options,
    checked_weights,
    kafka_reachable,
    mlflow_reachable,
    openimages_reachable,
)


def test_a_dataset_folder_without_a_manifest_is_refused_with_the_fix(
    make_settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as ended:
        checked_dataset(make_settings(), tmp_path / "nope")
    assert ended.value.exit_code == USAGE
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"error: --dataset {tmp_path / 'nope'}: no manifest.csv in ")
    assert line.endswith("or run `harmscan etl`")


def test_no_dataset_yet_is_refused_and_a_made_one_is_found(
    make_settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    with pytest.raises(typer.Exit) as ended:
        checked_dataset(settings, None)
    assert ended.value.exit_code == USAGE
    assert "no dataset yet" in capsys.readouterr().err
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "manifest.csv").write_text("image_id\n")
    datasets = settings.paths.data / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "latest.json").write_text(json.dumps({"path": str(folder)}))
    assert checked_dataset(settings, None) == folder
    assert checked_dataset(settings, folder) == folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_an_mlflow_server_that_does_not_answer_is_named_with_its_setting(
    make_settings, health_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    down = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(typer.Exit) as ended:
        mlflow_reachable(make_settings(f"mlflow.tracking_uri={down}"))
    assert ended.value.exit_code == UNREACHABLE
    line = capsys.readouterr().err.strip()
    assert line == (
        f"error: cannot reach MLflow at {down} (mlflow.tracking_uri); start the local stack "
        "(harmscan up) or change mlflow.tracking_uri"
    )
    mlflow_reachable(make_settings(f"mlflow.tracking_uri={health_server}"))
    mlflow_reachable(make_settings("mlflow.tracking_uri=file:///tmp/mlruns"))  # no server


_MISSING_WEIGHTS = ["--set", "train.weights.mobilenet_v2=weights/missing.pth"]


def _run_cli(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``harmscan`` with ``argv`` in a fresh interpreter; it prints its exit code and whether torch
    and prefect were imported by then."""
    script = (
        "import sys\n"
        "from cli.app import main\n"
        f"sys.argv = {argv!r}\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, 'torch' in sys.modules, 'prefect' in sys.modules)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["train", "--dataset", "{tmp}/nope"], "error: --dataset {tmp}/nope: no manifest.csv"),
        (["train", "--epochs", "0"], "error: invalid settings:\n  train.epochs: "),
        (["retrain", "--max-per-side", "0"], "error: invalid settings:\n  etl.max_per_side: "),
        (["etl", "--max-per-side", "-5"], "error: invalid settings:\n  etl.max_per_side: "),
        ([*_MISSING_WEIGHTS, "train"], "error: weights file for mobilenet_v2 not found (tried "),
        ([*_MISSING_WEIGHTS, "retrain"], "error: weights file for mobilenet_v2 not found (tried "),
        ([*_MISSING_WEIGHTS, "demo"], "error: weights file for mobilenet_v2 not found (tried "),
        (["train", "--weights", "resnet50={tmp}/r.pth"], "error: weights file for resnet50 not"),
        (
            ["--set", "mlflow.gate_set={tmp}", "promote", "3"],
            "error: mlflow.gate_set photo set '{tmp}': no manifest.csv in {tmp} (freeze a",
        ),
        (
            ["--set", "mlflow.gate_set={tmp}/nope", "promote", "--rollback"],
            "error: mlflow.gate_set photo set '{tmp}/nope': no manifest.csv in {tmp}/nope (no such",
        ),
    ],
)
def test_a_wrong_option_ends_the_command_before_prefect_or_torch_is_imported(
    tmp_path: Path, args: list[str], line: str
) -> None:
    argv = ["harmscan", "--profile", "ci", *(a.format(tmp=tmp_path) for a in args)]
    done = _run_cli(argv)
    assert done.stdout.split() == [str(USAGE), "False", "False"], done.stderr
    assert done.stderr.startswith(line.format(tmp=tmp_path))


def test_options_are_checked_as_the_settings_they_set(make_settings) -> None:
    settings = make_settings()
    changed = checked_options(settings, {"train.epochs": 2, "etl.seed": None})
    assert changed.train.epochs == 2
    assert changed.etl.seed == settings.etl.seed  # None: not given
    with pytest.raises(typer.Exit) as ended:
        checked_options(settings, {"serving.runtime": "tensorflow"})
    assert ended.value.exit_code == USAGE


def test_brokers_that_do_not_answer_are_named_with_their_setting_in_one_line(
    make_settings, capfd: pytest.CaptureFixture[str]
) -> None:
    down = f"127.0.0.1:{_free_port()}"
    with pytest.raises(typer.Exit) as ended:
        kafka_reachable(make_settings(f"kafka.bootstrap_servers={down}"))
    assert ended.value.exit_code == UNREACHABLE
    err = capfd.readouterr().err
    assert err.startswith(f"error: cannot reach Kafka at {down} (kafka.bootstrap_servers): ")
    assert err.rstrip().endswith("or change kafka.bootstrap_servers")
    assert len(err.splitlines()) == 1  # librdkafka's per-connection lines are off


def test_imagenet_weights_neither_cached_nor_downloadable_are_refused_with_the_fix(
    make_settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import harmscan.weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    down = f"http://127.0.0.1:{_free_port()}/mobilenet_v2-b0353104.pth"
    monkeypatch.setitem(harmscan.weights.IMAGENET_URLS, "mobilenet_v2", down)
    settings = make_settings("train.models=[mobilenet_v2]", "train.weights.mobilenet_v2=imagenet")
    with pytest.raises(typer.Exit) as ended:
        checked_weights(settings)
    assert ended.value.exit_code == USAGE
    line = capsys.readouterr().err.strip()
    assert line.startswith(
        "error: torchvision ImageNet weights for mobilenet_v2 are neither cached in "
        f"{tmp_path / 'torch' / 'hub' / 'checkpoints'} nor downloadable ({down}: "
    )
    assert line.endswith("or to 'none' to train from scratch")
    # Once cached, nothing is fetched: the closed port is never asked.
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    checked_weights(settings)


def test_weights_that_exist_or_are_none_pass(make_settings) -> None:
    checked_weights(make_settings())  # the ci profile: the repository's file, resnet50 none


def test_an_open_images_endpoint_that_does_not_answer_is_named_with_its_setting(
    make_settings, health_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    down = f"http://127.0.0.1:{_free_port()}"
    for setting, settings in (
        ("openimages.metadata_base_url", make_settings(f"openimages.metadata_base_url={down}")),
        (
            "openimages.s3_endpoint_url",
            make_settings(
                f"openimages.metadata_base_url={health_server}",
                f"openimages.s3_endpoint_url={down}",
            ),
        ),
    ):
        with pytest.raises(typer.Exit) as ended:
            openimages_reachable(settings)
        assert ended.value.exit_code == UNREACHABLE
        line = capsys.readouterr().err.strip()
        assert line.startswith(f"error: cannot reach {down}: ")
        assert line.endswith(
            f"({setting}); start the mirror (harmscan mirror up, or the stack: harmscan up) "
            f"or change {setting}"
        )
    # Any HTTP answer is an endpoint that is up (the test server answers HEAD with 501).
    openimages_reachable(
        make_settings(
            f"openimages.metadata_base_url={health_server}",
            f"openimages.s3_endpoint_url={health_server}",
        )
    )


def test_cached_metadata_needs_no_endpoint(make_settings) -> None:
    from tasks.download import metadata_plan

    down = f"http://127.0.0.1:{_free_port()}"
    settings = make_settings(
        f"openimages.metadata_base_url={down}", f"openimages.s3_endpoint_url={down}"
    )
    oi = settings.openimages
    plan = metadata_plan(oi, settings.paths.cache, list(oi.subsets))
    for url, dest in plan.values():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("cached\n")
        meta = {"url": url, "bytes": dest.stat().st_size}
        dest.with_name(dest.name + ".meta.json").write_text(json.dumps(meta))
    openimages_reachable(settings)  # an ETL ran from this source before: nothing is asked
    first = next(iter(plan.values()))[1]
    first.write_text("changed since\n")  # no longer the recorded download
    with pytest.raises(typer.Exit):
        openimages_reachable(settings)


def test_etl_and_retrain_end_at_once_when_the_mirror_is_down(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{_free_port()}"
    for command in ("etl", "retrain"):
        argv = [
            "harmscan",
            "--profile",
            "ci",
            "--set",
            f"paths.root={tmp_path}",
            "--set",
            f"openimages.metadata_base_url={down}",
            command,
        ]
        done = _run_cli(argv)
        assert done.stdout.split() == [str(UNREACHABLE), "False", "False"], done.stderr
        assert done.stderr.startswith(f"error: cannot reach {down}: "), done.stderr
        assert "(openimages.metadata_base_url)" in done.stderr


def test_a_retrain_with_a_gate_set_checks_the_priors_weights_too(
    make_settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retrain with a gate set registers the untrained MobileNetV2 prior as its reference even
    when only ResNet50 trains: its missing weights file used to fail the flow minutes in."""
    missing = tmp_path / "nowhere" / "mobilenet_v2.pth"
    settings = make_settings(
        "train.models=[resnet50]",
        "train.weights.resnet50=none",
        f"train.weights.mobilenet_v2={missing}",
        "mlflow.gate_set=gateset",
    )
    checked_weights(settings)  # a train: no prior
    with pytest.raises(typer.Exit) as ended:
        checked_weights(settings, prior=True)
    assert ended.value.exit_code == USAGE
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: weights file for mobilenet_v2 not found")
    assert str(missing) in line
    # Without a gate set no prior is registered, so its weights are not asked for.
    checked_weights(make_settings(
        "train.models=[resnet50]", "train.weights.resnet50=none",
        f"train.weights.mobilenet_v2={missing}",
    ), prior=True)  # fmt: skip


@pytest.mark.parametrize("blocked", ["a-file", "a-file/below"])
def test_a_root_that_cannot_be_written_is_refused_naming_the_setting(
    make_settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], blocked: str
) -> None:
    from cli.preflight import writable_root

    (tmp_path / "a-file").write_text("a file where the root should be")
    root = tmp_path / blocked
    with pytest.raises(typer.Exit) as ended:
        writable_root(make_settings(f"paths.root={root}"))
    assert ended.value.exit_code == USAGE
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"error: paths.root {root} cannot be written: ")
    assert line.endswith("set it to a folder you can write (--set paths.root=DIR)")
    writable_root(make_settings(f"paths.root={tmp_path / 'fresh'}"))  # made, and writable
    assert (tmp_path / "fresh").is_dir()
    assert list((tmp_path / "fresh").iterdir()) == []  # the probe is gone
