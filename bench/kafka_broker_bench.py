"""Startup figures of the local Kafka broker: jar fetch, cold start, restart, produce/consume.

Run: ``.venv/bin/python bench/kafka_broker_bench.py [--rounds 3]``. Starts brokers on free
loopback ports in a temporary folder and stops each one; prints medians and ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stack.kafka import KAFKA_DIR, KafkaBroker, fetch
from stack.process import free_ports

JITS = {"default (C2)": (), "C1 only (tests)": ("-XX:TieredStopAtLevel=1",)}


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fetch_figures() -> None:
    current = timed(lambda: fetch())
    # A Maven run into a scratch copy: the repository's kafka/libs may be in use by a broker.
    with tempfile.TemporaryDirectory(prefix="kafka-fetch-") as folder:
        shutil.copy(KAFKA_DIR / "pom.xml", folder)
        warm = timed(lambda: fetch(Path(folder)))
        jars = len(list(Path(folder, "libs").glob("*.jar")))
    print(f"fetch, jars current:          {current:6.2f} s")
    print(f"fetch, Maven cache warm:      {warm:6.2f} s  ({jars} jars)")


def roundtrip(bootstrap: str, n: int = 1000) -> float:
    from confluent_kafka import Consumer, Producer

    topic = f"bench-{time.time_ns()}"
    start = time.perf_counter()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        producer.produce(topic, b"x" * 1024, key=str(i).encode())
    producer.flush(30)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    got = 0
    while got < n and time.perf_counter() - start < 60:
        message = consumer.poll(1.0)
        got += message is not None and message.error() is None
    consumer.close()
    return time.perf_counter() - start


def broker_figures(rounds: int) -> None:
    for label, flags in JITS.items():
        cold, restart, trip = [], [], []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="kafka-bench-") as folder:
                port, controller_port = free_ports(2)
                broker = KafkaBroker(
                    Path(folder), port=port, controller_port=controller_port, jvm_flags=flags
                )
                try:
                    cold.append(timed(broker.start))
                    trip.append(roundtrip(broker.bootstrap))
                    broker.stop()
                    restart.append(timed(broker.start))
                finally:
                    broker.stop()
        print(
            f"{label:16s} cold start (format+start+healthy) {statistics.median(cold):5.2f} s, "
            f"restart {statistics.median(restart):5.2f} s, "
            f"1000 x 1 KiB produce+consume (new group) {statistics.median(trip):5.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"machine: {load}")
    fetch_figures()
    broker_figures(args.rounds)


if __name__ == "__main__":
    main()
