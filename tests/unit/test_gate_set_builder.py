"""The gate-set builder's emoji table, labelling rules and file naming, and the committed sets."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from PIL import Image

from harmscan.gateset import REPO_ROOT, load_photo_set
from tests.fixtures.browser import require_debian_tool

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


def _builder(name: str) -> ModuleType:
    """A module of the builder's package, imported as the command line does (``scripts/``)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module(f"gateset_build.{name}")


@pytest.fixture(scope="module")
def sets() -> ModuleType:
    return _builder("sets")


@pytest.fixture(scope="module")
def write() -> ModuleType:
    return _builder("write")


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
def test_file_names(sets: ModuleType, write: ModuleType, source: str, path: str, name: str) -> None:
    assert write.file_name(sets.Item(source, path, "harmful", "x")) == name


def test_attribution_counts_each_domain() -> None:
    rows = [
        {"source": "foolbox@3.3.4", "label": "harmful", "domain": "photo"},
        {"source": "foolbox@3.3.4", "label": "safe", "domain": "photo"},
        {"source": "fluentui-emoji@1.3.0", "label": "safe", "domain": "emoji"},
    ]
    text = _builder("attribution").attribution("gateset", rows, "abc")
    assert "1 harmful and 1 safe real photos; 0 harmful and 1 safe emoji" in text
    assert "| fluentui-emoji@1.3.0 | npm | 1 | MIT |" in text
    assert "water pistol" in text


def test_attribution_lists_images_with_a_licence_of_their_own() -> None:
    palapeli = "palapeli-data@4:22.12.3-1"
    rows = [
        {"file": "a.jpg", "subject": "bee", "source": palapeli, "label": "safe",
         "domain": "photo", "license": "public domain, John Severns"},
        {"file": "b.jpg", "subject": "cup", "source": "foolbox@3.3.4", "label": "safe",
         "domain": "photo", "license": "MIT"},
    ]  # fmt: skip
    text = _builder("attribution").attribution("objectpool", rows, "abc")
    assert "- `a.jpg` (bee): public domain, John Severns" in text
    assert "b.jpg" not in text  # the package's own licence: its row in the table says it


@pytest.mark.parametrize(
    "name",
    [
        "gateset",
        "photopool",
        "emojipool",
        "drawpool",
        "objectpool",
        "lifepool",
        "iconpool",
        "glyphpool",
        "colourpool",
        "vendorpool",
        "iconcheck",
    ],
)
def test_committed_set_is_what_the_builder_lists(
    sets: ModuleType, write: ModuleType, name: str
) -> None:
    """Every item of the builder is in the committed manifest with the same row, and no more."""
    sources = _builder("sources").SOURCES
    frame = load_photo_set(REPO_ROOT / name, verify=False).manifest.set_index("file")
    expected = pd.DataFrame(
        [
            {
                "file": write.file_name(item),
                "label": item.label,
                "domain": item.domain,
                "subject": item.subject,
                "source": sources[item.source].label,
                "path": item.path,
                "license": item.license or sources[item.source].license,
            }
            for item in sets.SETS[name]
        ]
    ).set_index("file")
    assert sorted(frame.index) == sorted(expected.index)
    pd.testing.assert_frame_equal(
        frame.loc[expected.index, list(expected.columns)], expected, check_names=False
    )


@pytest.fixture(scope="module")
def icons() -> ModuleType:
    return _load("draw_icons")


@pytest.mark.parametrize(
    ("vendor", "code", "name", "path"),
    [
        ("emojione", "2694-fe0f", "crossed swords", "assets/png/2694.png"),
        ("emojione-bw", "1f52a", "kitchen knife", "assets/png_bw/1f52a.png"),
        ("fxemoji", "1f4a3", "bomb", "icons.json#bomb"),
        ("fxemoji", "2708-fe0f", "airplane", "icons.json#airplane"),
    ],
)
def test_drawing_vendor_paths(
    emoji: ModuleType, vendor: str, code: str, name: str, path: str
) -> None:
    assert emoji.VENDORS[vendor].path(emoji.Emoji(code, name, "safe", name)) == path


def test_drawing_vendors_are_in_neither_the_gate_set_nor_the_mirror(emoji: ModuleType) -> None:
    draw = {emoji.VENDORS[v].source for v in emoji.DRAW_VENDORS}
    gate = {emoji.VENDORS[v].source for v in emoji.GATE_VENDORS}
    mirror = {emoji.VENDORS[v].source for v in emoji.POOL_VENDORS}  # Twemoji
    assert draw == {"emojione", "fxemoji"}
    assert not draw & gate
    assert not draw & mirror


def test_drawing_vendor_items_rename_skip_and_draw_the_pistol_as_a_handgun(
    emoji: ModuleType,
) -> None:
    items = emoji.vendor_items(emoji.DRAW_VENDORS)
    fx = {e.code: path for src, path, e in items if src == "fxemoji"}
    assert fx["1f52a"] == "icons.json#hocho"  # Firefox OS emoji names its own icons
    assert "1fa93" not in fx  # the axe is newer than the vendor
    pistols = [(path, e.label) for _, path, e in items if e.code == "1f52b"]
    assert sorted(pistols) == [
        ("assets/png/1f52b.png", "harmful"),
        ("assets/png_bw/1f52b.png", "harmful"),
        ("icons.json#pistol", "harmful"),
    ]
    # where the vendor draws a water pistol, it stays in neither label
    assert not [e for _, _, e in emoji.vendor_items(emoji.GATE_VENDORS) if e.code == "1f52b"]


def test_icon_table_rules(icons: ModuleType) -> None:
    harmful = {i.name for i in icons.ICONS if i.label == "harmful"}
    safe = {i.name for i in icons.ICONS if i.label == "safe"}
    assert {"revolver", "ak47", "bowie-knife", "dynamite", "gun", "explosion"} <= harmful
    assert {"claw-hammer", "rocket", "dog", "house"} <= safe
    for key in (("game-icons", "water-gun"), ("fa-solid", "droplet"), ("game-icons", "rifle")):
        assert key in icons.EXCLUDED
        assert key not in {(i.iconset, i.name) for i in icons.ICONS}
    sources = {src for src, _, _ in icons.icon_items()}
    assert sources == {"game-icons", "fontawesome-free"}


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("game-icons", "revolver", "weapon", "x"), r"label 'weapon'; valid: harmful, safe"),
        (("noun-project", "revolver", "harmful", "x"), r"icon set 'noun-project'; valid: game"),
    ],
)
def test_bad_icons_are_refused(icons: ModuleType, args: tuple[str, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        icons.Icon(*args)


def test_icon_items_refuse_double_listing_and_listed_excluded(
    icons: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    water = icons.Icon("game-icons", "water-gun", "harmful", "water gun")
    monkeypatch.setattr(icons, "ICONS", [*icons.ICONS, water])
    with pytest.raises(ValueError, match=r"listed and excluded \[\('game-icons', 'water-gun'\)\]"):
        icons.icon_items()
    monkeypatch.setattr(icons, "ICONS", [*icons.SAFE, icons.SAFE[0]])
    with pytest.raises(ValueError, match=r"icons listed twice \[\('game-icons', 'sitting-dog'\)"):
        icons.icon_items()


def test_iconify_icons_render_black_padded_square_and_small(
    sets: ModuleType, write: ModuleType, tmp_path: Path
) -> None:
    """An Iconify icon (``icons.json#name``) renders black on white, padded to a square."""
    require_debian_tool("/usr/bin/rsvg-convert", "librsvg2-bin")
    wide = '<path fill="currentColor" d="M0 0h200v100H0z"/>'
    (tmp_path / "icons.json").write_text(
        json.dumps({"icons": {"bar": {"body": wide}}, "width": 200, "height": 100})
    )
    images = _builder("images")
    data, width, height = images.encode(tmp_path / "icons.json#bar", 128, square=True)
    assert (width, height) == (128, 128)
    with Image.open(io.BytesIO(data)) as image:
        pixels = image.convert("L")
        assert pixels.getpixel((64, 64)) < 40  # the bar, black
        assert pixels.getpixel((64, 5)) > 215  # the padding, white
    with pytest.raises(KeyError, match="no icon 'gun'"):
        images.encode(tmp_path / "icons.json#gun", 128)
    item = sets.Item("game-icons", "icons.json#revolver", "harmful", "revolver")
    assert write.file_name(item) == "images/harmful/game-icons--revolver.jpg"


def test_drawing_pool_is_small_and_shares_nothing_with_the_gate_set() -> None:
    pool = load_photo_set(REPO_ROOT / "drawpool")
    gate = load_photo_set(REPO_ROOT / "gateset", verify=False)
    assert not set(pool.manifest["sha256"]) & set(gate.manifest["sha256"])
    assert set(pool.manifest["domain"]) == {"emoji"}
    assert pool.counts()["harmful"] >= 50
    assert not set(pool.manifest["source"]) & set(gate.manifest["source"])
    for path in pool.paths:
        with Image.open(path) as image:
            assert max(image.size) <= 128


def test_command_line_builds_the_listed_sets_and_refuses_others(sets: ModuleType) -> None:
    cli = _load("build_gate_set")
    args = cli.parser().parse_args(["--only", "drawpool", "--pip", "pip3"])
    assert (args.only, args.pip) == ("drawpool", "pip3")
    assert args.cache == REPO_ROOT / ".harmscan" / "gateset-src"
    assert sorted(sets.SETS) == [
        "colourpool",
        "drawpool",
        "emojipool",
        "gateset",
        "glyphpool",
        "iconcheck",
        "iconpool",
        "lifepool",
        "objectpool",
        "photopool",
        "vendorpool",
    ]
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--only", "mirror"])


@pytest.fixture(scope="module")
def icon_pools(icons: ModuleType) -> ModuleType:
    return _load("icon_pools")


def test_icon_pool_and_check_set_split_by_family_from_vendors_no_other_set_uses(
    icon_pools: ModuleType, icons: ModuleType, emoji: ModuleType
) -> None:
    pool = {src for src, _, _ in icon_pools.pool_items()}
    check = {src for src, _, _ in icon_pools.check_items()}
    assert pool == {"mdi", "phosphor", "streamline-emojis"}
    assert check == {"tabler", "lucide", "remixicon", "icon-park"}
    others = {src for src, _, _ in icons.icon_items()}
    others |= {emoji.VENDORS[v].source for v in emoji.VENDORS}
    assert not (pool | check) & others
    # the split is by family: no glyph name of one family can reach the other set
    assert not {i.iconset for i in icon_pools.POOL} & {i.iconset for i in icon_pools.CHECK}


def test_glyph_pool_families_are_in_no_other_set(
    icon_pools: ModuleType, icons: ModuleType, emoji: ModuleType
) -> None:
    glyphs = {src for src, _, _ in icon_pools.glyph_items()}
    assert glyphs == {"hugeicons", "mingcute", "solar"}
    others = {src for src, _, _ in icons.icon_items()}
    others |= {emoji.VENDORS[v].source for v in emoji.VENDORS}
    others |= {src for src, _, _ in [*icon_pools.pool_items(), *icon_pools.check_items()]}
    assert not glyphs & others
    labels = {(i.iconset, i.name): i.label for i in icon_pools.GLYPH_POOL}
    for key in (("hugeicons", "gun"), ("mingcute", "knife-line"), ("solar", "bomb-bold")):
        assert labels[key] == "harmful"
    for key in (("hugeicons", "hammer"), ("mingcute", "scissors-line"), ("solar", "rocket-bold")):
        assert labels[key] == "safe"  # near misses are safe
    for key in (("hugeicons", "blood"), ("hugeicons", "apple"), ("mingcute", "boom-fill")):
        assert key in icon_pools.EXCLUDED
        assert key not in labels


def test_glyph_items_refuse_a_family_of_another_icon_set(
    icon_pools: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icon_pools, "GLYPH_FAMILIES", ("hugeicons", "mingcute", "solar", "tabler"))
    with pytest.raises(ValueError, match=r"families \['tabler'\] are in the glyph pool and"):
        icon_pools.glyph_items()
    with pytest.raises(ValueError, match=r"families \['tabler'\] are in both"):
        icon_pools.check_items()


@pytest.fixture(scope="module")
def colour_pool(icon_pools: ModuleType) -> ModuleType:
    return _load("colour_pool")


def test_colour_pool_draws_in_colour_from_vendors_that_train_never_the_gate_sets(
    colour_pool: ModuleType, icon_pools: ModuleType, icons: ModuleType, emoji: ModuleType
) -> None:
    colour = {src for src, _, _ in colour_pool.colour_items()}
    assert colour == set(colour_pool.COLOUR_FAMILIES)
    assert all(src == "emojione-v1" or src.startswith("streamline-") for src in colour)
    gate = {emoji.VENDORS[v].source for v in emoji.GATE_VENDORS + emoji.POOL_VENDORS}
    check = {src for src, _, _ in icon_pools.check_items()}
    assert not colour & (gate | check)
    # each family's kin trains in another pool: the metric holds them out together
    kin_sources = {icons.ICON_SETS[k][0] if k in icons.ICON_SETS else k
                   for k in colour_pool.KIN.values()}  # fmt: skip
    assert kin_sources == {"streamline-emojis", "emojione"}
    assert set(colour_pool.KIN) == colour
    assert "emojione" in {emoji.VENDORS[v].source for v in emoji.DRAW_VENDORS}
    labels = {(i.iconset, i.name): i.label for i in colour_pool.COLOUR}
    for key in (("emojione-v1", "pistol"), ("streamline-kameleon-color", "nuclear-mushroom"),
                ("streamline-sharp-color", "sword-attack")):  # fmt: skip
        assert labels[key] == "harmful"
    for key in (("emojione-v1", "rocket"), ("streamline-cyber-color", "hammer"),
                ("streamline-flex-color", "scissors")):  # fmt: skip
        assert labels[key] == "safe"  # near misses are safe
    for key in (("emojione-v1", "droplet"), ("streamline-color", "blood-drop-donation"),
                ("streamline-kameleon-color", "soldier")):  # fmt: skip
        assert key in colour_pool.EXCLUDED
        assert key not in labels


def test_colour_items_refuse_a_family_of_another_icon_set(
    colour_pool: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(colour_pool, "COLOUR_FAMILIES", (*colour_pool.COLOUR_FAMILIES, "lucide"))
    with pytest.raises(ValueError, match=r"families \['lucide'\] are in the colour pool and"):
        colour_pool.colour_items()
    monkeypatch.setattr(colour_pool, "COLOUR_FAMILIES", ("emojione-v1",))
    with pytest.raises(ValueError, match="are not of this set"):
        colour_pool.colour_items()


def test_colour_pool_is_small_colour_and_shares_nothing_with_the_judged_sets() -> None:
    pool = load_photo_set(REPO_ROOT / "colourpool")
    assert set(pool.manifest["domain"]) == {"emoji"}
    assert pool.counts()["harmful"] >= 15
    for judged in ("gateset", "iconcheck"):
        other = load_photo_set(REPO_ROOT / judged, verify=False)
        assert not set(pool.manifest["sha256"]) & set(other.manifest["sha256"])
        assert not set(pool.manifest["source"]) & set(other.manifest["source"])
    assert sum(p.stat().st_size for p in pool.paths) < 2_000_000
    coloured = 0
    for path in pool.paths:
        with Image.open(path) as image:
            assert max(image.size) <= 128
            coloured += image.convert("HSV").getchannel("S").getextrema()[1] > 100
    # colour drawings, not black glyphs (a few colour emoji are grey: the football, the wrench)
    assert coloured >= 0.95 * len(pool.paths)


@pytest.fixture(scope="module")
def vendor_pool(icon_pools: ModuleType) -> ModuleType:
    return _load("vendor_pool")


# licences a training pool may carry (share-alike: the JPEGs are shared under the same licence)
FREE_LICENCES = {"MIT", "Apache-2.0", "ISC", "CC0", "CC BY 4.0", "CC BY-SA 4.0", "OFL-1.1"}


def test_vendor_pool_draws_only_vendors_no_other_set_uses(
    vendor_pool: ModuleType, icon_pools: ModuleType, icons: ModuleType, emoji: ModuleType
) -> None:
    items = vendor_pool.vendor_pool_items()
    vendors = {src for src, _, _ in items}
    assert vendors == set(vendor_pool.VENDOR_FAMILIES)
    assert vendor_pool.KIN == {}  # every family is a vendor of its own
    used = {emoji.VENDORS[v].source for v in emoji.VENDORS}
    used |= {src for src, _, _ in icons.icon_items()}
    for listed in (icon_pools.pool_items(), icon_pools.glyph_items(), icon_pools.check_items(),
                   _load("colour_pool").colour_items()):  # fmt: skip
        used |= {src for src, _, _ in listed}
    assert not vendors & used
    harmful = Counter(src for src, _, icon in items if icon.label == "harmful")
    safe = Counter(src for src, _, icon in items if icon.label == "safe")
    assert sum(n >= 3 for n in harmful.values()) >= 4
    assert min(safe[v] for v in vendors) >= 20
    labels = {(i.iconset, i.name): i.label for i in vendor_pool.VENDOR}
    for key in (("whh", "gun"), ("picon", "revolver"), ("arcticons", "emoji-bomb")):
        assert labels[key] == "harmful"
    for key in (("si-glyph", "saw"), ("vaadin", "scissors"), ("arcticons", "emoji-hammer")):
        assert labels[key] == "safe"  # near misses are safe
    for key in (("whh", "bullet"), ("si-glyph", "tank"), ("arcticons", "emoji-droplet")):
        assert key in vendor_pool.EXCLUDED
        assert key not in labels


def test_vendor_pool_sources_are_pinned_with_a_free_licence(vendor_pool: ModuleType) -> None:
    sources = _builder("sources").SOURCES
    for family in vendor_pool.VENDOR_FAMILIES:
        source = sources[family]
        assert (source.registry, source.name) == ("npm", f"@iconify-json/{family}")
        assert source.version.count(".") == 2
        assert source.license in FREE_LICENCES
        assert "package info.json" in source.license_note
        if "SA" in source.license:
            assert "same licence" in source.license_note
    attribution = (REPO_ROOT / "vendorpool" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for family in vendor_pool.VENDOR_FAMILIES:
        assert sources[family].label in attribution


def test_vendor_items_refuse_a_family_of_another_icon_set(
    vendor_pool: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vendor_pool, "VENDOR_FAMILIES", (*vendor_pool.VENDOR_FAMILIES, "mdi"))
    with pytest.raises(ValueError, match=r"families \['mdi'\] are in the vendor pool and"):
        vendor_pool.vendor_pool_items()
    monkeypatch.setattr(vendor_pool, "VENDOR_FAMILIES", ("whh",))
    with pytest.raises(ValueError, match="are not of this set"):
        vendor_pool.vendor_pool_items()


def test_vendor_pool_is_small_and_shares_nothing_with_the_other_sets() -> None:
    pool = load_photo_set(REPO_ROOT / "vendorpool")
    assert set(pool.manifest["domain"]) == {"emoji"}
    assert pool.counts()["harmful"] >= 20
    for other_name in ("gateset", "iconcheck", "drawpool", "iconpool", "glyphpool", "colourpool"):
        other = load_photo_set(REPO_ROOT / other_name, verify=False)
        assert not set(pool.manifest["sha256"]) & set(other.manifest["sha256"])
        assert not set(pool.manifest["source"]) & set(other.manifest["source"])
    assert sum(p.stat().st_size for p in pool.paths) < 2_000_000
    for path in pool.paths:
        with Image.open(path) as image:
            assert max(image.size) <= 128


def test_icon_pool_labelling_rules(icon_pools: ModuleType) -> None:
    labels = {(i.iconset, i.name): i.label for i in [*icon_pools.POOL, *icon_pools.CHECK]}
    for key in (("mdi", "pistol"), ("phosphor", "knife"), ("remixicon", "knife-blood-line")):
        assert labels[key] == "harmful"
    for key in (("mdi", "hammer"), ("phosphor", "scissors"), ("streamline-emojis", "rocket")):
        assert labels[key] == "safe"  # near misses are safe
    for key in (("tabler", "boom"), ("mdi", "fencing"), ("tabler", "blade")):
        assert key in icon_pools.EXCLUDED
        assert key not in labels


def test_check_items_refuse_a_family_in_both_sets(
    icon_pools: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icon_pools, "CHECK_FAMILIES", ("tabler", "mdi"))
    with pytest.raises(ValueError, match=r"families \['mdi'\] are in both"):
        icon_pools.check_items()
    monkeypatch.setattr(icon_pools, "CHECK_FAMILIES", ("tabler",))
    with pytest.raises(
        ValueError, match=r"families \['icon-park', 'lucide', 'remixicon'\] are not"
    ):
        icon_pools.check_items()


def _rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A version-1 Qt resource bundle holding ``files`` (name -> bytes, zlib-compressed?) in
    one directory ``dir``: the layout `gateset_build.rcc` reads."""
    import struct
    import zlib

    names, name_offsets = b"", {}
    for name in ["dir", *files]:
        name_offsets[name] = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + encoded
    data, nodes = b"", []
    for name, (raw, compress) in files.items():
        block = struct.pack(">I", len(raw)) + zlib.compress(raw) if compress else raw
        nodes.append(struct.pack(">IHHHI", name_offsets[name], int(compress), 0, 0, len(data)))
        data += struct.pack(">I", len(block)) + block
    tree = struct.pack(">IHII", 0, 2, 1, 1)  # the root: one child, node 1
    tree += struct.pack(">IHII", name_offsets["dir"], 2, len(files), 2)
    tree += b"".join(nodes)
    tree_at = 20
    data_at = tree_at + len(tree)
    names_at = data_at + len(data)
    return struct.pack(">4sIIII", b"qres", 1, tree_at, data_at, names_at) + tree + data + names


def test_rcc_members_are_read_raw_and_zlib_compressed(tmp_path: Path) -> None:
    rcc = _builder("rcc")
    image = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(image, format="PNG")
    bundle = tmp_path / "app.rcc"
    bundle.write_bytes(_rcc({"a.png": (image.getvalue(), False), "b.txt": (b"hello" * 50, True)}))
    files = rcc.rcc_files(bundle.read_bytes())
    assert files == {"dir/a.png": image.getvalue(), "dir/b.txt": b"hello" * 50}
    opened = _builder("images").open_image(Path(f"{bundle}#dir/a.png"))
    assert opened.size == (20, 10)
    with pytest.raises(KeyError, match="no file"):
        rcc.rcc_member(Path(f"{bundle}#dir/missing.png"))
    with pytest.raises(ValueError, match="qres"):
        rcc.rcc_files(b"not a bundle" * 4)
