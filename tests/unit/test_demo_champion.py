"""The demo says which version is champion and whether it is the untrained prior; the main job
(local profile) gates on the photo set."""

from __future__ import annotations

from conf.loader import load_settings
from stack.demo import demo_settings
from stack.demo_checks import describe_champion


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
