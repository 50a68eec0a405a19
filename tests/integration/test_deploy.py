"""Deployments against a REAL Prefect server with a real process worker.

``harmscan deploy`` registers etl, train, retrain (on the settings' cron and time zone) and serve
on a process pool; a triggered ``retrain`` with tiny settings is picked up by the worker, runs
ETL on the offline mirror, trains, registers and promotes a champion in a real MLflow server.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conf.settings import Settings
from stack.deploy import (
    FLOWS,
    DeployError,
    deploy,
    deployment_specs,
    prefect_api,
    validate_schedule,
)
from stack.prefect_server import descendants, prefect_worker_process, stop_with_children
from stack.process import ServiceProcess, free_port
from tasks.artifacts import artifact_key, metric_rows, mlflow_links_markdown, promotion_markdown

REPO = Path(__file__).resolve().parents[2]


# --- pure: the specs and the artifact text -------------------------------------------------


def test_retrain_schedule_follows_settings(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings("prefect.retrain_cron=15 3 * * 1", "prefect.timezone=Europe/Berlin")
    specs = {s.flow: s for s in deployment_specs(settings)}
    assert set(specs) == set(FLOWS)
    assert (specs["retrain"].cron, specs["retrain"].timezone) == ("15 3 * * 1", "Europe/Berlin")
    assert all(specs[f].cron is None for f in ("etl", "train", "serve"))
    for spec in specs.values():
        assert (REPO / spec.entrypoint.split(":")[0]).is_file(), spec.entrypoint


@pytest.mark.parametrize(
    ("cron", "timezone", "named"),
    [
        ("every night", "UTC", "'every night'"),
        ("61 2 * * *", "UTC", "'61 2 * * *'"),
        ("0 2 * * *", "Mars/Olympus", "'Mars/Olympus'"),
    ],
)
def test_bad_schedule_names_the_value(cron: str, timezone: str, named: str) -> None:
    # The settings refuse these when they load; deploy checks again with Prefect's own parser.
    with pytest.raises(DeployError, match=re.escape(named)):
        validate_schedule(cron, timezone)


def test_unknown_flow_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(DeployError, match="valid: etl, train, retrain, serve"):
        deploy(make_settings(), ["etl", "nightly"])


def test_artifact_text() -> None:
    rows = metric_rows({"mobilenet_v2": {"auc": 0.912345, "f1": 0.8}, "resnet50": {"auc": 0.7}})
    assert rows == [
        {"model": "mobilenet_v2", "auc": 0.9123, "f1": 0.8},
        {"model": "resnet50", "auc": 0.7, "f1": None},
    ]
    with pytest.raises(ValueError, match="no metrics"):
        metric_rows({})
    assert artifact_key("Retrain: Test_Metrics v2") == "retrain-test-metrics-v2"
    text = mlflow_links_markdown(
        "http://127.0.0.1:5000/",
        {"mobilenet_v2": ("3", "abcdef1234")},
        "harmscan",
        {"mobilenet_v2": 7},
    )
    assert "http://127.0.0.1:5000/#/experiments/3/runs/abcdef1234" in text
    assert "http://127.0.0.1:5000/#/models/harmscan/versions/7" in text
    decision = promotion_markdown(
        promoted=False,
        model_name="m",
        alias="champion",
        metric="auc",
        challenger=(4, 0.81),
        champion=(3, 0.83),
        reason="not better",
    )
    assert "kept the current champion" in decision
    assert "| champion before | 3 | 0.8300 |" in decision


# --- real Prefect server + worker ------------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(
    prefect_server: str,
    mlflow_server: str,
    mirror_servers: list[str],
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, dict[str, str], ServiceProcess]]:
    """All four deployments on a fresh pool, tiny settings, and a worker polling that pool."""
    from conf.loader import load_settings

    tag = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("deploy")
    settings = load_settings(
        "ci",
        [
            *mirror_servers,
            f"paths.root={root / 'harmscan'}",
            f"prefect.api_url={prefect_server}",
            f"prefect.work_pool=pool-{tag}",
            "prefect.retrain_cron=30 1 * * *",
            "prefect.timezone=America/New_York",
            f"mlflow.tracking_uri={mlflow_server}",
            f"mlflow.experiment=exp-{tag}",
            f"mlflow.registered_model=model-{tag}",
            # A 1-epoch, 2-batch model must still become champion: it is the first one.
            "mlflow.floors={accuracy: 0.0, auc: 0.0}",
            f"kafka.bootstrap_servers={kafka_bootstrap}",
            f"kafka.requests_topic=requests-{tag}",
            f"kafka.results_topic=results-{tag}",
            f"kafka.dead_letter_topic=dead-{tag}",
            f"kafka.review_topic=review-{tag}",
            f"kafka.group_id=group-{tag}",
            "serving.metrics_port=0",
            "etl.max_per_side=40",
            "etl.max_per_label=20",
            "train.image_size=64",
            "train.batch_size=16",
            "train.threads=2",
        ],
        env={},
    )
    names = deploy(settings)
    worker = prefect_worker_process(
        root / "worker",
        prefect_server,
        settings.prefect.work_pool,
        "127.0.0.1",
        free_port(),
        cwd=REPO,
    )
    worker.start(timeout=180)
    try:
        yield settings, names, worker
    finally:
        stop_with_children(worker)


@pytest.mark.slow
def test_deployments_registered_with_schedule_and_typed_parameters(deployed) -> None:
    from prefect.client.orchestration import get_client

    settings, names, _ = deployed
    assert set(names) == {f"{flow}/harmscan" for flow in FLOWS}
    with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as client:
        pool = client.read_work_pool(settings.prefect.work_pool)
        assert pool.type == "process"
        retrain = client.read_deployment_by_name("retrain/harmscan")
        serve = client.read_deployment_by_name("serve/harmscan")
    assert retrain.work_pool_name == settings.prefect.work_pool
    [schedule] = retrain.schedules
    assert schedule.schedule.cron == settings.prefect.retrain_cron
    assert schedule.schedule.timezone == settings.prefect.timezone
    assert schedule.active
    assert not serve.schedules
    assert retrain.enforce_parameter_schema
    props = retrain.parameter_openapi_schema["properties"]
    assert {"epochs", "models", "limit_batches", "promote"} <= set(props)
    env = retrain.job_variables["env"]
    assert env["HARMSCAN_PROFILE"] == "ci"
    assert Path(env["HARMSCAN_CONFIG"]).is_file()


@pytest.mark.slow
def test_invalid_parameters_are_rejected_by_the_server(deployed) -> None:
    from prefect.deployments import run_deployment

    settings, _, _ = deployed
    with prefect_api(settings.prefect.api_url), pytest.raises(Exception, match="epochs"):
        run_deployment("retrain/harmscan", parameters={"epochs": "many"}, timeout=0)


@pytest.mark.slow
def test_triggered_retrain_completes_on_the_worker_and_promotes(deployed) -> None:
    import mlflow
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    settings, _, worker = deployed
    params = {"models": ["mobilenet_v2"], "epochs": 1, "limit_batches": 2}
    with prefect_api(settings.prefect.api_url):
        run = run_deployment("retrain/harmscan", parameters=params, timeout=900)
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run.id)
    assert run.state is not None
    assert run.state.is_completed(), f"{run.state}: see {worker.log_file}\n{worker.tail(40)}"
    assert run.parameters["epochs"] == 1
    assert run.name.startswith("retrain-"), run.name
    client = mlflow.MlflowClient(settings.mlflow.tracking_uri)
    champion = client.get_model_version_by_alias(settings.mlflow.registered_model, "champion")
    assert champion.version is not None
    # The worker ran it: it left no flow-run process behind.
    deadline = time.monotonic() + 30
    while descendants(worker.pid() or 0) and time.monotonic() < deadline:
        time.sleep(1)
    assert not descendants(worker.pid() or 0)


@pytest.mark.slow
def test_a_nightly_retrain_is_cancelled_not_queued_while_one_runs(deployed) -> None:
    """Concurrency limit 1 with CANCEL_NEW, on the real server (no worker involved: the runs are
    scheduled an hour ahead and moved to Pending by hand, as a worker would move them)."""
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy
    from prefect.states import Cancelled, Pending, Scheduled

    settings, _, _ = deployed
    later = datetime.now(UTC) + timedelta(hours=1)
    with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("retrain/harmscan")
        assert deployment.concurrency_options is not None
        assert (
            deployment.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW
        )
        first, second = (
            client.create_flow_run_from_deployment(
                deployment.id, state=Scheduled(scheduled_time=later)
            )
            for _ in range(2)
        )
        try:
            # Pending takes the deployment's slot (Running would wait for the scheduled time).
            taken = client.set_flow_run_state(first.id, Pending()).state
            assert taken is not None
            assert taken.is_pending()
            client.set_flow_run_state(second.id, Pending())
            state = client.read_flow_run(second.id).state
            assert state is not None
            assert state.is_cancelled(), f"the second night was {state.name}, not cancelled"
        finally:
            # Pending -> Cancelled gives the slot back for the retrain test.
            client.set_flow_run_state(first.id, Cancelled(message="test over"))
            client.set_flow_run_state(second.id, Cancelled(message="test over"), force=True)


@pytest.mark.slow
def test_a_run_cancelled_by_one_already_running_waits_for_that_one(deployed) -> None:
    """A nightly retrain the stack missed while down starts when the worker is back; the demo's
    own run is then cancelled (CANCEL_NEW). `run_and_wait` waits for the running one instead."""
    import threading
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Completed, Pending, Scheduled

    from stack.runs import run_and_wait

    settings, _, worker = deployed
    later = datetime.now(UTC) + timedelta(hours=1)
    with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("retrain/harmscan")
        holder = client.create_flow_run_from_deployment(
            deployment.id, state=Scheduled(scheduled_time=later)
        )
        client.set_flow_run_state(holder.id, Pending())  # holds the slot, as a running night

    lines: list[str] = []

    def finish_the_holder_once_waited_for() -> None:
        # A real night runs for minutes: the holder ends only after `run_and_wait` switched to it.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if any("another run of it was already running" in line for line in lines):
                with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as c:
                    c.set_flow_run_state(holder.id, Completed(), force=True)
                return
            time.sleep(1)

    releaser = threading.Thread(target=finish_the_holder_once_waited_for, daemon=True)
    releaser.start()
    try:
        waited = run_and_wait(settings, "retrain/harmscan", 300, lines.append)
    finally:
        releaser.join(5)
        with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as client:
            state = client.read_flow_run(holder.id).state
            if state is not None and not state.is_final():
                client.set_flow_run_state(holder.id, Cancelled(message="test over"), force=True)
    assert waited == str(holder.id), f"see {worker.log_file}\n" + "\n".join(lines)
    assert any("another run of it was already running" in line for line in lines)
    assert any("Cancelled" in line for line in lines)  # ours, before it switched


def test_run_names_show_time_and_notable_parameters() -> None:
    from datetime import UTC, datetime

    from tasks.artifacts import run_name

    when = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    params = {"models": ["mobilenet_v2", "resnet50"], "epochs": 4, "settings": None, "seed": 3}
    assert run_name("retrain", when, params) == "retrain-20261125-0200-mobilenet_v2+resnet50-e4"
    assert run_name("serve", when, {}) == "serve-20261125-0200"


@pytest.mark.slow
@pytest.mark.kafka
def test_a_killed_serve_run_is_started_again(deployed, tmp_path: Path) -> None:
    """kill -9 of the serve run's process: the worker reports Crashed, the automation that
    ``deploy`` made for serve starts a new run, and the worker runs it."""
    import os
    import signal

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.states import Cancelling

    from stack.runs import start_deployment

    settings, names, worker = deployed
    ml = settings.mlflow
    try:  # the retrain test before this one made a champion; alone, register a small one
        MlflowClient(ml.tracking_uri).get_model_version_by_alias(ml.registered_model, "champion")
    except MlflowException:
        from tests.serving_support import register_model

        register_model(ml.tracking_uri, ml.registered_model, tmp_path)
    run_id = start_deployment(settings, "serve/harmscan")
    with prefect_api(settings.prefect.api_url), get_client(sync_client=True) as client:
        _wait(lambda: _state(client, run_id).is_running(), 300, worker, "serve never ran")
        [process] = [p for p in descendants(worker.pid() or 0) if _runs_flow(p, run_id)][:1]
        os.kill(process, signal.SIGKILL)
        _wait(lambda: _state(client, run_id).is_crashed(), 120, worker, "not marked Crashed")
        deployment = DeploymentFilter(id=DeploymentFilterId(any_=[names["serve/harmscan"]]))

        def restarted() -> list:
            runs = client.read_flow_runs(deployment_filter=deployment)
            return [r for r in runs if str(r.id) != run_id and r.created > _created(client, run_id)]

        _wait(lambda: bool(restarted()), 180, worker, "the automation did not start serve again")
        again = restarted()[0]
        _wait(lambda: _state(client, str(again.id)).is_running(), 300, worker, "restart not run")
        client.set_flow_run_state(again.id, Cancelling(message="test over"))
        _wait(lambda: _state(client, str(again.id)).is_final(), 120, worker, "not cancelled")


def _state(client, run_id):
    from uuid import UUID

    return client.read_flow_run(UUID(str(run_id))).state


def _created(client, run_id):
    from uuid import UUID

    return client.read_flow_run(UUID(str(run_id))).created


def _runs_flow(pid: int, run_id: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"PREFECT__FLOW_RUN_ID={run_id}".encode() in environ


def _wait(check, timeout: float, worker: ServiceProcess, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout:.0f}s; see {worker.log_file}\n{worker.tail(40)}")


@pytest.mark.slow
@pytest.mark.kafka
def test_serve_run_stops_with_the_worker_and_is_marked_cancelled(deployed) -> None:
    """Runs after the retrain test (a champion exists); stops the module's worker."""
    from prefect.client.orchestration import get_client

    from stack.prefect_server import active_flow_runs, is_running, mark_cancelled
    from stack.runs import start_deployment

    settings, _, worker = deployed
    api, pool = str(settings.prefect.api_url), settings.prefect.work_pool
    run_id = start_deployment(settings, "serve/harmscan")
    deadline = time.monotonic() + 300
    with prefect_api(api), get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            state = client.read_flow_run(run_id).state
            if state is not None and (state.is_running() or state.is_final()):
                break
            time.sleep(2)
        assert state is not None
        assert state.is_running(), f"{state}: see {worker.log_file}\n{worker.tail(40)}"
        assert run_id in active_flow_runs(api, pool)
        assert descendants(worker.pid() or 0), "the worker runs the consumer as its child"
        worker_pid = worker.pid()
        tree = descendants(worker_pid or 0)
        stop_with_children(worker)
        mark_cancelled(api, [run_id])
        final = client.read_flow_run(run_id).state
    # A zombie (exited, not yet reaped by an init that does not reap) is not left running.
    alive = [pid for pid in [worker_pid, *tree] if pid and is_running(pid)]
    assert not alive, f"left running after the worker stopped: {alive}"
    assert final is not None
    assert final.is_final()
    assert run_id not in active_flow_runs(api, pool)
