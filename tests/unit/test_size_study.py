"""The size study's premise: its rows are the main job's default model, only the size changed."""

from __future__ import annotations

from bench.size_study import default_base, draft_decode
from conf.loader import load_settings
from conf.settings import TrainSettings


def test_the_study_fits_the_main_jobs_default_settings_at_each_size() -> None:
    default = load_settings("local", env={}).train
    for size in (160, 192, 224):
        cfg = TrainSettings(**default_base(size))
        assert cfg.image_size == size
        same = ("recipe", "head", "gate_operating_point", "gate_photo_mix", "extra_train_sets",
                "probe_c", "calibration_photos", "gate_photo_threshold_on")  # fmt: skip
        assert {k: getattr(cfg, k) for k in same} == {k: getattr(default, k) for k in same}


def test_draft_mode_decodes_a_1024x768_jpeg_at_a_quarter_up_to_168_px() -> None:
    assert draft_decode(160) == draft_decode(168) == "256x192"
    assert draft_decode(176) == draft_decode(192) == draft_decode(224) == "512x384"
