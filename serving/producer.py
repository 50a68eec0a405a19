"""The request producer: files, folders or ``s3://`` URIs in, path, inline or s3 requests out, at
an optional rate.

Path requests carry the absolute path as given (the consumer resolves symlinks and checks its
allowed roots itself); ``inline`` requests carry the bytes, base64-encoded; ``s3`` requests carry
the URI (the consumer checks its allowed buckets and reads the object). Every request gets a
fresh id, used as the message key; delivery is verified for every message.
"""

from __future__ import annotations

import base64
import logging
import math
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from confluent_kafka import KafkaError, Message, Producer

from conf.settings import Settings
from harmscan.imagepolicy import IMAGE_SUFFIXES
from serving.schema import encode_request

logger = logging.getLogger(__name__)


S3_SCHEME = "s3://"


@dataclass(frozen=True)
class Sources:
    """What ``harmscan produce`` was given: ``s3://`` URIs (each once, in order) and local paths."""

    s3_uris: list[str]
    paths: list[Path]


def split_sources(arguments: Iterable[str]) -> Sources:
    """Tell ``s3://bucket/key`` URIs from local paths; each URI once, however often it is named.

    Raises:
        ValueError: An ``s3://`` URI without a bucket or key, or with a ``.`` or ``..`` segment
            (the consumer would dead-letter it).
    """
    from serving.s3source import split_s3_uri
    from serving.sourceerrors import InputRejected

    uris: dict[str, None] = {}
    paths: list[Path] = []
    for argument in arguments:
        if argument.lower().startswith(S3_SCHEME):
            uri = S3_SCHEME + argument[len(S3_SCHEME) :]
            try:
                split_s3_uri(uri)
            except InputRejected as exc:
                raise ValueError(exc.detail) from None
            uris[uri] = None
        else:
            paths.append(Path(argument))
    return Sources(list(uris), paths)


def unlisted_buckets(uris: Iterable[str], allowed_buckets: Iterable[str]) -> list[str]:
    """The buckets of ``uris`` that ``serving.allowed_buckets`` does not list, each once."""
    from serving.s3source import split_s3_uri

    allowed = set(allowed_buckets)
    buckets = (split_s3_uri(uri)[0] for uri in uris)
    return list(dict.fromkeys(b for b in buckets if b not in allowed))


def iter_image_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files given directly, and image files (by suffix) found recursively in given folders;
    each file once, however often it is named (a file and its folder, say).

    Raises:
        FileNotFoundError: A given path does not exist.
        ValueError: A given path is neither a folder nor a regular file (a FIFO would block
            ``--inline`` for ever).
    """
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.is_file():
            found = [path]
        elif path.exists():
            raise ValueError(f"{path} is neither a regular file nor a folder")
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
        for file in found:
            real = file.resolve()
            if real not in seen:
                seen.add(real)
                yield file


@dataclass
class SendReport:
    """What a producer run did: ids sent (by path), failures (path -> error)."""

    sent: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


# The slowest pace a producer keeps (one request in 1000 s); slower is not a rate but a wait.
MIN_RATE: Final = 0.001


class RequestProducer:
    """Sends classification requests to the requests topic.

    Args:
        settings: Resolved settings (Kafka connection, topic, size limit).
        rate: Requests per second, or None for as fast as possible.
    """

    def __init__(self, settings: Settings, rate: float | None = None) -> None:
        from serving.topics import ensure_serving_topics

        if rate is not None and not (math.isfinite(rate) and rate >= MIN_RATE):
            raise ValueError(
                f"rate must be at least {MIN_RATE} requests per second, or None (as fast as "
                f"possible), got {rate}"
            )
        ensure_serving_topics(settings)  # the topics serve creates: nothing auto-creates them
        self.settings = settings
        self.topic = settings.kafka.requests_topic
        self.rate = rate
        # Paced requests go out one by one, so waiting to fill a batch only adds latency (5 ms
        # of a ~25 ms round trip measured at 10/s); unpaced bulk sends batch up for throughput.
        linger_ms = 0 if rate is not None else 5
        self._producer = Producer(
            {**settings.kafka.client_config(), "enable.idempotence": True, "linger.ms": linger_ms}
        )
        self._next_at = time.monotonic()
        self.report = SendReport()

    def send_path(self, path: Path, request_id: str | None = None) -> str:
        """Send a path request for ``path`` (made absolute); the request id."""
        absolute = str(path if path.is_absolute() else Path.cwd() / path)
        return self._send(str(path), path=absolute, request_id=request_id)

    def send_bytes(self, data: bytes, label: str = "inline", request_id: str | None = None) -> str:
        """Send image bytes inline; the request id."""
        text = base64.b64encode(data).decode()
        return self._send(label, image_b64=text, request_id=request_id)

    def send_s3(self, uri: str, request_id: str | None = None) -> str:
        """Send an ``s3://bucket/key`` request; the request id."""
        return self._send(uri, s3=uri, request_id=request_id)

    def flush(self, timeout: float = 60.0) -> SendReport:
        """Wait for every delivery report; the report of this producer so far."""
        remaining = self._producer.flush(timeout)
        if remaining:
            logger.error("%d requests not delivered within %.0fs", remaining, timeout)
        return self.report

    def close(self, timeout: float = 60.0) -> SendReport:
        """`flush`, then close the client (it would otherwise keep reconnecting until collected);
        the report of this producer."""
        report = self.flush(timeout)
        self._producer.purge()
        self._producer.close()
        return report

    def _send(self, label: str, request_id: str | None = None, **source: str) -> str:
        request_id = request_id or uuid.uuid4().hex
        self._pace()
        value = encode_request(request_id, sent_at=time.time(), **source)

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self.report.sent[label] = request_id
            else:
                self.report.failed[label] = str(err)

        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=request_id.encode(), on_delivery=on_delivery
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)
        return request_id

    def _pace(self) -> None:
        if self.rate is None:
            return
        now = time.monotonic()
        if self._next_at > now:
            time.sleep(self._next_at - now)
        self._next_at = max(self._next_at, now) + 1.0 / self.rate


def produce_files(
    settings: Settings,
    paths: list[Path],
    *,
    s3_uris: Iterable[str] = (),
    inline: bool = False,
    rate: float | None = None,
    show_progress: bool = True,
) -> SendReport:
    """Send one request per image file under ``paths`` and one per ``s3://`` URI (an s3 request
    even with ``inline``: the consumer reads the object), with a rich progress bar.

    Raises:
        FileNotFoundError: A given path does not exist.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    files = list(iter_image_files(paths))
    uris = list(s3_uris)
    producer = RequestProducer(settings, rate)
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task(f"sending to {producer.topic}", total=len(uris) + len(files))
        for uri in uris:
            producer.send_s3(uri)
            progress.advance(task)
        for path in files:
            if inline:
                refused = _send_inline(producer, path, settings.serving.max_inline_bytes)
            else:
                refused = _send_path(producer, path)
            if refused:
                producer.report.failed[str(path)] = refused
            progress.advance(task)
    return producer.flush()


def _send_path(producer: RequestProducer, path: Path) -> str | None:
    """Send a path request for ``path``; why not, if it was not sent: a name that is not UTF-8
    cannot travel in a JSON request (the consumer would refuse the whole request)."""
    try:
        str(path.absolute()).encode("utf-8")
    except UnicodeEncodeError:
        return "its path is not UTF-8, which a path request cannot carry: send it with --inline"
    producer.send_path(path)
    return None


def _send_inline(producer: RequestProducer, path: Path, max_bytes: int) -> str | None:
    """Send ``path``'s bytes inline; why not, if it was not sent (too large, unreadable).

    An empty file is sent: the consumer dead-letters it as not an image, with the others'
    answers. A file that cannot be read (gone since it was listed, no permission) fails alone.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return f"{size} bytes > serving.max_inline_bytes (send it by path instead)"
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    producer.send_bytes(data, label=str(path))
    return None
