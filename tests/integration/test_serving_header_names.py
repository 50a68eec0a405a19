"""A header name that is not UTF-8 does not crash the consumer process.

The Python client cannot send one, but any other client can (here: librdkafka's C API through
ctypes). confluent-kafka's ``Message.headers()`` then raises ``SystemError`` once and afterwards
returns the header with a NULL name, which crashed the consumer (SIGSEGV) when the dead letter of
such a message copied its headers; the poison guard's own dead letter crashed it again, for ever.
The check runs in a child process, so a regression fails the test instead of killing the run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import confluent_kafka
import pytest

pytestmark = [pytest.mark.kafka]

BAD_NAME = b"\xff\xfe-not-utf8"


def _librdkafka() -> ctypes.CDLL:
    bundled = sorted(Path(confluent_kafka.__file__).parent.parent.glob("confluent_kafka.libs/*"))
    name = str(bundled[0]) if bundled else ctypes.util.find_library("rdkafka")
    if not name:
        pytest.skip("librdkafka not found for the raw producer")
    return ctypes.CDLL(name)


def produce_raw(bootstrap: str, topic: str, value: bytes, key: bytes, header: bytes) -> None:
    """Produce one record with header ``header`` (any bytes but NUL) through the C API."""
    lib = _librdkafka()
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, *[ctypes.c_char_p] * 3, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    error = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    lib.rd_kafka_conf_set(conf, b"bootstrap.servers", bootstrap.encode(), error, 512)
    producer = lib.rd_kafka_new(0, conf, error, 512)
    assert producer, error.value
    vtype_topic, vtype_value, vtype_key, vtype_flags, vtype_header, vtype_end = 1, 4, 5, 7, 9, 0
    copy = 2  # RD_KAFKA_MSG_F_COPY
    code = lib.rd_kafka_producev(
        ctypes.c_void_p(producer),
        ctypes.c_int(vtype_topic), ctypes.c_char_p(topic.encode()),
        ctypes.c_int(vtype_value), ctypes.c_char_p(value), ctypes.c_size_t(len(value)),
        ctypes.c_int(vtype_key), ctypes.c_char_p(key), ctypes.c_size_t(len(key)),
        ctypes.c_int(vtype_flags), ctypes.c_int(copy),
        ctypes.c_int(vtype_header), ctypes.c_char_p(header), ctypes.c_char_p(b"v"),
        ctypes.c_ssize_t(1),
        ctypes.c_int(vtype_end),
    )  # fmt: skip
    assert code == 0
    assert lib.rd_kafka_flush(ctypes.c_void_p(producer), 10_000) == 0
    lib.rd_kafka_destroy(ctypes.c_void_p(producer))


CHILD = """
import sys, time, uuid
from confluent_kafka import Consumer
from conf.loader import load_settings
from serving.classifier import Rejection
from serving.records import dead_letter

bootstrap, topic = sys.argv[1:3]
settings = load_settings("ci", [f"kafka.bootstrap_servers={bootstrap}"], env={})
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                     "auto.offset.reset": "earliest"})
consumer.subscribe([topic])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    messages = [m for m in consumer.consume(1, 1.0) if m.error() is None]
    if messages:
        break
message = messages[0]
rejection = Rejection("bad_schema", "not JSON", None)
try:
    record = dead_letter(message, rejection, settings)
except Exception:  # as the loop does: an internal_error dead letter, whose read crashed
    record = dead_letter(message, rejection, settings)
print("dead letter headers:", sorted(name for name, _ in record.headers))
print("readable again:", message.headers())
consumer.close()
"""


def test_a_header_name_that_is_not_utf8_is_dropped_not_fatal(
    kafka_bootstrap: str, kafka_topics
) -> None:
    topic = kafka_topics("requests")
    produce_raw(kafka_bootstrap, topic, b"not json", b"k", BAD_NAME)
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, kafka_bootstrap, topic],
        capture_output=True, text=True, timeout=120, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    assert "harmscan-reason" in child.stdout
    assert "readable again: []" in child.stdout
