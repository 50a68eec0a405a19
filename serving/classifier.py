"""The batching classifier: request payloads in, results and typed rejections out.

Pure of Kafka: it takes message values and returns one outcome per value, in order. Threads parse
each request strictly and read its bytes (file, S3 object or inline); the bytes are decoded and
preprocessed in worker processes under hard limits (`serving.decoding`: address space, CPU time,
wall-clock time, pixel and aspect-ratio caps), through the one preprocessing path training uses
(`decode_image` with JPEG draft mode, then the model's `EvalPreset`); the accepted images are scored
in one batch by the current model. An animated or multi-page image is decoded into up to
``max_frames`` frames, each one crop of the batch; its score is the maximum over its frames (the
worst frame decides) and its result names how many frames were scored and which scored highest.
Whatever goes wrong with one payload's content is that payload's
rejection (``internal_error`` with the exception type for the unforeseen); only an unreachable
source (`SourceUnavailable`) escapes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from harmscan.imagepolicy import ImageRejected
from harmscan.presets import EvalPreset
from serving.decodeworker import Decoded, DecodeLimits
from serving.decoding import DecodePool
from serving.inputs import InputReader, InputRejected, SourceUnavailable
from serving.model import LoadedModel
from serving.schema import (
    DEFAULT_MAX_REQUEST_BYTES,
    Request,
    Result,
    SchemaError,
    decode_request,
    peek_request_id,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejection:
    """A payload that goes to the dead-letter topic."""

    reason: str
    detail: str
    request_id: str | None


@dataclass(frozen=True)
class Prepared:
    """A decoded, preprocessed image ready to score (one row per frame)."""

    request: Request
    decoded: Decoded
    data: bytes = b""  # the bytes read, kept for the digest of a result in the review band

    @property
    def array(self) -> np.ndarray:
        """The model inputs, one row per frame scored."""
        return self.decoded.array


Outcome = Result | Rejection


@dataclass
class PendingBatch:
    """A batch whose reading and decoding runs in the pool (see `BatchClassifier.submit`)."""

    values: list[bytes | None]
    preset: EvalPreset
    futures: list[Future[Prepared | Rejection]]
    verdicts: dict[int, Rejection]

    def cancel(self) -> None:
        """Drop the decodes that have not started."""
        for future in self.futures:
            future.cancel()


def internal_error(exc: BaseException, request_id: str | None) -> Rejection:
    """The rejection of a payload that raised something unforeseen (named by its type)."""
    return Rejection("internal_error", f"{type(exc).__name__}: {str(exc)[:500]}", request_id)


class BatchClassifier:
    """Decodes a batch of requests in parallel and scores the good ones in one model call.

    Args:
        reader: Turns requests into bytes under the serving limits.
        workers: Decode worker processes (and as many reading threads).
        max_pixels: Largest accepted image, in pixels (checked from the header).
        decode_timeout_s: Longest wall-clock and CPU time one decode may take.
        jpeg_draft: Whether to use Pillow's JPEG draft mode (decode at reduced scale).
        max_aspect_ratio: Largest accepted longer/shorter side ratio (from the header).
        decode_memory_mb: Address space a decode worker may add to its start-up size.
        max_request_bytes: Largest accepted request message (checked before parsing).
        max_frames: Most frames of an animated or multi-page image to score (1: the first only).
    """

    def __init__(
        self,
        reader: InputReader,
        *,
        workers: int,
        max_pixels: int,
        decode_timeout_s: float,
        jpeg_draft: bool = True,
        max_aspect_ratio: float | None = None,
        decode_memory_mb: int = 768,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_frames: int = 1,
    ) -> None:
        self.reader = reader
        self.limits = DecodeLimits(
            max_pixels=max_pixels,
            max_aspect_ratio=max_aspect_ratio,
            timeout_s=decode_timeout_s,
            memory_mb=decode_memory_mb,
            jpeg_draft=jpeg_draft,
            max_frames=max_frames,
        )
        self.max_request_bytes = max_request_bytes
        self.workers = workers
        self.decoder = DecodePool(workers, decode_memory_mb)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")

    def close(self) -> None:
        """Stop the reading threads and kill the decode workers."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.decoder.close()

    def parse(self, value: bytes | None) -> Request | Rejection:
        """The request of a payload, or its rejection (``bad_schema``, ``internal_error``)."""
        try:
            return decode_request(value, self.max_request_bytes)
        except SchemaError as exc:
            return Rejection("bad_schema", str(exc), peek_request_id(value))
        except Exception as exc:
            logger.warning("parsing a request failed unexpectedly: %r", exc)
            return internal_error(exc, None)

    def prepare_one(self, value: bytes | None, preset: EvalPreset) -> Prepared | Rejection:
        """Parse, read, decode and preprocess one payload.

        Raises:
            SourceUnavailable: The image source's infrastructure failed (not the input's fault).
        """
        request = self.parse(value)
        if isinstance(request, Rejection):
            return request
        try:
            data = self.reader.read(request)
            decoded = self.decoder.frames(data, preset, self.limits)
            if decoded.failed:
                logger.warning(
                    "%s: %d frame(s) not scored (%s)",
                    request.describe(), decoded.failed, decoded.detail,
                )  # fmt: skip
            return Prepared(request, decoded, data)
        except (InputRejected, ImageRejected) as exc:
            return Rejection(exc.reason, exc.detail, request.id)
        except SourceUnavailable:
            raise
        except OSError as exc:  # reading a local file or S3 failed below the input's level
            raise SourceUnavailable(f"reading {request.describe()}: {exc}") from exc
        except Exception as exc:  # the input's fault by the one rule: never stop the consumer
            logger.warning("preparing %s failed unexpectedly: %r", request.describe(), exc)
            return internal_error(exc, request.id)

    def submit(
        self,
        values: list[bytes | None],
        preset: EvalPreset,
        verdicts: dict[int, Rejection] | None = None,
    ) -> PendingBatch:
        """Start reading and decoding a batch; `collect` waits for it.

        Args:
            values: The payloads.
            preset: The preprocessing of the model that will score them.
            verdicts: Payloads (by index) already rejected: they are not even parsed.
        """
        verdicts = verdicts or {}
        futures: list[Future[Prepared | Rejection]] = []
        for index, value in enumerate(values):
            if index in verdicts:
                decided: Future[Prepared | Rejection] = Future()
                decided.set_result(verdicts[index])
                futures.append(decided)
            else:
                futures.append(self._pool.submit(self.prepare_one, value, preset))
        return PendingBatch(values, preset, futures, verdicts)

    def collect(self, pending: PendingBatch) -> list[Prepared | Rejection]:
        """The prepared images of a submitted batch (each decode is bounded by its worker).

        Raises:
            SourceUnavailable: Any payload's source infrastructure failed.
        """
        return [future.result() for future in pending.futures]

    def prepare(self, values: list[bytes | None], preset: EvalPreset) -> list[Prepared | Rejection]:
        """`prepare_one` for every payload, in parallel (`submit` then `collect`)."""
        return self.collect(self.submit(values, preset))

    def score(
        self, prepared: list[Prepared | Rejection], model: LoadedModel, received_at: float
    ) -> list[Outcome]:
        """Score the prepared images in one model call; one outcome per item, in order.

        Every frame is one crop of the batch; the model scores them in calls of at most its
        ``max_batch`` crops (``serving.batch_size``). A request's score is the maximum over its
        frames.
        """
        good = [p.array for p in prepared if isinstance(p, Prepared)]
        probs = model.p_harmful(np.concatenate(good)) if good else np.zeros(0)
        completed_at = time.time()
        outcomes: list[Outcome] = []
        start = 0
        for item in prepared:
            if isinstance(item, Prepared):
                frames = probs[start : start + len(item.array)]
                start += len(frames)
                worst = int(np.argmax(frames))
                result = make_result(item.request, float(frames[worst]), model, received_at,
                                     completed_at)  # fmt: skip
                if result.review:  # the page checks that the source still holds these bytes
                    result = replace(result, sha256=hashlib.sha256(item.data).hexdigest())
                if len(frames) > 1 or item.decoded.failed:
                    result = replace(
                        result,
                        frames_scored=len(frames),
                        worst_frame=item.decoded.indices[worst],
                        frames_failed=item.decoded.failed,
                    )
                outcomes.append(result)
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
            pending = self.submit(pending.values, model.preset, pending.verdicts)
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
