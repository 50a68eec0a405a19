"""``harmscan evaluate`` against a real MLflow registry: versions scored on a folder of your own
images, per domain, beside the champion and the untrained prior.

The models are `ColourNet`s with known rankings: ``good`` (red - green/2 - blue/2) ranks red
harmful images above blue and yellow safe ones, and its stored threshold lies between them;
``prior`` (red - blue) ties red with yellow (the emoji); ``inverted`` ranks everything backwards.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.app import _register_areas, app
from tests.fixtures.colour_models import register_colour_model

pytestmark = pytest.mark.slow

RED, BLUE, YELLOW = (220, 30, 30), (30, 30, 220), (220, 220, 30)


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _folder(root: Path) -> Path:
    """2 harmful and 2 safe photos, 1 harmful and 1 safe emoji, and a file that does not decode."""
    files = {"harmful/r1.png": RED, "harmful/r2.png": RED, "harmful/emoji/r3.png": RED,
             "safe/b1.png": BLUE, "safe/b2.png": BLUE, "safe/emoji/y1.png": YELLOW}  # fmt: skip
    for file, colour in files.items():
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        (root / file).write_bytes(_png(colour))
    (root / "harmful" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    return root


def _section(output: str, header: str) -> list[str]:
    """The table lines after a version's header line."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    table = []
    for line in lines[start + 2 :]:
        if not line.startswith("  "):
            break
        table.append(line.split())
    return table


def test_evaluate_scores_versions_per_domain_beside_champion_and_prior(
    mlflow_server: str, unique, tmp_path: Path
) -> None:
    from registry import CHAMPION, Registry

    name = unique("evaluate")
    prior = register_colour_model(mlflow_server, name, "prior", (1.0, 0.0, -1.0))
    # Harmful logits: red 9.1, yellow 4.1, blue -5.6; threshold 0.998 is a logit of 6.2.
    good = register_colour_model(mlflow_server, name, "good", (1.0, -0.5, -0.5), threshold=0.998)
    inverted = register_colour_model(mlflow_server, name, "inverted", (-1.0, 0.5, 0.5))
    Registry(mlflow_server).set_alias(name, CHAMPION, good)
    folder = _folder(tmp_path / "mine")
    _register_areas()
    common = ["--profile", "ci", "--set", f"mlflow.tracking_uri={mlflow_server}",
              "--set", f"mlflow.registered_model={name}", "evaluate", str(folder)]  # fmt: skip

    out = tmp_path / "scores.csv"
    plot = tmp_path / "roc.png"
    result = CliRunner().invoke(
        app, [*common, "--version", inverted, "--scores", str(out), "--plot", str(plot)]
    )

    assert result.exit_code == 0, result.output
    assert "3 harmful, 3 safe (photo 4, emoji 2); 1 left out" in result.output
    assert "left out harmful/broken.png" in result.output
    # Asked version first, then the champion and the prior, each with its own table.
    heads = [line for line in result.output.splitlines() if line.startswith(f"{name} v")]
    assert heads[1].endswith("stored threshold 0.9980")
    assert [h.split(",")[0] for h in heads] == [
        f"{name} v{inverted}",
        f"{name} v{good} (champion)",
        f"{name} v{prior} (the untrained prior)",
    ]
    good_rows = {r[0]: r for r in _section(result.output, f"{name} v{good} ")}
    assert good_rows["all"][:4] == ["all", "3", "3", "1.000"]
    assert good_rows["photo"][:4] == ["photo", "2", "2", "1.000"]
    assert " ".join(good_rows["all"][4:-1]) == "3 of 3 (100.0%) 0 of 3 (0.0%)"
    assert 0.1 < float(good_rows["all"][-1]) < 0.2  # ECE: the yellow emoji scores p 0.98
    assert _section(result.output, f"{name} v{inverted},")[0][3] == "0.000"
    prior_rows = {r[0]: r for r in _section(result.output, f"{name} v{prior} ")}
    assert prior_rows["emoji"][3] == "0.500"  # red and yellow tie under red - green
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 6
    mine = [r for r in rows if r["version"] == good and r["file"] == "harmful/emoji/r3.png"]
    assert mine[0]["domain"] == "emoji"
    assert mine[0]["role"] == "champion"
    assert mine[0]["flagged"] == "1"


def test_evaluate_names_what_it_cannot_score(mlflow_server: str, unique, tmp_path: Path) -> None:
    name = unique("evaluate")
    register_colour_model(mlflow_server, name, "good", (1.0, -0.5, -0.5))
    folder = _folder(tmp_path / "mine")
    _register_areas()
    common = ["--profile", "ci", "--set", f"mlflow.tracking_uri={mlflow_server}",
              "--set", f"mlflow.registered_model={name}", "evaluate"]  # fmt: skip

    no_champion = CliRunner().invoke(app, [*common, str(folder)])
    assert no_champion.exit_code == 2
    assert "has no champion; name a version with --version" in no_champion.output
    missing = CliRunner().invoke(app, [*common, str(folder), "--version", "99"])
    assert missing.exit_code == 2
    assert "has no version 99" in missing.output
    unsorted = CliRunner().invoke(app, [*common, str(tmp_path)])
    assert unsorted.exit_code == 2
    assert "nor harmful/ and safe/ subfolders" in unsorted.output


def test_evaluate_checks_its_outputs_first_and_scores_a_version_once_however_it_is_written(
    mlflow_server: str, unique, tmp_path: Path
) -> None:
    from registry import CHAMPION, Registry

    name = unique("evaluate")
    good = register_colour_model(mlflow_server, name, "good", (1.0, -0.5, -0.5))
    Registry(mlflow_server).set_alias(name, CHAMPION, good)
    folder = _folder(tmp_path / "mine")
    a_file = tmp_path / "taken"
    a_file.write_text("a file where a folder should be")
    _register_areas()
    common = ["--profile", "ci", "--set", f"mlflow.tracking_uri={mlflow_server}",
              "--set", f"mlflow.registered_model={name}", "evaluate", str(folder)]  # fmt: skip

    for option, value, message in [
        ("--plot", tmp_path / "roc.txt", "it writes a .png file; name it *.png"),
        ("--scores", tmp_path, "is a folder; name a .csv file in it"),
        ("--scores", a_file / "out.csv", "cannot make its folder"),
    ]:
        refused = CliRunner().invoke(app, [*common, option, str(value)])
        assert refused.exit_code == 2, refused.output
        assert message in refused.output
        assert "scoring" not in refused.output  # refused before any model was scored
    only_safe = tmp_path / "only-safe"
    (only_safe / "safe").mkdir(parents=True)
    (only_safe / "safe" / "b.png").write_bytes(_png(BLUE))
    one_label = [*common[:-1], str(only_safe), "--plot", str(tmp_path / "one.png")]
    refused = CliRunner().invoke(app, one_label)
    assert refused.exit_code == 2, refused.output
    assert "need harmful and safe images" in " ".join(refused.output.split())
    assert "scoring" not in refused.output

    padded = CliRunner().invoke(
        app, [*common, "--version", f"0{good}", "--plot", str(tmp_path / "roc")]
    )
    assert padded.exit_code == 0, padded.output
    heads = [line for line in padded.output.splitlines() if line.startswith(f"{name} v")]
    assert [h.split(",")[0] for h in heads] == [f"{name} v{good} (champion)"]
    assert f"stored threshold): {tmp_path / 'roc.png'}" in padded.output
    assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
