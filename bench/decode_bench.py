"""JPEG decoders for serving, side by side: Pillow draft mode, simplejpeg, PyTurboJPEG.

Each decodes 1024x768 JPEGs (made from the mirror's images) at the DCT-scaled size nearest above
the preset's resize and then goes through the same crop (`EvalPreset.pixels`), so the figures are
the consumer's decode + preprocessing cost per image. The decoders are timed interleaved (min and
median of rounds), then fed a small hostile corpus to see which inputs each refuses and which it
decodes into something (a truncated JPEG silently grey-filled counts against a decoder).

    .venv/bin/python bench/decode_bench.py [--rounds 5] [--image-size 224]

simplejpeg and PyTurboJPEG are optional here (``uv pip install simplejpeg pyturbojpeg``;
PyTurboJPEG also needs Debian's ``libturbojpeg0``); a missing one is skipped.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.serve_bench import make_images  # noqa: E402
from harmscan.imageio import decode_image  # noqa: E402
from harmscan.imagepolicy import ImageRejected  # noqa: E402
from harmscan.presets import EvalPreset  # noqa: E402

Decoder = Callable[[bytes], np.ndarray]


def pillow_decoder(preset: EvalPreset) -> Decoder:
    def decode(data: bytes) -> np.ndarray:
        return preset.pixels(decode_image(data, draft=preset.draft_size))

    return decode


def whole_resize_decoder(preset: EvalPreset) -> Decoder:
    """Pillow draft mode, then the crop as it was before: the whole image resized, the centre
    square cut out of it (`EvalPreset.crop` now resamples only the square)."""

    def decode(data: bytes) -> np.ndarray:
        image = decode_image(data, draft=preset.draft_size)
        width, height = image.size
        scale = preset.resize / min(width, height)
        new_w = max(preset.resize, round(width * scale))
        new_h = max(preset.resize, round(height * scale))
        resized = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=None)
        left, top = (new_w - preset.image_size) // 2, (new_h - preset.image_size) // 2
        box = (left, top, left + preset.image_size, top + preset.image_size)
        return np.asarray(resized.crop(box))

    return decode


def decode_only(preset: EvalPreset) -> Decoder:
    """Pillow draft mode alone, no crop: what the crop leaves of a decode's cost."""

    def decode(data: bytes) -> np.ndarray:
        return np.asarray(decode_image(data, draft=preset.draft_size))

    return decode


def simplejpeg_decoder(preset: EvalPreset) -> Decoder | None:
    try:
        import simplejpeg
    except ImportError:
        return None

    def decode(data: bytes) -> np.ndarray:
        rgb = simplejpeg.decode_jpeg(
            data, colorspace="RGB", min_height=preset.resize, min_width=preset.resize, strict=True
        )
        return preset.pixels(Image.fromarray(rgb))

    return decode


def turbojpeg_decoder(preset: EvalPreset) -> Decoder | None:
    try:
        import ctypes.util

        from turbojpeg import TJFLAG_STOPONWARNING, TJPF_RGB, TurboJPEG

        # Debian's libturbojpeg0 ships only the versioned .so.0, which TurboJPEG() does not try.
        jpeg = TurboJPEG(lib_path=ctypes.util.find_library("turbojpeg"))
    except (ImportError, RuntimeError, OSError):
        return None
    factors = sorted(jpeg.scaling_factors, key=lambda f: f[0] / f[1])

    def decode(data: bytes) -> np.ndarray:
        width, height, _, _ = jpeg.decode_header(data)
        short = min(width, height)
        factor = next(f for f in factors if short * f[0] / f[1] >= preset.resize)
        rgb = jpeg.decode(
            data, pixel_format=TJPF_RGB, scaling_factor=factor, flags=TJFLAG_STOPONWARNING
        )
        return preset.pixels(Image.fromarray(rgb))

    return decode


def hostile_corpus(good: bytes) -> dict[str, bytes]:
    """Inputs a decoder must refuse or decode correctly."""

    def encoded(image: Image.Image, **kwargs: object) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", **kwargs)
        return buffer.getvalue()

    rotated = Image.open(io.BytesIO(good))
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    huge = bytearray(good)
    marker = huge.find(b"\xff\xc0")
    if marker > 0:  # baseline SOF0: height and width follow the precision byte
        huge[marker + 5 : marker + 9] = (60000).to_bytes(2, "big") * 2
    return {
        "truncated at half": good[: len(good) // 2],
        "corrupt middle": good[:2000] + bytes(len(good) // 3) + good[2000 + len(good) // 3 :],
        "declares 60000x60000": bytes(huge),
        "CMYK": encoded(Image.new("CMYK", (640, 480), (0, 200, 200, 20))),
        "EXIF-rotated": encoded(rotated.convert("RGB"), exif=exif),
        "progressive": encoded(rotated.convert("RGB"), progressive=True),
        "grayscale": encoded(rotated.convert("L")),
    }


def timed(
    decoders: dict[str, Decoder], payloads: list[bytes], rounds: int
) -> dict[str, list[float]]:
    """Per-image ms of each decoder, one figure per round, decoders interleaved."""
    times: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(rounds):
        for name, decode in decoders.items():
            start = time.perf_counter()
            for data in payloads:
                decode(data)
            times[name].append((time.perf_counter() - start) / len(payloads) * 1000.0)
    return times


def behaviour(decode: Decoder, data: bytes, reference: np.ndarray | None) -> str:
    try:
        out = decode(data)
    except ImageRejected as exc:
        return f"refused ({exc.reason})"
    except Exception as exc:  # what each library raises is the point of the table
        return f"raised {type(exc).__name__}"
    if reference is not None and out.shape == reference.shape:
        diff = float(np.mean(np.abs(out.astype(np.int16) - reference.astype(np.int16))))
        return f"decoded (mean diff to Pillow {diff:.1f})"
    return f"decoded {out.shape}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224, help="the preset's crop (px)")
    args = parser.parse_args()
    preset = EvalPreset(image_size=args.image_size)
    work = Path(tempfile.mkdtemp(prefix="decode-bench-"))
    payloads = [p.read_bytes() for p in make_images(work, args.images)]
    candidates = {
        "pillow-draft": pillow_decoder(preset),
        "pillow-draft, whole image resized (before)": whole_resize_decoder(preset),
        "pillow-draft, decode only (no crop)": decode_only(preset),
        "simplejpeg": simplejpeg_decoder(preset),
        "pyturbojpeg": turbojpeg_decoder(preset),
    }
    decoders = {name: d for name, d in candidates.items() if d is not None}
    for name in sorted(set(candidates) - set(decoders)):
        print(f"{name}: not installed, skipped")
    times = timed(decoders, payloads, args.rounds)
    base = min(times["pillow-draft"])
    print(f"{args.image_size} px crop (resize {preset.resize}, JPEG draft {preset.draft_size})")
    print("| decoder | ms/image min | ms/image median | x Pillow (min) |")
    print("|---|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {min(values):.2f} | {statistics.median(values):.2f} | "
              f"{base / min(values):.2f} |")  # fmt: skip
    print()
    for timing_only in (
        "pillow-draft, whole image resized (before)",
        "pillow-draft, decode only (no crop)",
    ):
        decoders.pop(timing_only)
    corpus = hostile_corpus(payloads[0])
    print("| input | " + " | ".join(decoders) + " |")
    print("|---|" + "---|" * len(decoders))
    for label, data in corpus.items():
        try:
            reference: np.ndarray | None = decoders["pillow-draft"](data)
        except Exception:
            reference = None
        cells = [behaviour(decode, data, reference) for decode in decoders.values()]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
