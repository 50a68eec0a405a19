"""The registry packages the sets are built from: each pinned to one version, with its licence.

A set's items (`gateset_build.sets`) name their package by its key in `SOURCES`.
"""

from __future__ import annotations

from dataclasses import dataclass


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


# Streamline's colour styles (the colour pool's): package key, title in info.json, drawing style
STREAMLINE_COLOUR = (
    ("streamline-color", "Streamline color", "two-tone flat and outline"),
    ("streamline-cyber-color", "Cyber color icons", "two-tone outline"),
    ("streamline-flex-color", "Flex color icons", "two-tone flat and outline"),
    ("streamline-freehand-color", "Freehand color icons", "hand-drawn"),
    ("streamline-kameleon-color", "Kameleon color icons", "flat colour on discs, and two-tone"),
    ("streamline-plump-color", "Plump color icons", "two-tone flat and outline"),
    ("streamline-sharp-color", "Sharp color icons", "two-tone flat and outline"),
    ("streamline-stickies-color", "Stickies color icons", "colour stickers"),
    ("streamline-ultimate-color", "Ultimate color icons", "colour outline"),
)


def _streamline(key: str, title: str, style: str) -> Source:
    """One of Streamline's colour styles on npm (``@iconify-json/<key>``), all pinned alike."""
    return Source(
        "npm",
        f"@iconify-json/{key}",
        "1.2.2",
        "CC BY 4.0",
        f"package info.json: {title} by Streamline (github.com/webalys-hq/streamline-vectors), "
        f"licence Creative Commons Attribution 4.0; {style}, colour SVG bodies in icons.json, "
        "rendered at 128 px",
    )


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
    # object pool only (it also takes other images of tuxpaint-stamps-default, opencv-doc and
    # ultralytics than the gate set's)
    "palapeli-data": Source(
        "debian",
        "palapeli-data",
        "4:22.12.3-1",
        "Public Domain or GFDL (per image)",
        "each puzzle's .desktop file in usr/share/palapeli/collection (author, Wikimedia Commons "
        "page, licence): castle-maintenon: Eric Pouhier, GFDL; cincinnati-bridge: Derek Jensen, "
        "public domain; citrus-fruits: US Department of Agriculture, public domain; "
        "european-honey-bee: John Severns, public domain; panther-chameleon-female: B. Navez "
        "and others, GNU FDL",
    ),
    # everyday photo pool only
    "gcompris-qt-data": Source(
        "debian",
        "gcompris-qt-data",
        "3.1-2",
        "per image (Debian copyright file)",
        "usr/share/doc/gcompris-qt-data/copyright: each categorization image with its author "
        "and licence (CC BY 1.0-2.0, CC BY-SA 2.0-4.0, CC0, public domain); the rest under "
        "Files: * (GPL-3+, the GCompris authors); images inside the activities' Qt resource "
        "bundles (usr/share/gcompris-qt/rcc/*.rcc)",
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
    # icons (icon pool only: trains the probe)
    "mdi": Source(
        "npm",
        "@iconify-json/mdi",
        "1.2.3",
        "Apache-2.0",
        "package info.json: Material Design Icons by Pictogrammers (github.com/Templarian/"
        "MaterialDesign), licence Apache 2.0; SVG bodies in icons.json, rendered black at 128 px",
    ),
    "phosphor": Source(
        "npm",
        "@iconify-json/ph",
        "1.2.2",
        "MIT",
        "package info.json: Phosphor by Phosphor Icons (github.com/phosphor-icons/core), licence "
        "MIT; regular and fill weights, SVG bodies in icons.json, rendered black at 128 px",
    ),
    "streamline-emojis": Source(
        "npm",
        "@iconify-json/streamline-emojis",
        "1.2.4",
        "CC BY 4.0",
        "package info.json: Streamline Emojis by Streamline (streamlinehq.com), licence "
        "Creative Commons Attribution 4.0; colour SVG bodies in icons.json, rendered at 128 px",
    ),
    # icons (glyph pool only: may train the probe)
    "hugeicons": Source(
        "npm",
        "@iconify-json/hugeicons",
        "1.2.35",
        "MIT",
        "package info.json: Huge Icons by Hugeicons (free stroke set), licence MIT; SVG bodies "
        "in icons.json, rendered black at 128 px",
    ),
    "mingcute": Source(
        "npm",
        "@iconify-json/mingcute",
        "1.2.8",
        "Apache-2.0",
        "package info.json: MingCute Icon by MingCute Design (github.com/Richard9394/MingCute), "
        "licence Apache 2.0; line and fill weights, SVG bodies in icons.json, rendered black at "
        "128 px",
    ),
    "solar": Source(
        "npm",
        "@iconify-json/solar",
        "1.2.13",
        "CC BY 4.0",
        "package info.json: Solar by 480 Design, licence Creative Commons Attribution 4.0; "
        "linear and bold weights, SVG bodies in icons.json, rendered black at 128 px",
    ),
    # colour drawings (colour pool only: may train the probe)
    "emojione-v1": Source(
        "npm",
        "@iconify-json/emojione-v1",
        "1.2.3",
        "CC BY-SA 4.0",
        "package info.json: Emoji One (v1) by Emoji One (github.com/joypixels/emojione-legacy), "
        "licence Creative Commons Attribution-ShareAlike 4.0; colour SVG bodies in icons.json, "
        "rendered at 128 px (the re-encoded JPEGs are shared under the same licence)",
    ),
    **{key: _streamline(key, title, style) for key, title, style in STREAMLINE_COLOUR},
    # icons of vendors no other set uses (vendor pool only: may train the probe)
    "whh": Source(
        "npm",
        "@iconify-json/whh",
        "1.2.0",
        "OFL-1.1",
        "package info.json: WebHostingHub Glyphs by WebHostingHub, licence SIL Open Font License "
        "1.1; SVG bodies in icons.json, rendered black at 128 px",
    ),
    "picon": Source(
        "npm",
        "@iconify-json/picon",
        "1.2.0",
        "OFL-1.1",
        "package info.json: Pico-icon by Picon Contributors (github.com/yne/picon), licence SIL "
        "Open Font License 1.1; SVG bodies in icons.json, rendered black at 128 px",
    ),
    "si-glyph": Source(
        "npm",
        "@iconify-json/si-glyph",
        "1.2.2",
        "CC BY-SA 4.0",
        "package info.json: SmartIcons Glyph by SmartIcons, licence Creative Commons "
        "Attribution-ShareAlike 4.0; SVG bodies in icons.json, rendered black at 128 px (the "
        "re-encoded JPEGs are shared under the same licence)",
    ),
    "arcticons": Source(
        "npm",
        "@iconify-json/arcticons",
        "1.2.58",
        "CC BY-SA 4.0",
        "package info.json: Arcticons by Donnnno (github.com/Arcticons-Team/Arcticons), licence "
        "Creative Commons Attribution-ShareAlike 4.0; line drawings, SVG bodies in icons.json, "
        "rendered black at 128 px (the re-encoded JPEGs are shared under the same licence)",
    ),
    "vaadin": Source(
        "npm",
        "@iconify-json/vaadin",
        "1.2.1",
        "Apache-2.0",
        "package info.json: Vaadin Icons by Vaadin (github.com/vaadin/web-components), licence "
        "Apache 2.0; SVG bodies in icons.json, rendered black at 128 px",
    ),
    # icons (icon check set only: held out, never trained on)
    "tabler": Source(
        "npm",
        "@iconify-json/tabler",
        "1.2.41",
        "MIT",
        "package info.json: Tabler Icons by Paweł Kuna (github.com/tabler/tabler-icons), "
        "licence MIT; SVG bodies in icons.json, rendered black at 128 px",
    ),
    "lucide": Source(
        "npm",
        "@iconify-json/lucide",
        "1.2.137",
        "ISC",
        "package info.json: Lucide by Lucide Contributors (github.com/lucide-icons/lucide), "
        "licence ISC; SVG bodies in icons.json, rendered black at 128 px",
    ),
    "remixicon": Source(
        "npm",
        "@iconify-json/ri",
        "1.2.10",
        "Apache-2.0",
        "package info.json: Remix Icon (github.com/Remix-Design/RemixIcon), licence Apache 2.0; "
        "SVG bodies in icons.json, rendered black at 128 px",
    ),
    "icon-park": Source(
        "npm",
        "@iconify-json/icon-park",
        "1.2.4",
        "Apache-2.0",
        "package info.json: IconPark by ByteDance (github.com/bytedance/IconPark), licence "
        "Apache 2.0; multi-colour SVG bodies in icons.json, rendered at 128 px",
    ),
}
