"""The emoji of the gate set and of the emoji calibration pool: which, labelled how, found where.

`scripts/build_gate_set.py` builds the sets; this module only says what goes in them. One table of
emoji (code points, CLDR name, label, what it shows), and per vendor style where its package keeps
the image of an emoji:

- emoji-datasource packages (Noto, Twemoji) name their PNGs by lowercase code points joined by
  ``-`` (``1f5e1-fe0f.png``), with the variation selector where the Unicode data has one;
- fluentui-emoji names its SVGs by the CLDR short name, lowercase, spaces as ``-``
  (``icons/modern/kitchen-knife.svg``).

Labelling rules (the same as the mirror's, `mirror/catalog.yaml`): harmful = weapons, blood and
explosions; safe = people, faces, animals, plants, vehicles, food and everyday objects. Emoji
whose drawing is ambiguous are in neither label (`EXCLUDED`, `VENDOR_EXCLUDED`, with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass

LABELS = ("harmful", "safe")


@dataclass(frozen=True)
class Emoji:
    """One emoji: ``code`` as emoji-datasource names it, ``name`` its CLDR short name."""

    code: str
    name: str
    label: str
    subject: str
    skin_tones: bool = False  # people: fluentui-emoji adds "-default" (the yellow tone)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"{self.name}: label {self.label!r}; valid: {', '.join(LABELS)}")
        parts = self.code.split("-")
        if not all(4 <= len(p) <= 5 and p == p.lower() for p in parts):
            raise ValueError(f"{self.name}: code {self.code!r} is not lowercase hex code points")
        int("".join(parts), 16)  # ValueError if not hex

    @property
    def char(self) -> str:
        """The emoji itself."""
        return "".join(chr(int(p, 16)) for p in self.code.split("-"))

    @property
    def bare(self) -> str:
        """The code points without the emoji variation selector (EmojiOne's file names)."""
        return self.code.removesuffix("-fe0f")

    @property
    def squash(self) -> str:
        """The CLDR name in lowercase letters and digits only (Firefox OS emoji's icon names)."""
        return "".join(c for c in self.name.lower() if c.isalnum())

    @property
    def slug(self) -> str:
        """The CLDR name as fluentui-emoji spells its file names."""
        slug = self.name.lower().replace(" ", "-").replace(":", "").replace("'", "")
        return f"{slug}-default" if self.skin_tones else slug


def _emoji(label: str, rows: str) -> list[Emoji]:
    """Parse ``code | CLDR name | subject [| tones]`` lines (the tables below)."""
    out = []
    for line in rows.strip().splitlines():
        code, name, subject, *rest = (cell.strip() for cell in line.split("|"))
        if rest not in ([], ["tones"]):
            raise ValueError(f"{line.strip()!r}: a fourth column can only be 'tones'")
        out.append(Emoji(code, name, label, subject, skin_tones=bool(rest)))
    return out


HARMFUL = _emoji(
    "harmful",
    """
    1f52a      | kitchen knife  | kitchen knife (hocho)
    1f5e1-fe0f | dagger         | dagger
    2694-fe0f  | crossed swords | crossed swords
    1fa93      | axe            | axe
    1f3f9      | bow and arrow  | bow and arrow
    1f4a3      | bomb           | bomb with a lit fuse
    1f9e8      | firecracker    | firecracker (dynamite stick)
    1f4a5      | collision      | explosion burst
    1fa78      | drop of blood  | drop of blood
    """,
)

SAFE = _emoji(
    "safe",
    """
    1f600      | grinning face                   | grinning face
    1f602      | face with tears of joy          | laughing face
    1f60d      | smiling face with heart-eyes    | face with heart eyes
    1f914      | thinking face                   | thinking face
    1f622      | crying face                     | crying face
    1f60e      | smiling face with sunglasses    | face with sunglasses
    1f476      | baby                            | baby | tones
    1f467      | girl                            | girl | tones
    1f466      | boy                             | boy | tones
    1f469      | woman                           | woman | tones
    1f468      | man                             | man | tones
    1f475      | old woman                       | old woman | tones
    1f3c3      | person running                  | person running | tones
    1f436      | dog face                        | dog face
    1f431      | cat face                        | cat face
    1f40e      | horse                           | horse
    1f404      | cow                             | cow
    1f430      | rabbit face                     | rabbit face
    1f43c      | panda                           | panda face
    1f981      | lion                            | lion face
    1f427      | penguin                         | penguin
    1f438      | frog                            | frog face
    1f422      | turtle                          | turtle
    1f42c      | dolphin                         | dolphin
    1f98b      | butterfly                       | butterfly
    1f418      | elephant                        | elephant
    1f332      | evergreen tree                  | evergreen tree
    1f333      | deciduous tree                  | deciduous tree
    1f334      | palm tree                       | palm tree
    1f335      | cactus                          | cactus
    1f337      | tulip                           | tulip
    1f33b      | sunflower                       | sunflower
    1f6b2      | bicycle                         | bicycle
    1f697      | automobile                      | car
    1f68c      | bus                             | bus
    1f69c      | tractor                         | tractor
    2708-fe0f  | airplane                        | airplane
    26f5       | sailboat                        | sailboat
    1f680      | rocket                          | space rocket (not a weapon)
    1f692      | fire engine                     | fire engine
    1f34e      | red apple                       | red apple
    1f34c      | banana                          | banana
    1f349      | watermelon                      | watermelon slice
    1f355      | pizza                           | pizza slice
    1f354      | hamburger                       | hamburger
    1f370      | shortcake                       | cake slice
    2615       | hot beverage                    | hot drink
    1f955      | carrot                          | carrot
    1f528      | hammer                          | hammer (a tool)
    1f527      | wrench                          | wrench
    2602-fe0f  | umbrella                        | umbrella
    1f4a1      | light bulb                      | light bulb
    1f4da      | books                           | books
    1f3b8      | guitar                          | guitar
    26bd       | soccer ball                     | football
    1f388      | balloon                         | balloon
    1f381      | wrapped gift                    | gift
    1f4f7      | camera                          | camera
    1f9f8      | teddy bear                      | teddy bear
    1f3e0      | house                           | house
    """,
)

# Drawn as something other than what the code point names, or neither harmful nor safe.
EXCLUDED: dict[str, str] = {
    "1f52b": "pistol: Noto, Fluent and Twemoji draw a water pistol (a toy); the mirror labels "
    "Twemoji's as Water gun, in neither class set, so it is in neither label here",
    "1f374": "fork and knife: cutlery, not the kitchen knife of the harmful side",
    "1f525": "fire: mostly used for 'hot'; the photo gate set's fires are flames, not this",
    "1f386": "fireworks: a celebration; the firecracker is the harmful explosive",
    "1f6e1-fe0f": "shield: protective, not a weapon",
}

# One vendor style's drawing of an emoji that does not show what the label needs, or that the
# vendor's package does not have (EmojiOne 2.2 and Firefox OS emoji predate Unicode 11-12).
_OLD = "not drawn by this vendor (newer than its last release)"
VENDOR_EXCLUDED: dict[tuple[str, str], str] = {
    ("fluent-high-contrast", "1fa78"): "drop of blood: a black drop, nothing in it says blood",
    **{(v, c): _OLD for v in ("emojione", "emojione-bw") for c in ("1fa93", "1f9e8", "1fa78")},
    **{
        ("fxemoji", c): _OLD
        for c in ("1fa93", "1f9e8", "1fa78", "2694-fe0f", "1f3f9", "1f914", "1f981", "1f98b")
    },
    ("fxemoji", "1f430"): "rabbit face: not drawn by this vendor",
    ("fxemoji", "1f955"): "carrot: not drawn by this vendor",
    ("fxemoji", "1f381"): "wrapped gift: not drawn by this vendor",
    ("fxemoji", "1f9f8"): _OLD,
    ("emojione", "1f9f8"): _OLD,
    ("emojione-bw", "1f9f8"): _OLD,
    ("fxemoji", "1f475"): "old woman: not drawn by this vendor",
}

# Vendors that draw the pistol as what its name says, a handgun (checked by looking at the
# image), not as a water pistol: there it is a weapon, harmful like the mirror's Handgun.
VENDOR_HANDGUN = ("emojione", "emojione-bw", "fxemoji")
PISTOL = Emoji("1f52b", "pistol", "harmful", "pistol (a handgun)")

# Where a vendor's icon name differs from its pattern's (Firefox OS emoji names its own).
VENDOR_NAMES: dict[tuple[str, str], str] = {
    ("fxemoji", code): f"icons.json#{name}"
    for code, name in (
        ("1f52a", "hocho"),
        ("1f5e1-fe0f", "daggerknife"),
        ("1f600", "grin"),
        ("1f602", "grintears"),
        ("1f60d", "hearteyes"),
        ("1f622", "crying"),
        ("1f60e", "sunglasses"),
        ("1f3c3", "running"),
        ("1f436", "dog"),
        ("1f431", "cat"),
        ("1f43c", "pandaface"),
        ("1f332", "evergreen"),
        ("1f355", "sliceofpizza"),
        ("1f3e0", "housebuilding"),
    )
}

EMOJI: list[Emoji] = [*HARMFUL, *SAFE]


@dataclass(frozen=True)
class Vendor:
    """One vendor style: its package (a key of the builder's sources) and its file pattern."""

    source: str
    pattern: str  # path inside the package; {code} and {slug} are filled per emoji

    def path(self, emoji: Emoji) -> str:
        """Where this vendor keeps ``emoji``."""
        return self.pattern.format(
            code=emoji.code, bare=emoji.bare, slug=emoji.slug, squash=emoji.squash
        )


VENDORS: dict[str, Vendor] = {
    "noto": Vendor("emoji-datasource-google", "img/google/64/{code}.png"),
    "fluent-color": Vendor("fluentui-emoji", "icons/modern/{slug}.svg"),
    "fluent-flat": Vendor("fluentui-emoji", "icons/flat/{slug}.svg"),
    "fluent-high-contrast": Vendor("fluentui-emoji", "icons/high-contrast/{slug}.svg"),
    "twemoji": Vendor("emoji-datasource-twitter", "img/twitter/64/{code}.png"),
    "emojione": Vendor("emojione", "assets/png/{bare}.png"),
    "emojione-bw": Vendor("emojione", "assets/png_bw/{bare}.png"),
    # an Iconify JSON file: the icon named after '#' (build_gate_set renders it)
    "fxemoji": Vendor("fxemoji", "icons.json#{squash}"),
}
# The gate set's emoji: styles the offline mirror does not contain. The calibration pool's:
# a vendor disjoint from those (Twemoji, which the mirror's composites use), so the emoji of
# the gate set stay out of everything that trains or picks a threshold.
GATE_VENDORS = ("noto", "fluent-color", "fluent-flat", "fluent-high-contrast")
POOL_VENDORS = ("twemoji",)
# The drawing pool's (drawpool/, which the probe may train on): vendors in neither the gate set
# nor the offline mirror (Twemoji, OpenMoji).
DRAW_VENDORS = ("emojione", "emojione-bw", "fxemoji")


def vendor_items(vendors: tuple[str, ...]) -> list[tuple[str, str, Emoji]]:
    """``(source, path inside the package, emoji)`` for every emoji of every vendor style.

    Raises:
        ValueError: An unknown vendor, or an emoji both listed and excluded, or listed twice.
    """
    unknown = sorted(set(vendors) - set(VENDORS))
    if unknown:
        raise ValueError(f"unknown emoji vendors {unknown}; valid: {', '.join(VENDORS)}")
    codes = [e.code for e in EMOJI]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    both = sorted(set(codes) & set(EXCLUDED))
    if twice or both:
        raise ValueError(f"emoji listed twice {twice}; listed and excluded {both}")
    return [
        (VENDORS[v].source, VENDOR_NAMES.get((v, e.code)) or VENDORS[v].path(e), e)
        for v in vendors
        for e in (*EMOJI, *((PISTOL,) if v in VENDOR_HANDGUN else ()))
        if (v, e.code) not in VENDOR_EXCLUDED
    ]
