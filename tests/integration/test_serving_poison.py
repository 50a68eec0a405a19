"""The poison-message guard: a message that kills the consumer process is dead-lettered unread.

Fault injection (the one fake allowed): the consumer runs in a subprocess whose request parser
``kill -9``s its own process when it meets the request id ``poison``. Everything else is real: the
broker, the model, the journal on disk. With ``serving.poison_after_crashes=2`` the first start
dies with the poison in a batch, the second dies with it processed alone, and the third
dead-letters it as ``poison_message`` without parsing it and serves every other request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from serving.headers import H_REASON, headers_dict
from serving.producer import RequestProducer
from serving.schema import encode_request
from tests.kafka_support import has_ids, read_topic, results_by_id
from tests.serving_support import BLUE, RED, save_local_model, serving_overrides, write_image

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]

CRASHING_CONSUMER = """
import json, os, signal, sys, threading, time
from pathlib import Path
from conf.loader import load_settings
from serving import classifier
from serving.consumer import ServingConsumer
from serving.service import make_classifier, make_consumer, make_producer
from serving.source import load_model_folder
from tests.kafka_support import committed_to_end

parse = classifier.BatchClassifier.parse

def crashing_parse(self, value):
    if value and b'"id":"poison"' in value:
        os.kill(os.getpid(), signal.SIGKILL)  # the fault: a crash no handler can catch
    return parse(self, value)

if __name__ == "__main__":  # decode workers re-import the main module
    classifier.BatchClassifier.parse = crashing_parse
    overrides, model_dir = json.loads(sys.argv[1])
    settings = load_settings("ci", overrides, env={})
    model = load_model_folder(Path(model_dir), name="local", version="1", runtime="onnx")
    loop = ServingConsumer(settings, model, make_classifier(settings), make_consumer(settings),
                           make_producer(settings))

    def stop_when_all_committed():
        kafka = settings.kafka
        while not loop.stop_event.wait(0.5):
            if committed_to_end(kafka.bootstrap_servers, kafka.group_id, kafka.requests_topic, 0):
                loop.stop()

    threading.Thread(target=stop_when_all_committed, daemon=True).start()
    loop.run()
"""


@pytest.fixture
def topics(kafka_topics: Callable[..., str]) -> dict[str, str]:
    kinds = ("requests", "results", "review", "dead_letter")
    return {kind: kafka_topics(kind, partitions=1) for kind in kinds}


def test_a_message_that_keeps_killing_the_consumer_is_dead_lettered(
    kafka_bootstrap: str,
    topics: dict[str, str],
    make_settings: Callable[..., object],
    tmp_path: Path,
) -> None:
    root = tmp_path / "images"
    overrides = [
        f"paths.root={tmp_path / 'harmscan'}",
        *serving_overrides(
            bootstrap=kafka_bootstrap, tracking_uri="http://127.0.0.1:9", model_name="unused",
            topics=topics, group=f"g-{os.urandom(4).hex()}", roots=[root],
        ),
        "serving.poison_after_crashes=2",
        "serving.group_instance_id=poison-test",
    ]  # fmt: skip
    settings = make_settings(*overrides)
    producer = RequestProducer(settings)
    good = {}
    for index in range(6):
        colour, label = (RED, "harmful") if index % 2 else (BLUE, "safe")
        good[producer.send_path(write_image(root / f"{index}.jpg", colour))] = label
        if index == 2:
            producer._producer.produce(  # the poison, between good requests
                topics["requests"],
                key=b"poison",
                value=encode_request("poison", path=str(root / "0.jpg")),
            )
    assert not producer.flush(30).failed
    model_dir = save_local_model(tmp_path / "model")
    script = tmp_path / "crashing_consumer.py"
    script.write_text(CRASHING_CONSUMER)
    argument = json.dumps([overrides, str(model_dir)])
    log = tmp_path / "consumer.log"
    codes = []
    for _attempt in range(3):
        with log.open("ab") as out:
            done = subprocess.run(
                [sys.executable, str(script), argument], cwd=REPO, stdout=out, stderr=out,
                timeout=240, check=False, env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
        codes.append(done.returncode)
        if done.returncode == 0:
            break
    assert codes == [-signal.SIGKILL, -signal.SIGKILL, 0], log.read_text()[-3000:]
    results = read_topic(kafka_bootstrap, topics["results"], until=has_ids(set(good)), timeout=60)
    assert {i: rs[-1].label for i, rs in results_by_id(results).items()} == good
    dead = read_topic(kafka_bootstrap, topics["dead_letter"], until=len, timeout=30)
    assert [m.key() for m in dead] == [b"poison"]
    assert headers_dict(dead[0].headers())[H_REASON] == "poison_message"
    journals = list((tmp_path / "harmscan" / "serving").rglob("*.json"))
    assert journals
    assert all(json.loads(j.read_text()) == {"inflight": [], "strikes": {}} for j in journals)
