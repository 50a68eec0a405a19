"""Behavioural tests of the main job's trained champion, loaded from the registry as serving does.

The main job's recipe (``probe`` with the prior head: a linear probe on the frozen ImageNet
MobileNetV2, added to the ImageNet prior) is trained by the ``retrain`` flow on the offline
mirror at 160 px (``demo --fast``'s size; at the other e2e test's 64 px the backbone sees too
little for these checks), with the gate set on as in the main job. The champion and the trained
version are then downloaded from the MLflow registry and scored through their ONNX graphs and
the presets that travel with them (`serving.source.ModelSource`), and checked with
`tests.behavioural` (Made-With-ML style):

* minimum functionality: every clear harmful photo of ``gateset/`` scores above every clear safe
  one (threshold-free);
* invariance: a resize, a JPEG re-encode, a horizontal flip or a 90 % crop moves no clear photo's
  harmful probability by more than ``INVARIANCE_TOLERANCE``.

Negative controls show on the same champion that the checks can fail: its outputs read in the
wrong label order (the bug of the project this one replaces) fail minimum functionality, and a
preprocessing that keeps only the left part of the image fails the flip invariance.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmscan.gateset import GATESET_DIR, load_photo_set
from tests.behavioural import (
    Scorer,
    assert_clear_cases_ranked,
    assert_invariant,
    invariance_gaps,
    served_scorer,
)

# The suite's 900 s timeout guards against hangs. On the shared 2-core machine at load 12-20
# each e2e test took 11-15 min or more (the behavioural one 12 min 49 s alone, over 900 s in a
# whole-suite run): they get 30 min.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]

IMAGE_SIZE = 160
# Clear cases of the gate set, chosen by subject (one unmistakable subject: a weapon or war
# machine filling the frame, or an everyday thing with nothing weapon-like) and by size: the short
# side is at least MIN_SIDE, so that halving it keeps the image at about the model's input size
# (the tank destroyer, 120 px, is left out: at half size it is 60 px, not an image a person would
# call the same). The sklearn flower was left out after measuring: the calibrated prior puts it at
# 0.27, next to the threshold, where a corner crop moves it by 0.14 (see docs/testing.md: many safe
# photos swing more than this; these checks guard clear cases, not that weakness).
CLEAR_HARMFUL = (
    "basegun-ml--basegun_ml_warmup.jpg",  # revolver on a table
    "foolbox--foolbox_data_imagenet_13_471.jpg",  # field cannon
    "tuxpaint-stamps-default--military_vehicles_bradley.jpg",  # armoured vehicle, turret gun
    "tuxpaint-stamps-default--military_vehicles_infantry-stryker.jpg",  # vehicle, mounted gun
)
CLEAR_SAFE = (
    "scikit-image--skimage_data_chelsea.jpg",  # cat
    "foolbox--foolbox_data_imagenet_04_949.jpg",  # strawberries
    "opencv-doc--examples_data_orange.jpg",  # orange
    "foolbox--foolbox_data_imagenet_16_251.jpg",  # dalmatian dog
    "opencv-doc--examples_data_butterfly.jpg",  # butterfly on leaves
)
MIN_SIDE = 300
# A perturbation a person would not notice must not move the harmful probability by more than
# the review band's half-width (train.review_band = 0.15, on the same calibrated scale): more
# could carry a confident decision across the whole band. Measured on these photos at 160 px
# (the untrained prior, calibrated): largest gap 0.06 (a flip of the butterfly), so 0.15 leaves
# room for training noise and still fails the broken scorers below by 0.4 or more.
INVARIANCE_TOLERANCE = 0.15


def _clear_cases() -> tuple[list[Image.Image], list[Image.Image]]:
    photos = load_photo_set(GATESET_DIR)  # the verified, versioned set
    rows = {Path(f).name: (photos.root / f, label) for f, label in zip(
        photos.manifest["file"], photos.manifest["label"], strict=True)}  # fmt: skip
    for name in CLEAR_HARMFUL:
        assert rows[name][1] == "harmful", name
    for name in CLEAR_SAFE:
        assert rows[name][1] == "safe", name

    def load(names: tuple[str, ...]) -> list[Image.Image]:
        images = [Image.open(rows[n][0]).convert("RGB") for n in names]
        small = [n for n, im in zip(names, images, strict=True) if min(im.size) < MIN_SIDE]
        assert not small, f"clear cases must be at least {MIN_SIDE} px: {small}"
        return images

    return load(CLEAR_HARMFUL), load(CLEAR_SAFE)


def _check(score: Scorer, harmful: list[Image.Image], safe: list[Image.Image]) -> None:
    assert_clear_cases_ranked(score, harmful, safe)
    assert_invariant(score, [*harmful, *safe], INVARIANCE_TOLERANCE)


def test_trained_champion_passes_the_behavioural_checks(
    mirror_servers, mlflow_server: str, prefect_harness: None, make_source, unique, tmp_path
) -> None:
    from flows.retrain import retrain
    from serving.source import ModelSource

    name = unique("behave")
    source = make_source(
        *mirror_servers,
        f"mlflow.tracking_uri={mlflow_server}",
        f"mlflow.experiment={unique('behave')}",
        f"mlflow.registered_model={name}",
        "mlflow.gate_set=gateset",  # as in the main job: the prior is registered and gates
        "train.calibration_photos=photopool",
        "train.recipe=probe",  # the main job's recipe (conf/default.yaml), set explicitly
        "train.head=prior",
        f"train.image_size={IMAGE_SIZE}",
        "etl.max_per_side=60",
        "train.batch_size=16",
        "train.threads=2",
    )
    started = time.monotonic()
    result = retrain(source=source, models=["mobilenet_v2"])
    trained_s = time.monotonic() - started
    [candidate] = result.trained
    assert candidate.version is not None
    assert result.champion_version is not None

    harmful, safe = _clear_cases()
    models = ModelSource(mlflow_server, name, "champion", "onnx", 2, tmp_path / "models")
    champion = models.load()
    assert champion.version == result.champion_version
    score = served_scorer(champion)
    kind = "the untrained prior" if champion.version == result.prior_version else "trained"
    what = f"champion v{champion.version} ({kind}, retrain {trained_s:.0f}s)"
    _report(what, score, harmful, safe)
    _check(score, harmful, safe)

    # The trained version itself, also when the gate kept the prior as champion.
    if candidate.version != champion.version:
        trained = served_scorer(models.load(candidate.version))
        _report(f"trained v{candidate.version}", trained, harmful, safe)
        _check(trained, harmful, safe)

    # Negative controls: the same checks fail on deliberately broken scoring of this champion.
    with pytest.raises(AssertionError, match="out of order"):
        assert_clear_cases_ranked(lambda ims: 1.0 - score(ims), harmful, safe)  # labels swapped

    def left_part(images: list[Image.Image]) -> np.ndarray:  # a preprocessing that crops badly
        return score([im.crop((0, 0, im.width * 2 // 5, im.height)) for im in images])

    with pytest.raises(AssertionError, match="moved more than"):
        assert_invariant(left_part, [*harmful, *safe], INVARIANCE_TOLERANCE)


def _report(what: str, score: Scorer, harmful: list[Image.Image], safe: list[Image.Image]) -> None:
    gaps = invariance_gaps(score, [*harmful, *safe])
    print(
        f"\n{what}: harmful {np.round(score(harmful), 3).tolist()}, "
        f"safe {np.round(score(safe), 3).tolist()}, "
        f"invariance gaps { {k: round(v, 3) for k, v in gaps.items()} }"
    )
