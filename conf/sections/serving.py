"""Settings of the streaming side: Kafka clients and topics, and the consumer."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Final, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator

from conf.sections.base import Section

# The mechanisms of the confluent-kafka wheel's librdkafka that take a user and a password
# (it has no GSSAPI/Kerberos; OAUTHBEARER would need settings of its own).
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SASL_MECHANISMS: Final = get_args(SaslMechanism)


class KafkaSettings(Section):
    """Brokers, topics and client security."""

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    requests_topic: str = "harmscan.requests"
    results_topic: str = "harmscan.results"
    dead_letter_topic: str = "harmscan.dead-letter"
    review_topic: str = "harmscan.review"
    # Reviewers' decisions, compacted and keyed by request id (the last decision wins).
    decisions_topic: str = "harmscan.decisions"
    group_id: str = "harmscan-serve"
    partitions: int = Field(default=3, ge=1)
    # Of the topics harmscan creates; 3 with min_insync_replicas 2 on a 3-broker cluster.
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _sasl_settings_go_together(self) -> KafkaSettings:
        """A SASL protocol needs a mechanism, a user and a password; a protocol without SASL
        takes none of them (they would never be sent)."""
        protocol = f"kafka.security_protocol {self.security_protocol}"
        given = {
            "kafka.sasl_mechanism": self.sasl_mechanism is not None,
            "kafka.sasl_username": self.sasl_username is not None,
            "kafka.sasl_password": self.sasl_password is not None,
        }
        if not self.security_protocol.startswith("SASL_"):
            if any(given.values()):
                named = [k for k, v in given.items() if v]
                verb = "is" if len(named) == 1 else "are"
                raise ValueError(
                    f"{', '.join(named)} {verb} set, but {protocol} sends no SASL credentials: set "
                    "kafka.security_protocol to SASL_SSL (or SASL_PLAINTEXT), or unset them"
                )
            return self
        missing = [k for k, v in given.items() if not v]
        if missing:
            raise ValueError(
                f"{protocol} needs {', '.join(missing)} (kafka.sasl_mechanism: one of "
                f"{', '.join(SASL_MECHANISMS)}; the password as HARMSCAN_KAFKA__SASL_PASSWORD)"
            )
        return self

    def client_config(self) -> dict[str, Any]:
        """The connection and security part of every Kafka client's configuration, with
        ``allow.auto.create.topics=false``: no client creates a topic by naming it."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "allow.auto.create.topics": False,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        return config


# The decode watchdog's wait, in multiples of serving.decode_timeout_s, before it kills a decode
# worker that stopped using CPU (serving.decoding; the CPU limit is the bound of a working one).
DECODE_WALL_FACTOR: Final = 3.0

# What botocore accepts as a bucket name (its VALID_BUCKET, without access-point ARNs).
_BUCKET_NAME = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")


class ServingSettings(Section):
    """The streaming consumer."""

    runtime: Literal["onnx", "torch"] = "onnx"
    model_alias: str = "champion"
    batch_size: int = Field(default=16, ge=1, le=1024)
    poll_timeout_s: float = Field(default=0.5, gt=0, le=1.0)
    # Under a backlog batch k+1 decodes while batch k is inferred. On a quiet 2-core host two decode
    # workers beside two one-thread inference runs served the most through Kafka: int8
    # MobileNetV2, medians of 3 alternated rounds, 161 images/s against 138 with one worker
    # (1.17x; ceiling 179 against 120), p99 at 50/s within the noise (bench/serve_bench.py
    # --layouts '1,2,1,16;2,2,1,16', load 1-2). On a host shared with other jobs (load 8-19) one
    # worker won (two served 0.83x): lower it there. Batch 8 and 32 were within the noise of 16;
    # one two-thread inference run (intra_op_threads 2) lost to two one-thread runs.
    decode_workers: int = Field(default=2, ge=1, le=64)
    intra_op_threads: int = Field(default=1, ge=1)
    # Threads scoring halves of a batch side by side, each with intra_op_threads: on 2 cores two
    # one-thread runs served 139 images/s where one run served 114 (bench/serve_bench.py).
    inference_workers: int = Field(default=2, ge=1, le=64)
    # When the loop polls and starts decoding batch k+1 before batch k is scored and committed:
    # full = only behind a full batch (a backlog: overlap for throughput), always, or never.
    decode_ahead: Literal["full", "always", "never"] = "full"
    # Waiting for the broker's acknowledgement of a batch's results: wait = inside the loop's step
    # (produce, flush, then the next batch); overlap = the loop goes on to poll, decode and score
    # the next batch while the acks come in, and commits the batch once they are all in (before
    # producing the next one's results). At-least-once either way: nothing is committed before
    # its records were acknowledged.
    deliver: Literal["overlap", "wait"] = "wait"
    # Move everything alive when the loop starts (modules, the model, the clients) out of the
    # garbage collector's reach (gc.freeze) while it runs: a full collection then scans only
    # what serving allocated since, instead of stopping the loop for every object of the
    # process (measured on a loaded host: 40-280 ms for the consumer's 50k objects, 0 frozen).
    # Process-wide: a model swap unfreezes, collects the old model and freezes again, and the
    # loop's end unfreezes everything (a host process's own gc.freeze is undone with it).
    gc_freeze: bool = True
    # How a delivered batch's offsets are committed: sync = a round trip inside every step of
    # the loop; async = the loop goes on at once, and a synchronous commit covers the newest
    # offsets when the loop is idle, before partitions are revoked and at shutdown
    # (serving.delivery.Commits). Either way only after all the batch's records were acknowledged.
    commit: Literal["async", "sync"] = "async"
    # async only: least time between two commits (0: every batch). Offsets of the batches in
    # between ride on the next commit; up to this long of requests are redone after a crash. At
    # low load (a commit per request) 200 ms cut the broker's CPU per request to ~0.8x
    # (docs/serving-measurements.md).
    commit_interval_ms: int = Field(default=200, ge=0, le=10_000)
    allowed_roots: list[Path] = Field(default_factory=list)
    allowed_buckets: list[str] = Field(default_factory=list)
    # Separate caps: inline bytes travel inside a Kafka message, so their cap (decoded bytes) must
    # stay below the broker's message limit once base64-encoded (checked at start).
    max_inline_bytes: int = Field(default=700_000, ge=1)
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_object_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=50_000_000, ge=1)
    # Longer side / shorter side, from the header before decoding (a 100000x1 PNG is refused).
    max_aspect_ratio: float = Field(default=20.0, ge=1)
    # Wall-clock and CPU time one decode may take (the worker process is killed past it).
    decode_timeout_s: float = Field(default=5.0, gt=0)
    # Address space a decode worker process may add to its start-up size (RLIMIT_AS).
    decode_memory_mb: int = Field(default=768, ge=64)
    # Frames of an animated GIF/WebP/PNG or multi-page TIFF scored, evenly spaced and always
    # including the first; the worst frame decides (1 = the first frame only). All frames of a
    # request share max_pixels, decode_timeout_s and decode_memory_mb.
    max_frames: int = Field(default=8, ge=1, le=256)
    # Largest record batch the consumer inflates from zstd, and its fetch size (librdkafka's
    # receive.message.max.bytes, default 100 MB): past it a batch is an undecodable dead letter.
    # gzip and lz4 batches are inflated by librdkafka without any limit (see the README).
    max_inflated_batch_bytes: int = Field(default=32 * 1024 * 1024, ge=4 * 1024 * 1024)
    # Dead-letter records carry at most this many bytes of the original payload (+ size, sha256).
    dead_letter_max_payload_bytes: int = Field(default=65_536, ge=0)
    # A message in flight at this many consecutive crashes is dead-lettered without decoding.
    poison_after_crashes: int = Field(default=3, ge=1)
    # Where the poison-message guard keeps its in-flight journal (default: paths.root/serving).
    state_dir: Path | None = None
    swap_check_interval_s: float = Field(default=30.0, gt=0)
    metrics_port: int | None = Field(default=9108, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Pillow JPEG draft mode: decode JPEGs at a reduced scale close to the model's input size.
    jpeg_draft: bool = True
    # S3 image sources (s3://bucket/key); null endpoint = AWS S3 itself, credentials from boto3.
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    # Seconds reading one S3 object may take in all (a slow endpoint is an infrastructure
    # failure, retried; botocore's read timeout only bounds each wait on the socket).
    s3_read_deadline_s: float = Field(default=30.0, gt=0)
    # How long to wait for every result of a batch to be delivered before retrying the batch.
    delivery_timeout_s: float = Field(default=120.0, gt=0)
    # Infrastructure failures (delivery, commit, S3 down) retry with backoff up to this many s.
    retry_backoff_max_s: float = Field(default=30.0, gt=0)
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    session_timeout_ms: int = Field(default=45_000, ge=1000)
    # Static group membership: a restarted consumer with the same id takes its partitions back
    # at once instead of after session_timeout_ms. One distinct id per consumer process.
    # Unset: "<hostname>-<kafka.group_id>" (one process per host and group; give others their own).
    group_instance_id: str | None = None
    # A consumer fenced (FENCED_INSTANCE_ID) or otherwise fatally failed is closed and recreated
    # at most this many times within the window; past that `harmscan serve` exits with code 4.
    consumer_recreate_max: int = Field(default=3, ge=0)
    consumer_recreate_window_s: float = Field(default=600.0, gt=0)
    # Which graph serves: auto = int8 when the bundle's int8 passed its accuracy check at
    # registration (see int8.*), else float; int8 / float force one (int8 needs runtime onnx).
    precision: Literal["auto", "int8", "float"] = "auto"
    # auto also times both graphs side by side at load and serves int8 only if it is at least
    # this many times as fast as float on this host (0: no timing, the accuracy check decides).
    int8_min_speedup: float = Field(default=1.1, ge=0.0)

    @field_validator("allowed_buckets")
    @classmethod
    def _bucket_names(cls, value: list[str]) -> list[str]:
        # botocore refuses other names before any request; the consumer retried such a request
        # as an infrastructure failure, forever.
        bad = [name for name in value if not _BUCKET_NAME.fullmatch(name)]
        if bad:
            raise ValueError(
                f"not S3 bucket names: {bad}; a bucket name is 1-255 of letters, digits, '.', "
                "'-' and '_' (AWS itself: 3-63 of lowercase letters, digits, '.' and '-')"
            )
        return value

    @model_validator(mode="after")
    def _batch_fits_poll_interval(self) -> ServingSettings:
        # The consumer polls between batches only: a batch whose images all run their decode to
        # the watchdog took past max.poll.interval.ms, the broker dropped the consumer from its
        # group mid-batch, and the batch came back to be decoded again.
        worst = self.worst_batch_decode_s
        if worst >= self.max_poll_interval_ms / 1000:
            raise ValueError(
                f"a batch can spend {worst:g} s decoding (serving.batch_size={self.batch_size} "
                f"images over serving.decode_workers={self.decode_workers}, each up to "
                f"{DECODE_WALL_FACTOR:g} x serving.decode_timeout_s={self.decode_timeout_s:g}), "
                f"not under serving.max_poll_interval_ms={self.max_poll_interval_ms}: the broker "
                "would drop the consumer from its group mid-batch; raise max_poll_interval_ms "
                f"above {math.ceil(worst) * 1000}, or lower batch_size or decode_timeout_s, or "
                "add decode_workers"
            )
        return self

    @property
    def worst_batch_decode_s(self) -> float:
        """Seconds one batch can spend decoding: each worker's share of the batch, every decode
        running to the watchdog (`DECODE_WALL_FACTOR` x ``decode_timeout_s``)."""
        rounds = math.ceil(self.batch_size / self.decode_workers)
        return rounds * DECODE_WALL_FACTOR * self.decode_timeout_s

    @property
    def max_request_bytes(self) -> int:
        """Largest request message: an inline image at `max_inline_bytes` in base64, plus JSON."""
        return (self.max_inline_bytes + 2) // 3 * 4 + 4096
