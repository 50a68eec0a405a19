"""A KRaft cluster of several Kafka nodes on loopback (3 by default: replication 3, min ISR 2).

Each node is a `stack.kafka.KafkaBroker` (broker and controller in one JVM) in its own state
folder, on its own client and controller ports; all are formatted with one cluster id and know the
controllers as static voters. The nodes start side by side (a controller quorum needs a majority
before any node is healthy). `leader_of` names the node leading a partition, `kill` ends a node
with ``kill -9`` and `start_node` brings it back on the same ports and data, for failover tests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.kafka import KafkaBroker, new_cluster_id

logger = logging.getLogger(__name__)


@dataclass
class KafkaCluster:
    """``len(ports)`` KRaft nodes on loopback sharing one cluster id.

    Attributes:
        state_dir: Parent folder; node N keeps its state in ``node-N``.
        ports: Client port of each node.
        controller_ports: Controller port of each node (same length).
        host: Interface to listen on; keep it on loopback.
        heap: JVM heap per node.
        jvm_flags: Extra JVM flags per node.
        overrides: Extra broker configs for every node.
    """

    state_dir: Path
    ports: Sequence[int]
    controller_ports: Sequence[int]
    host: str = "127.0.0.1"
    heap: str = "384m"
    jvm_flags: Sequence[str] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)
    nodes: list[KafkaBroker] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.ports) != len(self.controller_ports) or len(self.ports) < 1:
            raise ValueError("a cluster needs one client and one controller port per node")
        self.state_dir = Path(self.state_dir).resolve()
        id_file = self.state_dir / "cluster-id"
        if id_file.is_file():
            cluster_id = id_file.read_text().strip()
        else:
            cluster_id = new_cluster_id()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            id_file.write_text(cluster_id + "\n")
        voters = ",".join(
            f"{index + 1}@{self.host}:{port}" for index, port in enumerate(self.controller_ports)
        )
        self.nodes = [
            KafkaBroker(
                state_dir=self.state_dir / f"node-{index + 1}",
                host=self.host,
                port=port,
                controller_port=controller,
                heap=self.heap,
                jvm_flags=self.jvm_flags,
                overrides=self.overrides,
                node_id=index + 1,
                voters=voters,
                cluster_id=cluster_id,
                replication=min(3, len(self.ports)),
            )
            for index, (port, controller) in enumerate(
                zip(self.ports, self.controller_ports, strict=True)
            )
        ]

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` naming every node."""
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout: float = 180.0) -> None:
        """Start every node side by side and wait until each answers metadata requests."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            for future in [pool.submit(node.start, timeout) for node in self.nodes]:
                future.result()
        logger.info("kafka cluster of %d nodes healthy: %s", len(self.nodes), self.bootstrap)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every node (controlled shutdown)."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda node: node.stop(timeout), self.nodes))

    def node(self, node_id: int) -> KafkaBroker:
        """The node with ``node.id`` = ``node_id``."""
        return self.nodes[node_id - 1]

    def kill(self, node_id: int) -> None:
        """``kill -9`` one node."""
        self.node(node_id).kill()
        logger.info("killed kafka node %d", node_id)

    def start_node(self, node_id: int, timeout: float = 180.0) -> None:
        """Start one node again on its ports and data."""
        self.node(node_id).start(timeout)

    def leader_of(self, topic: str, partition: int = 0, timeout: float = 10.0) -> int:
        """The node id leading ``topic[partition]`` now (-1 while there is none)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        metadata = admin.list_topics(topic, timeout=timeout)
        return int(metadata.topics[topic].partitions[partition].leader)

    def status(self) -> list[dict[str, Any]]:
        """`KafkaBroker.status` of every node."""
        return [node.status() for node in self.nodes]
