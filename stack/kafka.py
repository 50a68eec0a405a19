"""The local Apache Kafka broker: jars from Maven Central, KRaft nodes on loopback.

The jars come from Maven Central (`stack.kafka_jars.fetch`, on first start). `KafkaBroker`
runs one combined broker+controller node through `stack.process.ServiceProcess`: it writes
``server.properties`` under its state folder, formats the storage on first start only and counts
the broker healthy once a real metadata request answers. The same class runs one node of a
cluster (`stack.kafka_cluster`: static controller voters, a shared cluster id, replication 3).
No broker creates topics on its own (``auto.create.topics.enable=false``); topics are created by
`serving.topics`. confluent_kafka is imported only inside the functions that talk to the broker.

Command line (``./dev setup`` calls ``fetch``)::

    python -m cli.kafka fetch|up|down|status [--profile P] [--set a.b=c ...]
"""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.kafka_jars import KAFKA_DIR, fetch, find_java, java_executable
from stack.process import ServiceError, ServiceProcess, port_open

if TYPE_CHECKING:
    from conf.settings import Settings

logger = logging.getLogger(__name__)

NAME = "kafka"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
LOG_LEVELS = ("OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "ALL")


def new_cluster_id() -> str:
    """A random KRaft cluster id in Kafka's format (URL-safe base64 of 16 bytes, unpadded).

    Like Kafka's own ``Uuid.randomUuid``, never one that starts with ``-``: the storage tool's
    argument parser would read it as an option (a 1-in-64 start-up failure).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class KafkaBroker:
    """One single-node KRaft broker (broker and controller in one JVM) on loopback.

    Attributes:
        state_dir: Folder for ``server.properties``, the ``data/`` log dir, pid and log file.
        host: Interface to listen on and advertise; keep it on loopback.
        port: Client (PLAINTEXT) port.
        controller_port: KRaft controller port.
        heap: JVM heap size (``-Xmx``).
        log_level: Root log level of the broker's log4j2 config (WARN keeps the log readable).
        overrides: Extra broker configs, written last into ``server.properties``.
        jvm_flags: Extra JVM flags, after the defaults (so they win).
        kafka_dir: Folder with ``pom.xml``, ``log4j2.yaml`` and ``libs/``.
        node_id: This node's id (``node.id``).
        voters: ``id@host:port,...`` of a cluster's controllers; None for a single node.
        cluster_id: The cluster id to format with (a cluster's nodes share one).
        replication: Replication of internal topics and the default of new ones
            (``min.insync.replicas`` is one less, at least 1).
    """

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    log_level: str = "WARN"
    overrides: Mapping[str, str] = field(default_factory=dict)
    jvm_flags: Sequence[str] = ()
    kafka_dir: Path = KAFKA_DIR
    node_id: int = 1
    voters: str | None = None
    cluster_id: str | None = None
    replication: int = 1

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        min_heap(self.heap)  # validates it
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"kafka log level {self.log_level!r} is not one of {LOG_LEVELS}")
        if self.port == self.controller_port:
            raise ValueError(f"kafka port and controller port must differ; both are {self.port}")

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` value for clients: ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        """The broker's log dir (topics, offsets, KRaft metadata)."""
        return self.state_dir / "data"

    @property
    def config_file(self) -> Path:
        """The generated ``server.properties``."""
        return self.state_dir / "server.properties"

    @property
    def process(self) -> ServiceProcess:
        """The JVM as a `ServiceProcess` (pid file, log file, health probe)."""
        return ServiceProcess(
            name=NAME,
            command=self._java_command(MAIN_CLASS, str(self.config_file)),
            state_dir=self.state_dir,
            host=self.host,
            port=self.port,
            healthy=lambda: metadata_ok(self.bootstrap),
            cwd=self.state_dir,
        )

    def server_properties(self) -> dict[str, str]:
        """The node's configuration: broker and controller, small internal topics."""
        controller = f"{self.host}:{self.controller_port}"
        replication, min_isr = str(self.replication), str(max(1, self.replication - 1))
        quorum = (
            {"controller.quorum.voters": self.voters}
            if self.voters
            # Kafka 4's dynamic quorum, as in its quickstart: storage is formatted with
            # --standalone, which makes this node the one voter.
            else {"controller.quorum.bootstrap.servers": controller}
        )
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            **quorum,
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{controller}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": replication,
            "min.insync.replicas": min_isr,
            "auto.create.topics.enable": "false",
            # One partition each instead of 50: the first consumer group starts in a second.
            "offsets.topic.replication.factor": replication,
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update(self.overrides)
        return props

    def formatted(self) -> bool:
        """Whether the data dir has been formatted (``meta.properties`` exists)."""
        return (self.data_dir / "meta.properties").is_file()

    def start(self, timeout: float = 60.0) -> None:
        """Fetch jars if needed, write the config, format storage on first start, start, wait.

        Raises:
            KafkaSetupError: Java/Maven missing or the jars could not be fetched.
            ServiceError: The port is taken, formatting failed, or the broker did not get healthy.
        """
        java_executable()
        fetch(self.kafka_dir)
        if self.process.pid() is None:
            taken = [p for p in (self.port, self.controller_port) if port_open(self.host, p)]
            if taken:
                raise ServiceError(
                    f"kafka: port(s) {taken} on {self.host} are already taken by another program; "
                    "stop it or choose other ports (stack.kafka_port, stack.kafka_controller_port)"
                )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{key}={value}\n" for key, value in self.server_properties().items())
        self.config_file.write_text("# Written by stack/kafka.py on every start.\n" + text)
        if not self.formatted():
            self._format()
        self.process.start(timeout)
        logger.info("kafka broker healthy on %s (state %s)", self.bootstrap, self.state_dir)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, a clean controlled shutdown). True if it was running."""
        return self.process.stop(timeout)

    def kill(self) -> bool:
        """``kill -9`` the node (no controlled shutdown). True if it was running."""
        return self.process.kill()

    def restart(self, timeout: float = 60.0) -> None:
        """Stop and start again on the same ports and data (committed offsets survive)."""
        self.stop()
        self.start(timeout)

    def status(self) -> dict[str, Any]:
        """Pid, health, address, state folder and log file of the broker."""
        process = self.process
        pid = process.pid()
        return {
            "service": NAME,
            "pid": pid,
            "running": pid is not None,
            "healthy": pid is not None and process.is_healthy(),
            "bootstrap": self.bootstrap,
            "controller": f"{self.host}:{self.controller_port}",
            "state_dir": str(self.state_dir),
            "log": str(process.log_file),
        }

    def _java_command(self, main_class: str, *args: str) -> list[str]:
        libs = self.kafka_dir / "libs"
        return [
            find_java() or "java",  # start() has checked it; status and stop need no Java
            f"-Xms{min_heap(self.heap)}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.kafka_dir / 'log4j2.yaml'}",
            f"-Dharmscan.kafka.log.level={self.log_level}",
            *self.jvm_flags,
            "-cp",
            f"{libs}/*",
            main_class,
            *args,
        ]

    def _format(self) -> None:
        cluster_id = self.cluster_id or new_cluster_id()
        args = ["format", "--cluster-id", cluster_id, "--config", str(self.config_file)]
        if not self.voters:
            args.append("--standalone")
        command = self._java_command(STORAGE_TOOL, *args, "--ignore-formatted")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"kafka storage format failed (exit {result.returncode}) for {self.data_dir}:\n"
                + (result.stdout + result.stderr).strip()[-3000:]
            )
        logger.info("formatted kafka storage in %s", self.data_dir)


def min_heap(heap: str) -> str:
    """The initial heap for ``-Xms``: a quarter of ``heap`` (``"512m"`` -> ``"128m"``)."""
    units = {"k": 1, "m": 1024, "g": 1024 * 1024}
    number, unit = heap[:-1], heap[-1:].lower()
    if unit not in units or not number.isdigit():
        raise ValueError(f"kafka heap {heap!r} must look like 512m or 1g (units k, m, g)")
    return f"{max(int(number) * units[unit] // 4, 16 * 1024)}k"


def metadata_ok(bootstrap: str, timeout: float = 3.0) -> bool:
    """Whether a real metadata request to ``bootstrap`` answers with at least one broker."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # log_level 0: a refused connection while the broker boots is expected, not worth a line.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=timeout).brokers)
    except KafkaException:
        return False


def broker_from_settings(settings: Settings) -> KafkaBroker:
    """The local broker of these settings: ``stack`` ports, state in ``paths.services/kafka``."""
    return KafkaBroker(
        state_dir=settings.paths.services / NAME,
        host=settings.stack.host,
        port=settings.stack.kafka_port,
        controller_port=settings.stack.kafka_controller_port,
    )
