"""docker-compose.yml validates with the real compose implementation (compose-go, no engine needed)
and holds the services, health checks and settings harmscan needs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conf.loader import load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
REQUIRED = [
    "kafka", "postgres", "minio", "mlflow", "prefect-server", "prefect-worker", "consumer",
    "review", "prometheus", "grafana",
]  # fmt: skip
HARMSCAN_SERVICES = ["mlflow", "prefect-server", "prefect-worker", "consumer", "review"]


def compose_binary() -> str:
    """The compose binary shipped by compose-go.

    Its ``docker-compose`` console script is a Python wrapper that drops the exit code, so a
    broken file would pass; call the Go binary inside the package instead.
    """
    try:
        import compose
    except ImportError:
        pytest.fail("compose-go is not installed: install the dev extra")
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go ships no binary at {binary}"
    return str(binary)


def run_config(compose_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            compose_binary(),
            "-f",
            str(compose_file),
            "--env-file",
            str(ENV_EXAMPLE),
            *extra,
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=compose_file.parent,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = run_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_required_services_present(config: dict[str, Any]) -> None:
    missing = sorted(set(REQUIRED) - set(config["services"]))
    assert not missing, f"services missing from docker-compose.yml: {missing}"


@pytest.mark.parametrize("service", REQUIRED)
def test_long_running_services_have_health_checks(config: dict[str, Any], service: str) -> None:
    check = config["services"][service].get("healthcheck")
    assert check, f"{service} has no health check"
    assert check.get("test"), f"{service} health check has no test"
    assert not check.get("disable", False)


def test_dependencies_wait_for_health(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in ("mlflow", "prefect-server", "prefect-worker", "consumer"):
        depends = services[name]["depends_on"]
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert spec["condition"] in {"service_healthy", "service_completed_successfully"}
    assert "prefect-server" in services["prefect-worker"]["depends_on"]
    assert "kafka" in services["consumer"]["depends_on"]


def test_kafka_is_kraft_without_zookeeper(config: dict[str, Any]) -> None:
    kafka = config["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "zookeeper" not in json.dumps(config).lower()


def test_single_broker_creates_no_topics_by_itself(config: dict[str, Any]) -> None:
    assert config["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_cluster_profile_is_three_kraft_brokers() -> None:
    result = run_config(COMPOSE_FILE, "--profile", "cluster")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    nodes = [services[f"kafka-{n}"] for n in (1, 2, 3)]
    voters = {node["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for node in nodes}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert [str(node["environment"]["KAFKA_NODE_ID"]) for node in nodes] == ["1", "2", "3"]
    assert len({node["environment"]["CLUSTER_ID"] for node in nodes}) == 1
    for node in nodes:
        env = node["environment"]
        assert str(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == "3"
        assert str(env["KAFKA_MIN_INSYNC_REPLICAS"]) == "2"
        assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "3"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert node["healthcheck"]["test"]
    mounts = {m["source"] for node in nodes for m in node["volumes"]}
    assert mounts == {"kafka-1-data", "kafka-2-data", "kafka-3-data"}


def test_cluster_nodes_are_not_started_by_default(config: dict[str, Any]) -> None:
    assert not {"kafka-1", "kafka-2", "kafka-3"} & set(config["services"])


def test_mlflow_uses_postgres_and_minio(config: dict[str, Any]) -> None:
    mlflow = config["services"]["mlflow"]
    command = " ".join(mlflow["command"])
    assert "--backend-store-uri postgresql" in command
    assert "@postgres:5432/mlflow" in command
    assert "--artifacts-destination s3://" in command
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_prefect_server_uses_postgres(config: dict[str, Any]) -> None:
    env = config["services"]["prefect-server"]["environment"]
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")


def test_state_lives_in_named_volumes(config: dict[str, Any]) -> None:
    assert {"kafka-data", "postgres-data", "minio-data", "harmscan-data"} <= set(config["volumes"])
    mounts = {m["source"] for m in config["services"]["postgres"]["volumes"]}
    assert "postgres-data" in mounts


def test_published_ports_are_loopback_only(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} on all interfaces"


def test_harmscan_containers_use_compose_profile(config: dict[str, Any]) -> None:
    for name in ("prefect-worker", "consumer", "review"):
        env = config["services"][name]["environment"]
        assert env["HARMSCAN_PROFILE"] == "compose"
        # Every HARMSCAN_* variable of the container must be a real setting.
        ours = {k: str(v) for k, v in env.items() if k.startswith("HARMSCAN_")}
        settings = load_settings(None, env=ours)
        assert settings.profile == "compose"
        assert settings.prefect.api_url == env["PREFECT_API_URL"]
        assert settings.mlflow.tracking_uri == env["MLFLOW_TRACKING_URI"]
        assert settings.kafka.bootstrap_servers == "kafka:9092"
    for name in HARMSCAN_SERVICES:
        wanted = "Dockerfile.serving" if name == "consumer" else "Dockerfile"
        assert config["services"][name]["build"]["dockerfile"] == wanted


def test_the_consumer_image_is_built_from_the_serving_lock_without_torch() -> None:
    text = (REPO / "Dockerfile.serving").read_text()
    assert "pip install -r requirements-serving.lock" in text
    assert "pip install --no-deps ." in text
    assert "torch" not in (REPO / "requirements-serving.lock").read_text()
    for package in ("tasks", "flows", "stack"):
        assert f"COPY {package} " not in text


def test_operators_get_prometheus_grafana_and_the_review_page(config: dict[str, Any]) -> None:
    services = config["services"]
    prometheus_mounts = {m["target"]: m["source"] for m in services["prometheus"]["volumes"]}
    assert Path(prometheus_mounts["/etc/prometheus"]) == REPO / "ops" / "prometheus"
    grafana_mounts = {m["target"]: m["source"] for m in services["grafana"]["volumes"]}
    assert Path(grafana_mounts["/etc/grafana/provisioning"]) == REPO / "ops/grafana/provisioning"
    assert Path(grafana_mounts["/var/lib/grafana/dashboards"]) == REPO / "ops/grafana/dashboards"
    assert services["review"]["command"] == ["review"]
    env = services["review"]["environment"]
    settings = load_settings(
        None, env={k: str(v) for k, v in env.items() if k.startswith("HARMSCAN_")}
    )
    assert settings.review.token is not None
    assert settings.serving.allowed_roots
    # Prometheus scrapes the consumer's and the review page's ports inside the network.
    scrape = (REPO / "ops/prometheus/prometheus.yml").read_text()
    assert "consumer:9108" in scrape
    assert f"review:{settings.review.port}" in scrape


def test_env_example_names_every_variable_and_no_stray_settings() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    used -= {"HARMSCAN_PREFECT__WORK_POOL"}  # read by the worker's shell, a real setting
    defined = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used <= defined, f"variables used but not in .env.example: {sorted(used - defined)}"
    # .env is passed to harmscan containers, which read every HARMSCAN_* variable as a setting.
    settings_like = {name: "x" for name in defined if name.startswith("HARMSCAN_")}
    assert not settings_like, f"non-setting HARMSCAN_* variables in .env.example: {settings_like}"


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    # The worker waiting on a service that does not exist: the validator must refuse it.
    text = COMPOSE_FILE.read_text().replace(
        "      prefect-server:\n        condition", "      prefect-srv:\n        condition", 1
    )
    assert text != COMPOSE_FILE.read_text()
    broken.write_text(text)
    result = run_config(broken)
    assert result.returncode != 0
    assert "prefect-srv" in result.stderr


def test_dockerfile_installs_cpu_torch_and_the_package() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu" in text
    assert "pip install --no-deps -e ." in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".harmscan", ".env", ".git"} <= set(ignored)


def test_the_compose_profile_gates_on_the_photo_set_the_image_carries() -> None:
    settings = load_settings("compose", env={})
    assert settings.mlflow.gate_set == "gateset"
    text = (REPO / "Dockerfile").read_text()
    assert "COPY gateset ./gateset" in text  # resolved against the repository root, /app
    assert "COPY registry ./registry" in text
    assert "COPY registry ./registry" in (REPO / "Dockerfile.serving").read_text()


def test_the_image_carries_every_pool_the_compose_profile_trains_and_calibrates_with() -> None:
    train = load_settings("compose", env={}).train
    text = (REPO / "Dockerfile").read_text()
    pools = {*train.extra_train_sets, *train.gate_photos, *train.gate_drawings}
    pools |= {train.calibration_photos} if train.calibration_photos else set()
    assert "iconpool" in pools  # the default since "Icons" (docs/training-measurements.md)
    assert "glyphpool" in pools  # since "More vendors" (docs/training-measurements.md)
    for pool in pools:
        assert f"COPY {pool} ./{pool}" in text, pool
