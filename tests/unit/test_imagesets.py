"""Your own images to evaluate on: a plain folder sorted by label, or a verified photo set."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmscan.gateset import PhotoSetError
from harmscan.imagepolicy import IMAGE_SUFFIXES
from harmscan.imagesets import ImageSetError, freeze, open_image_set
from harmscan.metrics import DomainCounts, domain_counts
from tests.fixtures.photo_sets import write_photo_set


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_a_folder_sorted_by_label_is_read_with_domains_and_bad_files_left_out(tmp_path):
    _write(tmp_path / "harmful" / "gun.png", _png((200, 0, 0)))
    _write(tmp_path / "harmful" / "emoji" / "bomb.png", _png((10, 10, 10)))
    _write(tmp_path / "harmful" / "cut.jpg", b"\xff\xd8\xff\xe0 not a whole jpeg")
    _write(tmp_path / "safe" / "a" / "dog.PNG", _png((0, 0, 200)))
    _write(tmp_path / "safe" / "notes.txt", b"not an image suffix: not read")

    images = open_image_set(tmp_path, domain="photo")

    manifest = images.photos.manifest
    assert images.kind == "folder"
    assert list(manifest["file"]) == ["harmful/emoji/bomb.png", "harmful/gun.png", "safe/a/dog.PNG"]
    assert list(manifest["domain"]) == ["emoji", "photo", "photo"]  # "a" is no domain
    assert images.photos.targets == [1, 1, 0]
    assert list(images.skipped) == ["harmful/cut.jpg"]
    assert images.skipped["harmful/cut.jpg"].startswith(("truncated", "corrupt", "not_an_image"))
    assert "2 harmful, 1 safe (photo 2, emoji 1); 1 left out" in images.describe()
    assert images.notes == [
        "1 file(s) without an image suffix are not read: safe/notes.txt (image suffixes: "
        + ", ".join(sorted(IMAGE_SUFFIXES))
        + ")"
    ]


def test_a_folder_version_names_its_images(tmp_path):
    _write(tmp_path / "harmful" / "a.png", _png((200, 0, 0)))
    _write(tmp_path / "safe" / "b.png", _png((0, 0, 200)))
    first = open_image_set(tmp_path).photos.version
    assert open_image_set(tmp_path).photos.version == first
    _write(tmp_path / "safe" / "b.png", _png((0, 0, 201)))
    assert open_image_set(tmp_path).photos.version != first
    assert open_image_set(tmp_path, domain="emoji").photos.version != first


def test_a_photo_set_is_verified_not_walked(tmp_path):
    root = write_photo_set(tmp_path / "set", [("images/harmful/a.png", "harmful", "emoji",
                                              _png((200, 0, 0)))])  # fmt: skip
    images = open_image_set(root)
    assert images.kind == "photo set"
    assert list(images.photos.manifest["domain"]) == ["emoji"]
    (root / "images" / "harmful" / "a.png").write_bytes(_png((0, 0, 0)))
    with pytest.raises(PhotoSetError, match="differ from their sha256"):
        open_image_set(root)


@pytest.mark.parametrize(
    ("layout", "domain", "message"),
    [
        ({}, "photo", "neither a manifest.csv"),
        ({"safe/x.txt": b"text"}, "photo", "no image that decodes"),
        ({"harmfull/x.png": None}, "photo", r"did you mean harmful/ for harmfull/\?"),
        ({"safe/x.png": None}, "drawing",
         "unknown domain 'drawing'; valid: photo, illustration, emoji"),
    ],
)  # fmt: skip
def test_what_is_not_an_image_set_is_named(tmp_path, layout, domain, message):
    for file, data in layout.items():
        _write(tmp_path / file, data if data is not None else _png((1, 2, 3)))
    with pytest.raises(ImageSetError, match=message):
        open_image_set(tmp_path, domain=domain)


def test_domain_counts_are_checkable_by_hand():
    y = [1, 1, 0, 0, 0, 1]
    p = [0.9, 0.4, 0.6, 0.1, 0.2, 0.8]
    d = ["photo", "photo", "photo", "photo", "emoji", "emoji"]
    rows = {r.domain: r for r in domain_counts(y, p, d, threshold=0.5)}
    assert list(rows) == ["all", "photo", "emoji"]  # illustration: none, so no row
    # ECE, 10 bins: 0.9 (harmful) |1 - 0.9|, 0.4 (harmful) |1 - 0.4|, 0.6 (safe) 0.6, 0.1 (safe)
    # 0.1, each bin one image of four: (0.1 + 0.6 + 0.6 + 0.1) / 4 = 0.35.
    assert rows["photo"] == DomainCounts("photo", 2, 2, 0.75, caught=1, flagged=1,
                                         ece=pytest.approx(0.35))  # fmt: skip
    assert rows["all"].caught == 2
    assert rows["all"].flagged == 1
    one_label = domain_counts([1], [0.3], ["emoji"], threshold=0.5)[1]
    assert math.isnan(one_label.auc)
    assert (one_label.harmful, one_label.caught) == (1, 0)


def test_a_frozen_folder_loads_as_the_photo_set_of_the_same_version(tmp_path):
    _write(tmp_path / "harmful" / "emoji" / "a.png", _png((200, 0, 0)))
    _write(tmp_path / "safe" / "b.png", _png((0, 0, 200)))
    folder = open_image_set(tmp_path)
    assert freeze(folder) == tmp_path
    frozen = open_image_set(tmp_path)
    assert frozen.kind == "photo set"
    assert frozen.photos.version == folder.photos.version
    assert frozen.photos.manifest.equals(folder.photos.manifest)
    with pytest.raises(ImageSetError, match="is a photo set already"):
        freeze(frozen)
    _write(tmp_path / "safe" / "b.png", _png((0, 0, 199)))  # edited after freezing: refused
    with pytest.raises(PhotoSetError, match="differ from their sha256"):
        open_image_set(tmp_path)


def test_the_imageset_command_describes_and_freezes(tmp_path):
    from typer.testing import CliRunner

    from cli.app import _register_areas, app

    _write(tmp_path / "harmful" / "a.png", _png((200, 0, 0)))
    _write(tmp_path / "safe" / "b.png", _png((0, 0, 200)))
    _register_areas()
    runner = CliRunner()
    shown = runner.invoke(app, ["--profile", "ci", "imageset", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "1 harmful, 1 safe (photo 2)" in shown.output
    assert not (tmp_path / "manifest.csv").exists()
    frozen = runner.invoke(app, ["--profile", "ci", "imageset", str(tmp_path), "--freeze"])
    assert frozen.exit_code == 0, frozen.output
    assert f"--set mlflow.gate_set={tmp_path}" in frozen.output
    assert (tmp_path / "VERSION").read_text().strip() in shown.output
    again = runner.invoke(app, ["--profile", "ci", "imageset", str(tmp_path), "--freeze"])
    assert again.exit_code == 2
    assert "is a photo set already" in again.output


def test_the_roc_picture_has_a_panel_per_domain_with_both_labels(tmp_path):
    from harmscan.modelcard import plot_roc_by_domain

    y = np.array([1, 0, 1, 0, 1])
    domains = np.array(["photo", "photo", "emoji", "emoji", "illustration"])  # one label only
    curves = {
        "v2 (champion)": (y, np.array([0.9, 0.1, 0.8, 0.3, 0.7]), domains, 0.5),
        "v1 (the untrained prior)": (y, np.array([0.4, 0.6, 0.9, 0.2, 0.1]), domains, 0.5),
    }
    path = plot_roc_by_domain(curves, tmp_path / "roc.png", "title")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] == 3 * 400  # all, photo, emoji: 4 in at 100 dpi each


def test_a_file_name_that_is_not_utf8_is_left_out_and_the_rest_read(tmp_path):
    _write(tmp_path / "safe" / "dog.png", _png((0, 0, 200)))
    (tmp_path / "harmful").mkdir()
    with open(bytes(tmp_path / "harmful") + b"/caf\xe9.png", "wb") as handle:  # a Latin-1 name
        handle.write(_png((200, 0, 0)))
    _write(tmp_path / "harmful" / "gun.png", _png((201, 0, 0)))

    images = open_image_set(tmp_path)

    assert list(images.photos.manifest["file"]) == ["harmful/gun.png", "safe/dog.png"]
    assert images.skipped == {"harmful/caf\\xe9.png": "its name is not valid UTF-8: rename it"}


def test_symlinked_subfolders_are_followed_once_and_hidden_files_not_read(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    _write(elsewhere / "knife.png", _png((200, 0, 0)))
    root = tmp_path / "mine"
    _write(root / "harmful" / "gun.png", _png((201, 0, 0)))
    (root / "harmful" / "linked").symlink_to(elsewhere)
    (root / "harmful" / "loop").symlink_to(root / "harmful")  # walked once, not for ever
    _write(root / "safe" / "dog.png", _png((0, 0, 200)))
    _write(root / "safe" / "._dog.png", b"macOS resource fork, not an image")

    images = open_image_set(root)

    assert list(images.photos.manifest["file"]) == [
        "harmful/gun.png",
        "harmful/linked/knife.png",
        "safe/dog.png",
    ]
    assert images.skipped == {}


def test_domain_folders_match_in_any_case_and_a_near_miss_is_a_note(tmp_path):
    _write(tmp_path / "harmful" / "Emoji" / "bomb.png", _png((200, 0, 0)))
    _write(tmp_path / "harmful" / "emojis" / "gun.png", _png((201, 0, 0)))
    _write(tmp_path / "safe" / "pets" / "dog.png", _png((0, 0, 200)))

    images = open_image_set(tmp_path)

    assert list(images.photos.manifest["domain"]) == ["emoji", "photo", "photo"]
    assert images.notes == [
        "subfolder emojis/ is not a domain folder (did you mean emoji/?): its images count as "
        "photo; domain folders: photo, illustration, emoji"
    ]  # "pets" looks like no domain: no note


def test_the_same_image_under_both_labels_is_a_note(tmp_path):
    _write(tmp_path / "harmful" / "a.png", _png((200, 0, 0)))
    _write(tmp_path / "safe" / "a_copy.png", _png((200, 0, 0)))
    _write(tmp_path / "safe" / "b.png", _png((0, 0, 200)))
    _write(tmp_path / "safe" / "b2.png", _png((0, 0, 200)))

    notes = open_image_set(tmp_path).notes

    assert notes == [
        "the same image is under both labels: harmful/a.png, safe/a_copy.png",
        "1 image(s) are copies of another under the same label (counted each)",
    ]


def test_a_frozen_folder_says_what_it_does_not_score_and_how_to_freeze_it_again(tmp_path):
    _write(tmp_path / "harmful" / "a.png", _png((200, 0, 0)))
    _write(tmp_path / "safe" / "b.png", _png((0, 0, 200)))
    frozen = open_image_set(tmp_path)
    freeze(frozen)
    _write(tmp_path / "safe" / "new.png", _png((0, 0, 150)))

    images = open_image_set(tmp_path)

    assert images.kind == "photo set"
    assert len(images.photos.manifest) == 2
    advice = (
        f"delete its manifest.csv and VERSION, then run `harmscan imageset {tmp_path} --freeze`"
    )
    assert images.notes == [
        f"1 image file(s) are not in its manifest.csv and are not scored: safe/new.png; to score "
        f"them, {advice}"
    ]
    with pytest.raises(ImageSetError, match=r"delete its manifest\.csv and VERSION and run"):
        freeze(images)
    with pytest.raises(ImageSetError, match="unknown domain 'emojis'"):
        open_image_set(tmp_path, domain="emojis")  # checked for a photo set too
    _write(tmp_path / "safe" / "b.png", _png((0, 0, 199)))
    with pytest.raises(PhotoSetError) as changed:
        open_image_set(tmp_path)
    assert "differ from their sha256" in str(changed.value)
    assert str(changed.value).endswith(f"; if you changed its images on purpose, {advice}")
    (tmp_path / "VERSION").unlink()  # a freeze that did not finish
    with pytest.raises(ImageSetError, match=r"has a manifest\.csv but no VERSION: a freeze that"):
        open_image_set(tmp_path)


def test_label_folders_in_another_case_are_named(tmp_path):
    _write(tmp_path / "Harmful" / "a.png", _png((200, 0, 0)))
    _write(tmp_path / "Safe" / "b.png", _png((0, 0, 200)))
    with pytest.raises(ImageSetError, match=r"\(the names are lower case: rename Harmful, Safe\)"):
        open_image_set(tmp_path)
    with pytest.raises(ImageSetError, match="a file, not a folder"):
        open_image_set(tmp_path / "Safe" / "b.png")


def test_a_folder_beside_the_labels_and_a_missing_label_are_noted(tmp_path):
    _write(tmp_path / "safe" / "a.png", _png((1, 2, 3)))
    _write(tmp_path / "harmfull" / "b.png", _png((200, 0, 0)))
    _write(tmp_path / "extra" / "c.png", _png((0, 200, 0)))
    notes = open_image_set(tmp_path).notes
    assert (
        "folder harmfull/ is not read (did you mean harmful/?): only harmful/ and safe/ hold "
        "the images" in notes
    )
    assert "folder extra/ is not read: only harmful/ and safe/ hold the images" in notes
    assert any(n.startswith("no harmful image: ROC AUC needs harmful and safe") for n in notes)
