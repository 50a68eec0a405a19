"""The photo gate set against a real MLflow server: per-domain refusals and the prior fallback.

Every model is a `ColourNet` whose harmful logit is a weighted sum of the image's mean red,
green and blue (``WEIGHTS``), so each one's ranking on solid-colour images is known exactly:

* gate set: photo harmful red, safe blue; emoji harmful red, safe yellow;
* test split: harmful red, safe blue and purple.

``prior`` (red - green) ranks every gate domain right but ties red with purple on the test split;
``inverted`` loses to it everywhere; ``no_emoji`` (red - blue) ties red with yellow, so it is
worse than the prior on emoji only; ``good`` ranks everything right.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from conf.loader import load_settings
from harmscan.manifest import write_manifest
from harmscan.photogate import FALLBACK_REASON
from harmscan.promotion import GatePolicy
from tests.fixtures.colour_models import register_colour_model
from tests.fixtures.photo_sets import write_photo_set

pytestmark = pytest.mark.slow

RED, BLUE, YELLOW, PURPLE = (220, 30, 30), (30, 30, 220), (220, 220, 30), (220, 30, 220)
WEIGHTS = {
    "prior": (1.0, -1.0, 0.0),
    "inverted": (-1.0, 1.0, 0.0),
    "no_emoji": (1.0, 0.0, -1.0),
    "good": (1.0, -0.5, -0.5),
}
POLICY = GatePolicy(metric="auc", floors={})


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")  # lossless: exact ties
    return buffer.getvalue()


def _gate_set(root: Path) -> Path:
    images = [
        (f"images/{domain}/{label}{i}.png", label, domain, _png(colour))
        for domain, safe in (("photo", BLUE), ("emoji", YELLOW))
        for label, colour in (("harmful", RED), ("safe", safe))
        for i in range(2)
    ]
    return write_photo_set(root, images)


def _dataset(root: Path) -> Path:
    rows = []
    for i, (label, colour) in enumerate(
        [("harmful", RED)] * 3 + [("safe", BLUE)] * 2 + [("safe", PURPLE)] * 2
    ):
        data = _png(colour)
        path = root / "test" / label / f"t{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append(
            {
                "image_id": f"t{i}", "label": label, "domain": "photo", "source_labels": "Test",
                "split": "test", "path": f"test/{label}/t{i}.png", "format": "png",
                "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "width": 40,
                "height": 40, "license": "CC0", "author": "harmscan tests", "original_url": "",
            }
        )  # fmt: skip
    write_manifest(pd.DataFrame(rows), root)
    return root


def _register(tracking_uri: str, name: str, kind: str) -> str:
    return register_colour_model(tracking_uri, name, kind, WEIGHTS[kind])


@pytest.fixture
def world(mlflow_server: str, unique, tmp_path: Path):
    from registry import Registry

    name = unique("gate")
    return (
        Registry(mlflow_server),
        name,
        _gate_set(tmp_path / "gateset"),
        _dataset(tmp_path / "data"),
        {kind: _register(mlflow_server, name, kind) for kind in WEIGHTS},
    )


def test_prior_serves_until_a_candidate_passes_the_gate(world) -> None:
    from registry import CHAMPION
    from stack.demo_checks import champion_line
    from tasks.photogate import promote_prior_if_needed
    from tasks.promotion import promote_candidate

    registry, name, gate_set, dataset, v = world

    def gate(version: str):
        return promote_candidate(registry, name, version, dataset, POLICY, gate_set=gate_set)

    # No champion; the only candidate of the run is worse than the prior on the gate set.
    refused = gate(v["inverted"])
    assert not refused.promoted
    assert refused.refused_by_prior
    assert f"worst-domain auc 0.0000 worse than prior v{v['prior']} 1.0000" in refused.reason
    assert registry.alias_version(name, CHAMPION) is None
    # The evidence as a picture on the candidate's run: its curves beside the prior's.
    run_id = registry.model_version(name, v["inverted"]).run_id
    pictures = {a.path for a in registry.client.list_artifacts(run_id, "promotion")}
    assert pictures == {"promotion/gate_set_roc_by_domain.png"}
    fallback = promote_prior_if_needed(registry, name, [refused])
    assert fallback is not None
    assert fallback.candidate_version == v["prior"]
    assert registry.alias_version(name, CHAMPION) == v["prior"]
    tags = registry.model_version(name, v["prior"]).tags
    assert tags["promotion_decision"] == "fallback"
    assert tags["promotion_reason"].startswith(FALLBACK_REASON)
    assert f"v{v['inverted']}: " in tags["promotion_reason"]
    assert promote_prior_if_needed(registry, name, [refused]) is None  # a champion serves now
    lines: list[str] = []
    settings = load_settings("ci", [f"mlflow.tracking_uri={registry.tracking_uri}",
                                    f"mlflow.registered_model={name}"], env={})  # fmt: skip
    assert champion_line(settings, lines.append) == v["prior"]
    assert lines[-1] == (
        f"      champion v{v['prior']} is the untrained prior (recipe=prior): {FALLBACK_REASON}"
    )

    # Beats the prior on the test split, but its worst domain (emoji) is worse than the prior's.
    no_emoji = gate(v["no_emoji"])
    assert not no_emoji.promoted
    assert no_emoji.candidate_value == pytest.approx(1.0)  # test split: it did beat the prior
    assert no_emoji.champion_value == pytest.approx(0.75)
    assert f"worst-domain auc 0.5000 worse than prior v{v['prior']} 1.0000" in no_emoji.reason
    assert "photo auc" not in no_emoji.reason
    assert registry.alias_version(name, CHAMPION) == v["prior"]

    # Passes everywhere: replaces the prior like any champion.
    good = gate(v["good"])
    assert good.promoted, good.reason
    assert registry.alias_version(name, CHAMPION) == v["good"]
    assert registry.model_version(name, v["prior"]).tags["superseded_by"] == v["good"]


def test_cli_promote_applies_the_photo_gate_unless_forced(world) -> None:
    from typer.testing import CliRunner

    import cli.app as cli
    from registry import CHAMPION

    registry, name, gate_set, _, v = world
    if "promote" not in {c.name for c in cli.app.registered_commands}:
        cli._register_areas()
    base = ["--profile", "ci", "--set", f"mlflow.tracking_uri={registry.tracking_uri}"]
    base += ["--set", f"mlflow.registered_model={name}", "--set", f"mlflow.gate_set={gate_set}"]
    runner = CliRunner()

    out = runner.invoke(cli.app, [*base, "promote", v["no_emoji"]])
    assert out.exit_code == 1, out.output
    # the minutes of scoring are announced before they start
    assert (
        f"photo gate: scoring v{v['no_emoji']}, the champion and the untrained prior"
        in (out.output.split("NOT promoted")[0])
    )
    assert "NOT promoted" in out.output
    assert "worst-domain auc 0.5000 worse than prior" in out.output
    assert "use --force" in out.output
    # nothing was champion and the candidate lost to the prior: the prior serves
    assert registry.alias_version(name, CHAMPION) == v["prior"]
    assert registry.model_version(name, v["no_emoji"]).tags["promotion_decision"] == "rejected"

    out = runner.invoke(cli.app, [*base, "promote", v["good"], "--reason", "drill"])
    assert out.exit_code == 0, out.output
    assert registry.alias_version(name, CHAMPION) == v["good"]
    assert (
        "gate set: not worse than"
        in registry.model_version(name, v["good"]).tags["promotion_reason"]
    )

    out = runner.invoke(cli.app, [*base, "promote", v["inverted"], "--force"])
    assert out.exit_code == 0, out.output
    assert "photo gate: scoring" not in out.output
    assert "bypassing the photo gate" in out.output
    assert registry.alias_version(name, CHAMPION) == v["inverted"]

    # promoting the champion again changes nothing, and does not break the way back
    again = runner.invoke(cli.app, [*base, "promote", v["inverted"], "--force"])
    assert again.exit_code == 0, again.output
    assert "is champion already; nothing changed" in again.output

    out = runner.invoke(cli.app, [*base, "promote", "--rollback", "--reason", "bad"])
    assert out.exit_code == 0, out.output
    assert "bypassing the photo gate (" in out.output
    assert registry.alias_version(name, CHAMPION) == v["good"]
    restored = registry.model_version(name, v["good"]).tags
    assert "gate set: not worse than" in restored["promotion_reason"]  # its record is kept
    assert restored["restored_by_rollback"] == f"from v{v['inverted']}: bad"
    assert (
        registry.model_version(name, v["inverted"])
        .tags["rolled_back"]
        .startswith(f"to v{v['good']}")
    )
    # a second rollback goes further back, not to the version just rolled back
    out = runner.invoke(cli.app, [*base, "promote", "--rollback"])
    assert out.exit_code == 0, out.output
    assert registry.alias_version(name, CHAMPION) == v["prior"]
    out = runner.invoke(cli.app, [*base, "promote", "--rollback"])
    assert out.exit_code == 2, out.output
    assert "first champion recorded" in out.output
    assert registry.alias_version(name, CHAMPION) == v["prior"]


def test_a_prior_trained_later_by_hand_does_not_replace_the_reference(world, mlflow_server) -> None:
    from tasks.recipes import REFERENCE_TAG, prior_version

    registry, name, _, _, v = world
    assert prior_version(registry, name) == v["prior"]  # the first recipe=prior version
    later = _register(mlflow_server, name, "prior")  # e.g. --set train.recipe=prior at 224 px
    assert int(later) > int(v["prior"])
    assert prior_version(registry, name) == v["prior"]
    registry.set_version_tags(name, later, {REFERENCE_TAG: "true"})  # the one retrain registered
    assert prior_version(registry, name) == later
