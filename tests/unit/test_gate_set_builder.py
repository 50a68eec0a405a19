"""The gate-set builder's emoji table, labelling rules and file naming, and the committed sets."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pandas as pd
import pytest

from harmscan.gateset import REPO_ROOT, load_photo_set

SCRIPTS = REPO_ROOT / "scripts"


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def emoji() -> ModuleType:
    return _load("gate_emoji")


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return _load("build_gate_set")


def test_table_rows_parse_with_the_optional_tones_column(emoji: ModuleType) -> None:
    rows = """
    1f52a | kitchen knife | knife
    1f476 | baby          | baby  | tones
    """
    knife, baby = emoji._emoji("harmful", rows)
    assert (knife.code, knife.name, knife.label, knife.subject) == (
        "1f52a",
        "kitchen knife",
        "harmful",
        "knife",
    )
    assert not knife.skin_tones
    assert baby.skin_tones
    assert knife.char == "\U0001f52a"
    with pytest.raises(ValueError, match=r"fourth column can only be 'tones'"):
        emoji._emoji("safe", "1f476 | baby | baby | toned")


@pytest.mark.parametrize(
    ("code", "label", "match"),
    [
        ("1f52a", "weapon", r"label 'weapon'; valid: harmful, safe"),
        ("1F52A", "harmful", r"not lowercase hex code points"),
        ("1f52a-zz", "harmful", r"not lowercase hex code points"),
        ("xyzw", "harmful", r"invalid literal"),
    ],
)
def test_bad_rows_are_refused(emoji: ModuleType, code: str, label: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        emoji.Emoji(code, "kitchen knife", label, "knife")


@pytest.mark.parametrize(
    ("vendor", "code", "name", "tones", "path"),
    [
        ("noto", "1f5e1-fe0f", "dagger", False, "img/google/64/1f5e1-fe0f.png"),
        ("twemoji", "1f52a", "kitchen knife", False, "img/twitter/64/1f52a.png"),
        ("fluent-color", "1f52a", "kitchen knife", False, "icons/modern/kitchen-knife.svg"),
        ("fluent-flat", "1f476", "baby", True, "icons/flat/baby-default.svg"),
        (
            "fluent-high-contrast",
            "1f60d",
            "smiling face with heart-eyes",
            False,
            "icons/high-contrast/smiling-face-with-heart-eyes.svg",
        ),
    ],
)
def test_vendor_paths(
    emoji: ModuleType, vendor: str, code: str, name: str, tones: bool, path: str
) -> None:
    item = emoji.Emoji(code, name, "safe", name, skin_tones=tones)
    assert emoji.VENDORS[vendor].path(item) == path


def test_labelling_rules(emoji: ModuleType) -> None:
    by_code = {e.code: e for e in emoji.EMOJI}
    harmful = {e.name for e in emoji.EMOJI if e.label == "harmful"}
    assert {"kitchen knife", "dagger", "bomb", "collision", "drop of blood", "axe"} <= harmful
    assert by_code["1f680"].label == "safe"  # a rocket is not a missile
    assert by_code["1f528"].label == "safe"  # a hammer is a tool
    # the water pistol, cutlery, fire and the shield are in neither label
    for code in ("1f52b", "1f374", "1f525", "1f6e1-fe0f"):
        assert code in emoji.EXCLUDED
        assert code not in by_code


def test_vendor_items_skip_a_vendors_unrecognisable_drawing(emoji: ModuleType) -> None:
    items = emoji.vendor_items(("fluent-flat", "fluent-high-contrast"))
    flat = [e.code for src, path, e in items if "/flat/" in path]
    contrast = [e.code for src, path, e in items if "/high-contrast/" in path]
    assert "1fa78" in flat
    assert "1fa78" not in contrast
    assert len(flat) == len(emoji.EMOJI) == len(contrast) + 1
    assert {src for src, _, _ in items} == {"fluentui-emoji"}


def test_vendor_items_refuse_unknown_vendors_and_double_listing(
    emoji: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r"unknown emoji vendors \['apple'\]"):
        emoji.vendor_items(("noto", "apple"))
    knife = emoji.Emoji("1f52b", "pistol", "harmful", "pistol")
    monkeypatch.setattr(emoji, "EMOJI", [*emoji.EMOJI, knife])
    with pytest.raises(ValueError, match=r"listed and excluded \['1f52b'\]"):
        emoji.vendor_items(("noto",))
    monkeypatch.setattr(emoji, "EMOJI", [*emoji.SAFE, *emoji.SAFE[:1]])
    with pytest.raises(ValueError, match=r"listed twice \['1f600'\]"):
        emoji.vendor_items(("noto",))


def test_gate_and_pool_vendors_are_disjoint_packages(emoji: ModuleType) -> None:
    gate = {emoji.VENDORS[v].source for v in emoji.GATE_VENDORS}
    pool = {emoji.VENDORS[v].source for v in emoji.POOL_VENDORS}
    assert not gate & pool
    assert "emoji-datasource-twitter" in pool  # the mirror's vendor never scores a model


@pytest.mark.parametrize(
    ("source", "path", "name"),
    [
        (
            "emoji-datasource-google",
            "img/google/64/1f52a.png",
            "images/harmful/emoji-datasource-google--google_64_1f52a.jpg",
        ),
        (
            "fluentui-emoji",
            "icons/modern/kitchen-knife.svg",
            "images/harmful/fluentui-emoji--modern_kitchen-knife.jpg",
        ),
        (
            "foolbox",
            "foolbox/data/imagenet_13_471.jpg",
            "images/harmful/foolbox--foolbox_data_imagenet_13_471.jpg",
        ),
    ],
)
def test_file_names(builder: ModuleType, source: str, path: str, name: str) -> None:
    assert builder.file_name(builder.Item(source, path, "harmful", "x")) == name


def test_attribution_counts_each_domain(builder: ModuleType) -> None:
    rows = [
        {"source": "foolbox@3.3.4", "label": "harmful", "domain": "photo"},
        {"source": "foolbox@3.3.4", "label": "safe", "domain": "photo"},
        {"source": "fluentui-emoji@1.3.0", "label": "safe", "domain": "emoji"},
    ]
    text = builder.attribution("gateset", rows, "abc")
    assert "1 harmful and 1 safe real photos; 0 harmful and 1 safe emoji" in text
    assert "| fluentui-emoji@1.3.0 | npm | 1 | MIT |" in text
    assert "water pistol" in text


@pytest.mark.parametrize("name", ["gateset", "photopool", "emojipool"])
def test_committed_set_is_what_the_builder_lists(builder: ModuleType, name: str) -> None:
    """Every item of the builder is in the committed manifest with the same row, and no more."""
    frame = load_photo_set(REPO_ROOT / name, verify=False).manifest.set_index("file")
    expected = pd.DataFrame(
        [
            {
                "file": builder.file_name(item),
                "label": item.label,
                "domain": item.domain,
                "subject": item.subject,
                "source": builder.SOURCES[item.source].label,
                "path": item.path,
                "license": builder.SOURCES[item.source].license,
            }
            for item in builder.SETS[name]
        ]
    ).set_index("file")
    assert sorted(frame.index) == sorted(expected.index)
    pd.testing.assert_frame_equal(
        frame.loc[expected.index, list(expected.columns)], expected, check_names=False
    )
