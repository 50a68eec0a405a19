"""The one preprocessing of harmscan: training, evaluation and serving all go through here.

Shaped after torchvision's ``references/classification/presets.py``: one keyword-only preset for
training and one for evaluation. Both end in the same `normalize`, so the model never sees at
serving time a normalization it was not trained with (the original work trained without it).
`EvalPreset.array` needs no torch, so the ONNX serving path stays light; `EvalPreset.__call__`
wraps it into a tensor for training-time evaluation. A served graph may take the crop's pixels as
they are (uint8 HWC) and normalise inside itself (`harmscan.onnx_export`): a preset with
``normalize_in_model`` then stops at `EvalPreset.pixels` — same crop, same numbers, one float pass
fewer in the consumer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from harmscan.bundle import ServingSpec
from harmscan.imageio import decode_image
from harmscan.imagepolicy import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def default_resize(image_size: int) -> int:
    """torchvision's convention: resize to 256 before a 224 centre crop, scaled to other sizes."""
    return round(image_size * 256 / 224)


def normalize(
    rgb: np.ndarray,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> np.ndarray:
    """HWC uint8 RGB -> CHW float32, scaled to [0, 1] then standardised per channel."""
    array = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    array -= np.asarray(mean, dtype=np.float32)
    array /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


@dataclass(frozen=True, kw_only=True)
class EvalPreset:
    """Deterministic preprocessing: shorter side to ``resize_size``, centre crop, normalize."""

    image_size: int = 224
    resize_size: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    normalize_in_model: bool = False

    @property
    def resize(self) -> int:
        """The shorter-side size before cropping."""
        return self.resize_size or default_resize(self.image_size)

    @property
    def draft_size(self) -> tuple[int, int]:
        """The smallest JPEG draft size that still leaves both sides at least `resize`."""
        return (self.resize, self.resize)

    def decode(
        self,
        data: bytes,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Image.Image:
        """Decode untrusted bytes on the fast path (JPEG draft mode at this preset's size)."""
        return decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes, draft=self.draft_size)

    def crop(self, image: Image.Image) -> Image.Image:
        """Resize the shorter side to `resize` and take the centre ``image_size`` square.

        Only the square is resampled: the resize reads the source box that maps onto it (the
        same bilinear filter at the same scale), instead of resizing the whole image and
        cutting the square out (0.4-0.6x the time of that; within 2 grey levels of it, where a
        tap's bounds round the other way).
        """
        width, height = image.size
        scale = self.resize / min(width, height)
        new_w, new_h = (
            max(self.resize, round(width * scale)),
            max(self.resize, round(height * scale)),
        )
        left = (new_w - self.image_size) // 2
        top = (new_h - self.image_size) // 2
        x_scale, y_scale = width / new_w, height / new_h
        box = (
            left * x_scale,
            top * y_scale,
            (left + self.image_size) * x_scale,
            (top + self.image_size) * y_scale,
        )
        size = (self.image_size, self.image_size)
        return image.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=None)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """The centre crop of one image as HWC uint8 RGB (what `normalize` then standardises)."""
        return np.asarray(self.crop(image if image.mode == "RGB" else image.convert("RGB")))

    def array(self, image: Image.Image) -> np.ndarray:
        """The model input for one RGB image: CHW float32, no torch needed."""
        return normalize(self.pixels(image), self.mean, self.std)

    def model_input(self, image: Image.Image) -> np.ndarray:
        """What the served graph takes: `pixels` if it normalises itself, else `array`."""
        return self.pixels(image) if self.normalize_in_model else self.array(image)

    def batch(self, images: list[Image.Image]) -> np.ndarray:
        """NCHW float32 batch of `array` outputs."""
        return np.stack([self.array(image) for image in images])

    def __call__(self, image: Image.Image) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.array(image))

    def spec_fields(self) -> dict[str, Any]:
        """The fields of a `ServingSpec` that describe this preset."""
        return {
            "image_size": self.image_size,
            "resize_size": self.resize,
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def from_spec(cls, spec: ServingSpec, *, normalize_in_model: bool = False) -> EvalPreset:
        """The preset a model was trained with, from the spec that travels with it.

        Args:
            spec: The model's serving spec.
            normalize_in_model: The served graph takes uint8 pixels and normalises itself.
        """
        return cls(
            image_size=spec.image_size,
            resize_size=spec.resize_size,
            mean=spec.mean,
            std=spec.std,
            normalize_in_model=normalize_in_model,
        )


@dataclass(frozen=True, kw_only=True)
class TrainPreset:
    """Training preprocessing: random resized crop, flip and colour jitter (and, when their
    probabilities are set, grayscale and colour inversion), then `normalize`.

    With ``augment=False`` it is exactly the `EvalPreset` of the same size.
    """

    image_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    augment: bool = True
    crop_scale: tuple[float, float] = (0.35, 1.0)
    hflip_prob: float = 0.5
    jitter: float = 0.2
    grayscale_prob: float = 0.0
    invert_prob: float = 0.0

    @property
    def probe_view_preset(self) -> TrainPreset:
        """The augmentation of the probe's extra views (``train.probe_views``): this preset's
        crop, flip and jitter plus grayscale (monochrome icon families beside colour emoji)
        and colour inversion (light-on-dark against dark-on-light line icons), each 1 in 5."""
        return replace(self, augment=True, grayscale_prob=0.2, invert_prob=0.2)

    @property
    def eval_preset(self) -> EvalPreset:
        """The evaluation preset that matches this one (what serving will use)."""
        return EvalPreset(image_size=self.image_size, mean=self.mean, std=self.std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        import torch
        from torchvision.transforms import v2

        if not self.augment:
            return self.eval_preset(image)
        transform = v2.Compose(
            [
                v2.RandomResizedCrop(self.image_size, scale=self.crop_scale, antialias=True),
                v2.RandomHorizontalFlip(self.hflip_prob),
                v2.ColorJitter(self.jitter, self.jitter, self.jitter),
                *([v2.RandomGrayscale(self.grayscale_prob)] if self.grayscale_prob else []),
                *([v2.RandomInvert(self.invert_prob)] if self.invert_prob else []),
            ]
        )
        augmented = transform(image.convert("RGB"))
        return torch.from_numpy(normalize(np.asarray(augmented), self.mean, self.std))
