"""The train flow against a real MLflow server under the Prefect test harness.

One mobilenet_v2 is trained once for the module (tiny images, 2 epochs) and promoted; the tests
then check the run's logging, the champion in a fresh process, and that a worse candidate does
not take the champion alias.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import torch

from conf.loader import SettingsSource
from harmscan.bundle import ServingSpec
from harmscan.models import WeightsSource, build_model
from harmscan.trainer import EPOCH_METRICS
from tests.fixtures.train_data import make_synthetic_dataset

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FLOW_RUNS: dict[str, object] = {}  # the module's flow runs by kind, filled by `trained`


@pytest.fixture(scope="module")
def trained(mlflow_server: str, prefect_harness: None, tmp_path_factory: pytest.TempPathFactory):
    """Train + register + promote one model; yield (settings, dataset, train result, decision)."""
    from flows.train import train
    from tasks.promotion import gate_policy, promote_task

    root = tmp_path_factory.mktemp("train-flow")
    dataset = make_synthetic_dataset(root / "data", {"train": 16, "val": 8, "test": 8})
    tag = uuid.uuid4().hex[:8]
    source = SettingsSource.from_cli(
        "ci",
        [
            f"paths.root={root / 'harmscan'}",
            f"mlflow.tracking_uri={mlflow_server}",
            f"mlflow.experiment=exp-{tag}",
            f"mlflow.registered_model=model-{tag}",
            "train.image_size=64",
            "train.batch_size=16",
            "train.threads=2",
            "train.recipe=finetune",  # the epoch loop's logging is what this module checks
            "train.head=linear",
        ],
    )
    settings = source.resolve()
    state = train(
        source=source, dataset=dataset, models=["mobilenet_v2"], epochs=2, return_state=True
    )
    [result] = state.result()
    FLOW_RUNS["train"] = state.state_details.flow_run_id  # whose artifacts a test reads
    ml = settings.mlflow
    decision = promote_task(
        ml.tracking_uri, ml.registered_model, result.version, dataset, gate_policy(ml)
    )
    return settings, dataset, result, decision


def test_run_logs_params_dataset_epochs_and_artifacts(trained) -> None:
    import mlflow

    settings, _, result, _ = trained
    client = mlflow.MlflowClient(settings.mlflow.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["train.image_size"] == "64"
    assert run.data.params["mlflow.registered_model"] == settings.mlflow.registered_model
    assert run.inputs.dataset_inputs[0].dataset.digest == result.dataset_version
    for name in EPOCH_METRICS:
        assert len(client.get_metric_history(result.run_id, name)) == 2, name
    assert run.data.metrics["onnx_max_abs_diff"] < 1e-3
    logged = {a.path for a in client.list_artifacts(result.run_id, "evaluation")}
    expected = {
        "confusion_matrix.png",
        "roc_curve.png",
        "pr_curve.png",
        "test_roc_by_domain.png",  # the ci profile names no gate or check set
        "labels.json",
        "preset.json",
        "model_card.md",
    }
    assert {f"evaluation/{n}" for n in expected} <= logged


def test_first_candidate_becomes_champion_with_reason(trained) -> None:
    import mlflow

    settings, _, result, decision = trained
    name = settings.mlflow.registered_model
    client = mlflow.MlflowClient(settings.mlflow.tracking_uri)
    assert decision.promoted is True
    assert decision.alias == "champion"
    assert decision.champion_version is None
    assert client.get_model_version_by_alias(name, "champion").version == result.version
    tags = client.get_model_version(name, result.version).tags
    assert tags["promotion_decision"] == "promoted"
    assert "no current champion" in tags["promotion_reason"]
    assert result.test_metrics["auc"] > 0.9  # the synthetic classes are easy


def test_champion_loads_in_a_fresh_process_and_classifies_known_images(trained) -> None:
    settings, dataset, _, _ = trained
    images = {
        label: next((dataset / "test" / label).glob("*.jpg")) for label in ("harmful", "safe")
    }
    script = textwrap.dedent(
        """
        import json, sys, tempfile
        from pathlib import Path
        import mlflow, mlflow.pytorch, torch
        from harmscan.imageio import load_image
        from harmscan.presets import EvalPreset
        from registry import Registry

        uri, name, images = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        registry = Registry(uri)
        version = registry.require_alias_version(name, "champion")
        bundle = registry.download_bundle(name, version, Path(tempfile.mkdtemp()))
        spec = bundle.spec
        model = mlflow.pytorch.load_model(str(bundle.model_dir)).eval()
        preset = EvalPreset.from_spec(spec)
        out = {}
        for label, path in images.items():
            with torch.inference_mode():
                probs = torch.softmax(model(preset(load_image(path)).unsqueeze(0)), 1)[0]
            out[label] = spec.label_for(float(probs[spec.harmful_index]))
        print(json.dumps(out))
        """
    )
    ml = settings.mlflow
    env = {"PATH": "/usr/bin:/bin"}  # no MLFLOW_TRACKING_URI: the registry is named explicitly
    arguments = [
        ml.tracking_uri,
        ml.registered_model,
        json.dumps({k: str(v) for k, v in images.items()}),
    ]
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "harmful": "harmful",
        "safe": "safe",
    }


@pytest.mark.kafka
def test_registered_model_carries_its_int8_graph_and_verdict_and_is_served_in_int8(
    trained, kafka_bootstrap: str, kafka_topics, make_source, tmp_path: Path
) -> None:
    from flows.serve import serve
    from harmscan.bundle import FLOAT_PIXELS_FILE, INT8_PIXELS_FILE
    from registry import Registry
    from serving.producer import RequestProducer
    from tests.kafka_support import has_ids, read_topic, results_by_id
    from tests.serving_support import serving_overrides

    settings, dataset, result, _ = trained
    name = settings.mlflow.registered_model
    registry = Registry(settings.mlflow.tracking_uri)
    run = registry.client.get_run(result.run_id)
    metrics = run.data.metrics
    # the check ran on the val split and the gate set, and its verdict travels with the model
    assert {"float_auc_val", "int8_auc_val", "int8_auc_gate", "int8_approved"} <= set(metrics)
    assert 0 < metrics["int8_seconds"] < metrics["registration_seconds"]
    bundle = registry.download_bundle(name, result.version, tmp_path / "dl")
    for graph in (FLOAT_PIXELS_FILE, INT8_PIXELS_FILE):
        assert (bundle.bundle_dir / graph).is_file(), graph
    assert bundle.spec.int8_reason == run.data.tags["int8_reason"]
    assert bundle.spec.int8_approved is (metrics["int8_approved"] == 1.0)
    # the nodes kept float besides the head (int8.float_nodes, none by default) are named
    # in the run and in serving.json (tests/unit/test_int8_mixed.py: auto choosing some)
    kept = run.data.tags["int8_float_nodes"]
    assert kept == bundle.spec.extra.get("int8_float_nodes", "")
    assert metrics["int8_float_nodes"] == len([n for n in kept.split(",") if n]) <= 3

    topics = {k: kafka_topics(k) for k in ("requests", "results", "review", "dead_letter")}
    source = make_source(
        *serving_overrides(
            bootstrap=kafka_bootstrap, tracking_uri=settings.mlflow.tracking_uri,
            model_name=name, topics=topics, group=f"g-{uuid.uuid4().hex[:8]}", roots=[dataset],
        ),
        "serving.precision=int8",
    )  # fmt: skip
    producer = RequestProducer(source.resolve())
    expected = {
        producer.send_path(next((dataset / "test" / label).glob("*.jpg"))): label
        for label in ("harmful", "safe")
    }
    assert not producer.flush(30).failed
    serve(source=source, runtime="onnx", max_messages=len(expected))
    messages = read_topic(kafka_bootstrap, topics["results"], until=has_ids(set(expected)))
    results = {i: rs[-1] for i, rs in results_by_id(messages).items()}
    assert {i: r.precision for i, r in results.items()} == dict.fromkeys(expected, "int8")
    assert {i: r.label for i, r in results.items()} == expected


def test_worse_candidate_does_not_take_champion(trained) -> None:
    from harmscan.promotion import GatePolicy
    from registry import Registry, log_bundle, start_run
    from tasks.promotion import promote_candidate

    settings, dataset, result, _ = trained
    name = settings.mlflow.registered_model
    worse = build_model("mobilenet_v2", WeightsSource("none"))
    torch.nn.init.zeros_(worse.classifier[1].weight)  # constant output: AUC 0.5
    torch.nn.init.zeros_(worse.classifier[1].bias)
    spec = ServingSpec(
        arch="mobilenet_v2",
        threshold=0.5,
        review_low=0.4,
        review_high=0.6,
        image_size=64,
        resize_size=73,
        dataset_version=result.dataset_version,
    )
    registry = Registry(settings.mlflow.tracking_uri)
    with start_run(registry, settings.mlflow.experiment, "worse") as run:
        bundle = log_bundle(run, worse, spec, registered_model=name)
    assert bundle.version is not None
    decision = promote_candidate(
        registry, name, bundle.version, dataset, GatePolicy(metric="auc", floors={})
    )
    client = registry.client
    assert decision.promoted is False
    assert decision.alias == "challenger"
    assert decision.champion_version == result.version
    assert decision.champion_value is not None
    assert decision.champion_value > decision.candidate_value
    assert decision.candidate_metrics["auc"] == decision.candidate_value
    assert client.get_model_version_by_alias(name, "champion").version == result.version
    assert client.get_model_version_by_alias(name, "challenger").version == bundle.version
    tags = client.get_model_version(name, bundle.version).tags
    assert tags["promotion_decision"] == "rejected"
    assert "does not beat champion" in tags["promotion_reason"]


def test_cli_promote_by_hand_and_roll_back(trained) -> None:
    import mlflow
    from typer.testing import CliRunner

    import cli.app as cli

    settings, dataset, result, _ = trained
    name = settings.mlflow.registered_model
    client = mlflow.MlflowClient(settings.mlflow.tracking_uri)
    other = client.get_model_version_by_alias(name, "challenger").version  # from the test above
    if "promote" not in {c.name for c in cli.app.registered_commands}:
        cli._register_areas()
    base = [
        "--profile",
        "ci",
        "--set",
        f"mlflow.tracking_uri={settings.mlflow.tracking_uri}",
        "--set",
        f"mlflow.registered_model={name}",
    ]
    runner = CliRunner()

    out = runner.invoke(cli.app, [*base, "promote", other, "--reason", "drill"])
    assert out.exit_code == 0, out.output
    assert client.get_model_version_by_alias(name, "champion").version == other
    assert client.get_model_version(name, other).tags["promotion_decision"] == "manual"

    out = runner.invoke(cli.app, [*base, "promote", "--rollback"])
    assert out.exit_code == 0, out.output
    assert client.get_model_version_by_alias(name, "champion").version == result.version

    # The whole gate refuses the worse version: exit 1 (a failed gate), the champion stays.
    out = runner.invoke(cli.app, [*base, "promote", other, "--gate", "--dataset", str(dataset)])
    assert out.exit_code == 1, out.output
    assert "not promoted" in out.output
    assert client.get_model_version_by_alias(name, "champion").version == result.version

    out = runner.invoke(cli.app, [*base, "promote", "999"])
    assert out.exit_code != 0
    assert "has no version 999" in str(out.exception) + out.output


def test_train_flow_fails_before_training_on_a_missing_weights_file(
    prefect_harness: None, make_source, tmp_path: Path
) -> None:
    from flows.train import train
    from harmscan.models import WeightsError

    source = make_source("train.models=[mobilenet_v2]")
    with pytest.raises(WeightsError, match=r"nope\.pth.*'none'"):
        train(source=source, dataset=tmp_path, weights={"mobilenet_v2": "nope.pth"})


def test_the_run_leaves_a_per_domain_table_for_the_prefect_ui(trained) -> None:
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )

    _, _, result, _ = trained
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["train-domain-metrics"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[FLOW_RUNS["train"]])),
        )
    assert len(artifacts) == 1
    data = artifacts[0].data
    rows = json.loads(data) if isinstance(data, str) else data
    keys = [(r["model"], r["set"], r["domain"]) for r in rows]
    test_all = rows[keys.index(("mobilenet_v2", "test", "all"))]
    confusion = sum(result.test_metrics[k] for k in ("tn", "fp", "fn", "tp"))
    assert test_all["count"] == confusion == 16  # 8 per label
    assert test_all["auc"] == pytest.approx(result.test_metrics["auc"], abs=1e-4)
