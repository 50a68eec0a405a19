"""The batching classifier: request payloads in, results and typed rejections out.

Pure of Kafka: it takes message values and returns one outcome per value, in order. Reading and
decoding run in a thread pool (Pillow releases the GIL), each image bounded in time; decoding goes
through the one preprocessing path training uses (`decode_image` with JPEG draft mode, then the
model's `EvalPreset`); the accepted images are scored in one batch by the current model.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np

from harmscan.imageio import ImageRejected, decode_image
from harmscan.presets import EvalPreset
from serving.inputs import InputReader, InputRejected, SourceUnavailable
from serving.schema import Request, Result, SchemaError, decode_request, peek_request_id
from serving.source import LoadedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejection:
    """A payload that goes to the dead-letter topic."""

    reason: str
    detail: str
    request_id: str | None


@dataclass(frozen=True)
class Prepared:
    """A decoded, preprocessed image ready to score."""

    request: Request
    array: np.ndarray


Outcome = Result | Rejection


@dataclass
class PendingBatch:
    """A batch whose reading and decoding runs in the pool (see `BatchClassifier.submit`)."""

    values: list[bytes | None]
    preset: EvalPreset
    futures: list[Future[Prepared | Rejection]]
    deadline: float
    pool: ThreadPoolExecutor

    def cancel(self) -> None:
        """Drop the decodes that have not started."""
        for future in self.futures:
            future.cancel()


class BatchClassifier:
    """Decodes a batch of requests in parallel and scores the good ones in one model call.

    Args:
        reader: Turns requests into bytes under the serving limits.
        workers: Threads for reading and decoding.
        max_pixels: Largest accepted image, in pixels (checked from the header).
        max_bytes: Largest accepted payload, in bytes.
        decode_timeout_s: Longest time one image may take to read and decode.
        jpeg_draft: Whether to use Pillow's JPEG draft mode (decode at reduced scale).
    """

    def __init__(
        self,
        reader: InputReader,
        *,
        workers: int,
        max_pixels: int,
        max_bytes: int,
        decode_timeout_s: float,
        jpeg_draft: bool = True,
    ) -> None:
        self.reader = reader
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.decode_timeout_s = decode_timeout_s
        self.jpeg_draft = jpeg_draft
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")

    def close(self) -> None:
        """Stop the decode threads (running decodes are not waited for)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def prepare_one(self, value: bytes | None, preset: EvalPreset) -> Prepared | Rejection:
        """Parse, read, decode and preprocess one payload.

        Raises:
            SourceUnavailable: The image source's infrastructure failed (not the input's fault).
        """
        try:
            request = decode_request(value)
        except SchemaError as exc:
            return Rejection("bad_schema", str(exc), peek_request_id(value))
        try:
            data = self.reader.read(request)
            image = decode_image(
                data,
                max_pixels=self.max_pixels,
                max_bytes=self.max_bytes,
                draft=preset.draft_size if self.jpeg_draft else None,
            )
            return Prepared(request, preset.model_input(image))
        except (InputRejected, ImageRejected) as exc:
            return Rejection(exc.reason, exc.detail, request.id)
        except SourceUnavailable:
            raise
        except OSError as exc:
            raise SourceUnavailable(f"reading {request.describe()}: {exc}") from exc
        except Exception as exc:  # a decoder bug on hostile bytes must not stop the consumer
            logger.warning("decoding %s failed unexpectedly: %r", request.describe(), exc)
            return Rejection("corrupt", f"decoder error {type(exc).__name__}: {exc}", request.id)

    def submit(self, values: list[bytes | None], preset: EvalPreset) -> PendingBatch:
        """Start reading and decoding a batch in the pool; `collect` waits for it."""
        futures = [self._pool.submit(self.prepare_one, value, preset) for value in values]
        deadline = time.monotonic() + self.decode_timeout_s
        return PendingBatch(values, preset, futures, deadline, self._pool)

    def collect(self, pending: PendingBatch) -> list[Prepared | Rejection]:
        """The prepared images of a submitted batch, each bounded by the decode timeout.

        Raises:
            SourceUnavailable: Any payload's source infrastructure failed.
        """
        deadline = pending.deadline
        outcomes: list[Prepared | Rejection] = []
        for index, value in enumerate(pending.values):
            if self._requeue_stranded(pending, index):
                deadline = max(deadline, time.monotonic() + self.decode_timeout_s)
            future = pending.futures[index]
            try:
                outcomes.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                future.cancel()
                self._abandon_pool()
                outcomes.append(
                    Rejection(
                        "too_large",
                        f"not decoded within serving.decode_timeout_s={self.decode_timeout_s}s",
                        peek_request_id(value),
                    )
                )
            # a decode that started late in the batch gets at least a fair share of time
            deadline = max(deadline, time.monotonic() + min(1.0, self.decode_timeout_s))
        return outcomes

    def _abandon_pool(self) -> None:
        """Leave a decode that overran its time to finish alone; later decodes get fresh threads."""
        old, self._pool = (
            self._pool,
            ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="decode"),
        )
        old.shutdown(wait=False)
        logger.warning("a decode overran serving.decode_timeout_s; its thread was abandoned")

    def _requeue_stranded(self, pending: PendingBatch, start: int) -> bool:
        """Move decodes still queued behind an abandoned pool's threads to the current pool.

        Returns:
            Whether any decode was moved (it then gets a fresh time budget).
        """
        if pending.pool is self._pool:
            return False
        moved = False
        for index in range(start, len(pending.futures)):
            if pending.futures[index].cancel():
                pending.futures[index] = self._pool.submit(
                    self.prepare_one, pending.values[index], pending.preset
                )
                moved = True
        pending.pool = self._pool
        return moved

    def prepare(self, values: list[bytes | None], preset: EvalPreset) -> list[Prepared | Rejection]:
        """`prepare_one` for every payload, in parallel (`submit` then `collect`)."""
        return self.collect(self.submit(values, preset))

    def score(
        self, prepared: list[Prepared | Rejection], model: LoadedModel, received_at: float
    ) -> list[Outcome]:
        """Score the prepared images in one model call; one outcome per item, in order."""
        good = [p.array for p in prepared if isinstance(p, Prepared)]
        probs = model.p_harmful(np.stack(good)) if good else np.zeros(0)
        completed_at = time.time()
        scores = iter(probs.tolist())
        outcomes: list[Outcome] = []
        for item in prepared:
            if isinstance(item, Prepared):
                prob = next(scores)
                outcomes.append(make_result(item.request, prob, model, received_at, completed_at))
            else:
                outcomes.append(item)
        return outcomes

    def finish(
        self,
        pending: PendingBatch,
        model: LoadedModel,
        received_at: float,
        stages: dict[str, float] | None = None,
    ) -> list[Outcome]:
        """Collect and score a submitted batch with ``model`` (decoded again if the model's
        preprocessing differs from the one the batch was submitted with, after a hot swap).

        Args:
            pending: The submitted batch.
            model: The model to score with.
            received_at: When the batch was consumed (Unix s), copied into the results.
            stages: If given, receives the seconds spent waiting for the decodes
                (``decode_wait``) and in the model (``infer``).
        """
        if pending.preset != model.preset:
            pending = self.submit(pending.values, model.preset)
        start = time.perf_counter()
        prepared = self.collect(pending)
        decoded = time.perf_counter()
        outcomes = self.score(prepared, model, received_at)
        if stages is not None:
            stages["decode_wait"] = decoded - start
            stages["infer"] = time.perf_counter() - decoded
        return outcomes

    def classify(
        self, values: list[bytes | None], model: LoadedModel, received_at: float
    ) -> list[Outcome]:
        """One outcome per payload, in order: a `Result` or a `Rejection`.

        Raises:
            SourceUnavailable: A source's infrastructure failed; nothing of the batch is final.
        """
        return self.score(self.prepare(values, model.preset), model, received_at)


def make_result(
    request: Request, p_harmful: float, model: LoadedModel, received_at: float, completed_at: float
) -> Result:
    """The result of one scored request under the model's own spec."""
    spec = model.spec
    return Result(
        id=request.id,
        label=spec.label_for(p_harmful),
        p_harmful=round(p_harmful, 6),
        threshold=spec.threshold,
        review=spec.in_review_band(p_harmful),
        model_name=model.name,
        model_version=model.version,
        source="inline" if request.kind == "image_b64" else request.source,
        sent_at=request.sent_at,
        received_at=received_at,
        completed_at=completed_at,
        latency_ms=round((completed_at - received_at) * 1000.0, 3),
        precision=model.precision,
    )
