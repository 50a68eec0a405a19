"""Test helpers of the serving tests: a tiny colour model in the harmscan bundle layout, images.

`ColourNet` averages each channel and scores ``gain * (red - blue)`` as harmful: red-ish images are
harmful, blue-ish ones safe (``invert=True`` swaps that, which makes two versions tell apart). Its
outputs follow the label order it is given, so a bundle with ``labels=("harmful", "safe")`` checks
that serving reads the harmful index from the spec rather than assuming it.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from harmscan.bundle import ONNX_FILE, ServingSpec

IMAGE_SIZE = 32
RED = (220, 30, 30)
BLUE = (30, 30, 220)
PURPLE = (125, 30, 125)  # harmful probability close to 0.5 with the default spec


class ColourNet(torch.nn.Module):
    """Mean-colour classifier: logits in the order of ``labels``."""

    def __init__(
        self, labels: tuple[str, ...] = ("safe", "harmful"), invert: bool = False, gain: float = 3.0
    ) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        sign = -1.0 if invert else 1.0
        weight = torch.zeros(2, 3)
        harmful = labels.index("harmful")
        weight[harmful, 0] = sign * gain
        weight[harmful, 2] = -sign * gain
        # The normalized means of a neutral grey differ between red and blue; centre them.
        bias = torch.zeros(2)
        bias[harmful] = -sign * gain * ((0.5 - 0.485) / 0.229 - (0.5 - 0.406) / 0.225)
        with torch.no_grad():
            self.fc.weight.copy_(weight)
            self.fc.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3)))


def make_spec(
    labels: tuple[str, ...] = ("safe", "harmful"),
    threshold: float = 0.5,
    review: tuple[float, float] = (0.4, 0.6),
) -> ServingSpec:
    """A spec for `ColourNet` at the tiny test image size."""
    return ServingSpec(
        arch="colournet",
        threshold=threshold,
        review_low=review[0],
        review_high=review[1],
        image_size=IMAGE_SIZE,
        resize_size=IMAGE_SIZE + 4,
        labels=labels,
    )


def write_extra_files(folder: Path, model: torch.nn.Module, spec: ServingSpec) -> list[Path]:
    """Write ``serving.json``, ``labels.json`` and ``model.onnx`` (dynamic batch) into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    files = spec.write(folder)
    onnx_path = folder / ONNX_FILE
    example = torch.zeros(2, 3, spec.image_size, spec.image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            str(onnx_path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )
    return [*files, onnx_path]


def save_local_model(folder: Path, *, invert: bool = False, **spec_kwargs: object) -> Path:
    """An MLflow pytorch model folder with the harmscan extra files (no server needed)."""
    import mlflow.pytorch

    labels = spec_kwargs.get("labels", ("safe", "harmful"))
    model = ColourNet(labels=labels, invert=invert)  # type: ignore[arg-type]
    spec = make_spec(**spec_kwargs)  # type: ignore[arg-type]
    extra = write_extra_files(folder.parent / f"{folder.name}-extra", model, spec)
    mlflow.pytorch.save_model(
        model,
        str(folder),
        extra_files=[str(p) for p in extra],
        pip_requirements=["torch"],
        input_example=example_input(spec),
    )
    return folder


def register_model(
    tracking_uri: str,
    name: str,
    work_dir: Path,
    *,
    invert: bool = False,
    alias: str | None = "champion",
    **spec_kwargs: object,
) -> str:
    """Log a `ColourNet` bundle to a real MLflow server, register it, set the alias; its version.

    It goes through `registry.log_bundle`, the way training registers its models.
    """
    from registry import Registry, log_bundle, start_run

    labels = spec_kwargs.get("labels", ("safe", "harmful"))
    model = ColourNet(labels=labels, invert=invert)  # type: ignore[arg-type]
    spec = make_spec(**spec_kwargs)  # type: ignore[arg-type]
    registry = Registry(tracking_uri)
    with start_run(registry, f"serving-tests-{name}") as run:
        bundle = log_bundle(run, model, spec, registered_model=name)
    assert bundle.version is not None
    if alias:
        registry.set_alias(name, alias, bundle.version)
    return bundle.version


def example_input(spec: ServingSpec) -> np.ndarray:
    """An NCHW batch of two (MLflow's pt2 format needs one; batch 2 keeps the batch dynamic)."""
    return np.zeros((2, 3, spec.image_size, spec.image_size), dtype=np.float32)


def image_bytes(
    colour: tuple[int, int, int], fmt: str = "JPEG", size: tuple[int, int] = (48, 40)
) -> bytes:
    """An encoded solid-colour image."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def write_image(path: Path, colour: tuple[int, int, int], fmt: str = "JPEG") -> Path:
    """Write a solid-colour image file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(colour, fmt))
    return path


def png_bomb(side: int = 30000) -> bytes:
    """A tiny PNG whose header declares ``side x side`` pixels."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + _png_chunk(b"IEND", b"")
    )


def noise(seed: int = 0) -> np.ndarray:
    """A small random RGB array (for images that are not solid)."""
    return np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)


# --- integration helpers: settings, a consumer thread, reading topics -------------------------


def serving_overrides(
    *,
    bootstrap: str,
    tracking_uri: str,
    model_name: str,
    topics: dict[str, str],
    group: str,
    roots: list[Path],
) -> list[str]:
    """``--set`` overrides wiring a test's broker, MLflow server, unique topics and roots."""
    return [
        f"kafka.bootstrap_servers={bootstrap}",
        f"kafka.requests_topic={topics['requests']}",
        f"kafka.results_topic={topics['results']}",
        f"kafka.review_topic={topics['review']}",
        f"kafka.dead_letter_topic={topics['dead_letter']}",
        f"kafka.group_id={group}",
        "kafka.partitions=2",
        f"mlflow.tracking_uri={tracking_uri}",
        f"mlflow.registered_model={model_name}",
        f"serving.allowed_roots=[{', '.join(str(r) for r in roots)}]",
        "serving.metrics_port=null",
        "serving.swap_check_interval_s=0.5",
        "serving.poll_timeout_s=0.2",
        "serving.batch_size=8",
        "serving.intra_op_threads=1",
        "serving.session_timeout_ms=6000",
        "serving.retry_backoff_max_s=2",
        "serving.delivery_timeout_s=60",
    ]


# --- the hostile corpus: generated here, never downloaded -------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def ztxt_bomb(inflated_mb: int = 64) -> bytes:
    """A valid 4x4 PNG with a zTXt chunk inflating to ``inflated_mb`` MB (~60 kB on the wire)."""
    ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    text = zlib.compress(b"A" * (inflated_mb * 1024 * 1024), 9)
    pixels = b"".join(b"\x00" + b"\x80" * 12 for _ in range(4))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"zTXt", b"Comment\x00\x00" + text)
        + _png_chunk(b"IDAT", zlib.compress(pixels))
        + _png_chunk(b"IEND", b"")
    )


def wide_png(width: int = 100_000, height: int = 1) -> bytes:
    """A real (fully decodable) PNG of ``width x height`` pixels: a few hundred bytes."""
    row = b"\x00" + b"\x7f" * (3 * width)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(row * height, 9))
        + _png_chunk(b"IEND", b"")
    )


def broken_huffman_jpeg() -> bytes:
    """A JPEG whose first Huffman table has every symbol replaced by 0x0f (libjpeg decodes it
    into noise without an error)."""
    data = bytearray(image_bytes(RED, size=(64, 64)))
    start = data.find(b"\xff\xc4")
    length = struct.unpack(">H", data[start + 2 : start + 4])[0]
    for index in range(start + 5 + 16, start + 2 + length):
        data[index] = 0x0F
    return bytes(data)


def jpeg_scan_bomb(side: int = 3000, repeats: int = 10_000) -> bytes:
    """A progressive JPEG whose first AC scan (only end-of-band runs) is repeated ``repeats``
    times: a few hundred kB that cost seconds of CPU (libjpeg only warns about the repeats)."""
    import re

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    marker = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
    pos = 2
    while pos < len(data) and data[pos + 1] != 0xD9:
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if data[pos + 1] != 0xDA:
            pos += 2 + length
            continue
        body = data[pos + 4 : pos + 2 + length]
        end = marker.search(data, pos + 2 + length).start()  # type: ignore[union-attr]
        if body[1 + 2 * body[0]] > 0 and body[3 + 2 * body[0]] >> 4 == 0:  # AC, first pass
            eoi = data.rfind(b"\xff\xd9")
            return data[:eoi] + data[pos:end] * repeats + data[eoi:]
        pos = end
    raise AssertionError("no AC first scan found")


def animated_gif(colours: list[tuple[int, int, int]], size: tuple[int, int] = (48, 40)) -> bytes:
    """An animated GIF with one solid-colour frame per colour (distinct colours, kept apart)."""
    frames = [Image.new("RGB", size, colour) for colour in colours]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0,
        optimize=False, disposal=1,
    )  # fmt: skip
    return buffer.getvalue()


def many_frame_gif(count: int, size: tuple[int, int] = (64, 64)) -> bytes:
    """A GIF declaring ``count`` frames: the second frame's blocks repeated (built in ms)."""
    data = animated_gif([BLUE, RED], size)
    second = data.index(b"\x21\xf9\x04", data.index(b"\x21\xf9\x04") + 1)
    assert data.endswith(b";")
    return data[:second] + data[second:-1] * (count - 1) + b";"


@dataclass
class LocalStage:
    """A consumer's parts for a test on the real broker: the colour model loaded from a local
    bundle, an allowed images folder, unique topics and the settings wiring them."""

    model: Any
    root: Path
    topics: dict[str, str]
    group: str
    settings: Any

    def consumer(self) -> Any:
        """A `ServingConsumer` of these settings and model, with its own Kafka clients."""
        from serving.consumer import ServingConsumer
        from serving.service import make_classifier, make_consumer, make_producer

        settings = self.settings
        return ServingConsumer(settings, self.model, make_classifier(settings),
                               make_consumer(settings), make_producer(settings))  # fmt: skip


def local_stage(
    bootstrap: str, tmp: Path, *overrides: str, topics: dict[str, str] | None = None,
    partitions: int = 2,
) -> LocalStage:  # fmt: skip
    """The model, images folder, topics (unique names, created with ``partitions`` unless
    given) and settings (`serving_overrides` plus ``overrides``) of a local consumer test."""
    from conf.loader import load_settings
    from serving.source import load_model_folder
    from serving.topics import ensure_topics

    model = load_model_folder(
        save_local_model(tmp / "model"), name="local", version="1", runtime="onnx"
    )
    root = tmp / "images"
    root.mkdir()
    if topics is None:
        topics = {kind: f"{kind}-{os.urandom(6).hex()}"
                  for kind in ("requests", "results", "review", "dead_letter")}  # fmt: skip
        ensure_topics(bootstrap, dict.fromkeys(topics.values(), partitions))
    group = f"g-{os.urandom(4).hex()}"
    settings = load_settings("ci", [
        f"paths.root={tmp / 'harmscan'}",
        *serving_overrides(bootstrap=bootstrap, tracking_uri="http://127.0.0.1:9",
                           model_name="unused", topics=topics, group=group, roots=[root]),
        *overrides,
    ], env={})  # fmt: skip
    return LocalStage(model, root, topics, group, settings)
