"""The demo says which version is champion and whether it is the untrained prior; the main job
(local profile) gates on the photo set."""

from __future__ import annotations

from conf.loader import load_settings
from stack.demo import demo_settings
from stack.demo_checks import describe_champion, gate_summary


def test_describe_champion_names_the_prior_and_why() -> None:
    prior = {
        "recipe": "prior",
        "promotion_decision": "fallback",
        "promotion_reason": "no candidate beat the untrained prior on the gate set (v3: ...)",
    }
    assert describe_champion(prior) == (
        "the untrained prior (recipe=prior): no candidate beat the untrained prior on the gate set"
    )
    assert describe_champion({"recipe": "prior"}).endswith("set by hand")
    trained = {"recipe": "probe+prior", "promotion_decision": "promoted"}
    assert describe_champion(trained) == (
        "a trained model (recipe=probe+prior, not the prior; promoted)"
    )


def test_the_main_job_gates_on_the_photo_set() -> None:
    settings = load_settings("local", env={})
    assert settings.mlflow.gate_set == "gateset"
    assert demo_settings(settings, "mirror").mlflow.gate_set == "gateset"
    assert load_settings("ci", env={}).mlflow.gate_set is None  # tests turn it on themselves


def test_both_demo_modes_train_at_the_default_size_and_full_trains_longer() -> None:
    settings = load_settings("local", env={})
    fast, full = demo_settings(settings, "mirror"), demo_settings(settings, "mirror", fast=False)
    assert settings.train.image_size == 160  # docs/image-size.md
    assert fast.train.image_size == full.train.image_size == 160
    assert (fast.train.epochs, full.train.epochs) == (3, settings.train.epochs)
    assert full.train.epochs > fast.train.epochs
    bigger = load_settings("local", ["train.image_size=224"], env={})
    assert demo_settings(bigger, "mirror").train.image_size == 160  # the fast cap stays
    assert demo_settings(bigger, "mirror", fast=False).train.image_size == 224


def test_the_gate_set_line_shows_every_domain_scored_and_the_operating_point() -> None:
    metrics = {"gate_all_count": 367.0, "gate_all_auc": 0.95371, "gate_all_recall": 0.8333,
               "gate_all_safe_flagged": 0.0523, "gate_photo_count": 92.0, "gate_photo_auc": 0.9798,
               "gate_emoji_count": 275.0, "gate_emoji_auc": 0.9513,
               "gate_illustration_count": 0.0, "gate_illustration_auc": 0.0,
               "test_auc": 0.8665}  # fmt: skip
    assert gate_summary(metrics) == (
        "ROC AUC all 0.954 (photo 0.980, emoji 0.951); at the stored threshold it catches 83% "
        "of the harmful images and flags 5.2% of the safe ones"
    )
    assert gate_summary({"test_auc": 0.9}) is None  # no gate set configured
    assert gate_summary({**metrics, "gate_all_count": 0.0}) is None
