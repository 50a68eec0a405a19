"""The icons of the drawing pool (``drawpool/``): which, labelled how, found where.

`scripts/build_gate_set.py` builds the pool; this module only says what goes in it, beside the
emoji of `scripts/gate_emoji.py` in the vendor styles ``DRAW_VENDORS`` there. Icons are glyphs
of one colour (black on white once flattened), from two icon sets in neither the gate set nor the
offline mirror:

- game-icons.net (the Iconify JSON package ``@iconify-json/game-icons``): an icon is
  ``icons.json#<name>``;
- Font Awesome Free's SVGs (``@fortawesome/fontawesome-free``): ``svgs/solid/<name>.svg``.

Labelling rules (the same as the emoji's, `scripts/gate_emoji.py`): harmful = weapons, blood and
explosions; safe = people, faces, animals, plants, vehicles, food and everyday objects. Toys that
look like weapons (the water gun), cutlery, fire and shields are in neither label. Every label
was checked by looking at the rendered image. Icons count as the ``emoji`` domain: the
maintainers' private set groups "emoji and icons", and so does the gate set (Fluent's
high-contrast style is black glyphs too).
"""

from __future__ import annotations

from dataclasses import dataclass

LABELS = ("harmful", "safe")


@dataclass(frozen=True)
class Icon:
    """One icon: its icon set (a key of `ICON_SETS`), its name there, label and subject."""

    iconset: str
    name: str
    label: str
    subject: str

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"{self.name}: label {self.label!r}; valid: {', '.join(LABELS)}")
        if self.iconset not in ICON_SETS:
            raise ValueError(
                f"{self.name}: icon set {self.iconset!r}; valid: {', '.join(ICON_SETS)}"
            )

    @property
    def source(self) -> str:
        """The builder's source (registry package) of this icon."""
        return ICON_SETS[self.iconset][0]

    @property
    def path(self) -> str:
        """Where the package keeps the icon."""
        return ICON_SETS[self.iconset][1].format(name=self.name)


# The colour pool's families (`scripts/colour_pool.py` labels them): Streamline's colour styles
# and EmojiOne's first emoji.
STREAMLINE_STYLES = (
    "streamline-color",
    "streamline-cyber-color",
    "streamline-flex-color",
    "streamline-freehand-color",
    "streamline-kameleon-color",
    "streamline-plump-color",
    "streamline-sharp-color",
    "streamline-stickies-color",
    "streamline-ultimate-color",
)
COLOUR_FAMILIES = ("emojione-v1", *STREAMLINE_STYLES)
# The vendor pool's families (`scripts/vendor_pool.py` labels them): icon vendors no other set
# uses; builder source = icon set = the Iconify prefix
VENDOR_FAMILIES = ("whh", "picon", "si-glyph", "arcticons", "vaadin")
# icon set -> (builder source, path pattern inside the package); the sets after Font Awesome
# are those of the icon pools and the icon check set (`scripts/icon_pools.py`)
ICON_SETS: dict[str, tuple[str, str]] = {
    "game-icons": ("game-icons", "icons.json#{name}"),
    "fa-solid": ("fontawesome-free", "svgs/solid/{name}.svg"),
    "mdi": ("mdi", "icons.json#{name}"),
    "phosphor": ("phosphor", "icons.json#{name}"),
    "streamline-emojis": ("streamline-emojis", "icons.json#{name}"),
    "tabler": ("tabler", "icons.json#{name}"),
    "lucide": ("lucide", "icons.json#{name}"),
    "remixicon": ("remixicon", "icons.json#{name}"),
    "icon-park": ("icon-park", "icons.json#{name}"),
    "hugeicons": ("hugeicons", "icons.json#{name}"),
    "mingcute": ("mingcute", "icons.json#{name}"),
    "solar": ("solar", "icons.json#{name}"),
    # the colour pool's (`scripts/colour_pool.py`): builder source = icon set
    **{family: (family, "icons.json#{name}") for family in COLOUR_FAMILIES},
    # the vendor pool's (`scripts/vendor_pool.py`): builder source = icon set
    **{family: (family, "icons.json#{name}") for family in VENDOR_FAMILIES},
}


def _icons(iconset: str, label: str, rows: str) -> list[Icon]:
    """Parse ``name | subject`` lines (the tables below)."""
    out = []
    for line in rows.strip().splitlines():
        name, subject = (cell.strip() for cell in line.split("|"))
        out.append(Icon(iconset, name, label, subject))
    return out


HARMFUL = [
    *_icons(
        "game-icons",
        "harmful",
        """
        pistol-gun         | pistol
        revolver           | revolver
        crossed-pistols    | two crossed pistols
        winchester-rifle   | lever-action rifle
        ak47               | assault rifle
        sawed-off-shotgun  | sawed-off shotgun
        m3-grease-gun      | submachine gun
        broadsword         | broadsword
        crossed-swords     | crossed swords
        katana             | katana
        machete            | machete
        bowie-knife        | bowie knife
        trench-knife       | trench knife
        plain-dagger       | dagger
        broad-dagger       | broad dagger
        battle-axe         | battle axe
        war-axe            | war axe
        stick-grenade      | stick grenade
        dynamite           | dynamite sticks
        time-bomb          | time bomb
        unlit-bomb         | round bomb
        spiky-explosion    | explosion
        bright-explosion   | explosion burst
        explosion-rays     | explosion rays
        bloody-sword       | sword dripping blood
        dripping-knife     | knife dripping blood
        bow-arrow          | bow and arrow
        crossbow           | crossbow
        cannon             | cannon
        field-gun          | field gun
        battle-tank        | battle tank
        missile-launcher   | missile launcher
        """,
    ),
    *_icons(
        "fa-solid",
        "harmful",
        """
        gun                   | pistol
        bomb                  | bomb with a lit fuse
        explosion             | explosion
        person-rifle          | person with a rifle
        person-military-rifle | soldier with a rifle
        """,
    ),
]

SAFE = [
    *_icons(
        "game-icons",
        "safe",
        """
        sitting-dog        | dog
        cat                | cat
        horse-head         | horse head
        cow                | cow
        elephant           | elephant
        rabbit             | rabbit
        owl                | owl
        duck               | duck
        turtle             | turtle
        butterfly          | butterfly
        snail              | snail
        frog               | frog
        crab               | crab
        sperm-whale        | whale
        pine-tree          | pine tree
        palm-tree          | palm tree
        fruit-tree         | fruit tree
        sunflower          | sunflower
        rose               | rose
        flower-pot         | flower pot
        shiny-apple        | apple
        banana             | banana
        cherry             | cherries
        carrot             | carrot
        pizza-slice        | pizza slice
        hamburger          | hamburger
        cupcake            | cupcake
        cake-slice         | cake slice
        coffee-cup         | coffee cup
        teapot             | teapot
        grapes             | grapes
        strawberry         | strawberry
        pear               | pear
        claw-hammer        | claw hammer (a tool)
        spanner            | spanner
        screwdriver        | screwdriver
        guitar             | guitar
        violin             | violin
        soccer-ball        | football
        basketball-ball    | basketball
        bus                | bus
        farm-tractor       | tractor
        sailboat           | sailboat
        commercial-airplane | airplane
        house              | house
        light-bulb         | light bulb
        open-book          | open book
        photo-camera       | camera
        umbrella           | umbrella
        alarm-clock        | alarm clock
        balloons           | balloons
        kite               | kite
        backpack           | backpack
        sunglasses         | sunglasses
        running-shoe       | running shoe
        armchair           | armchair
        sofa               | sofa
        smartphone         | smartphone
        baby-face          | baby face
        """,
    ),
    *_icons(
        "fa-solid",
        "safe",
        """
        dog             | dog
        cat             | cat
        horse           | horse
        cow             | cow
        dove            | dove
        fish            | fish
        frog            | frog
        hippo           | hippo
        tree            | tree
        seedling        | seedling
        apple-whole     | apple
        carrot          | carrot
        lemon           | lemon
        pizza-slice     | pizza slice
        burger          | burger
        mug-hot         | hot drink
        cake-candles    | birthday cake
        ice-cream       | ice cream
        bicycle         | bicycle
        car             | car
        bus             | bus
        truck           | lorry
        plane           | airplane
        ship            | ship
        rocket          | space rocket (not a weapon)
        house           | house
        lightbulb       | light bulb
        book            | book
        guitar          | guitar
        futbol          | football
        gift            | gift
        camera          | camera
        umbrella        | umbrella
        hammer          | hammer (a tool)
        wrench          | wrench
        baby            | baby
        child           | child
        person-running  | person running
        face-smile      | smiling face
        face-laugh      | laughing face
        """,
    ),
]

# Drawn as something other than a weapon, or neither harmful nor safe.
EXCLUDED: dict[tuple[str, str], str] = {
    ("game-icons", "water-gun"): "a toy (the water pistol of the emoji is in neither label)",
    ("game-icons", "fork-knife-spoon"): "cutlery, not a weapon",
    ("game-icons", "rifle"): "drawn as a cartridge (ammunition is never-safe, not harmful)",
    ("game-icons", "shotgun"): "drawn as a shotgun shell (ammunition)",
    ("game-icons", "grenade"): "a ribbed capsule: nothing in it says grenade at 128 px",
    ("game-icons", "machine-gun"): "a gun on a tripod that reads as a lamp at 128 px",
    ("fa-solid", "droplet"): "a black drop: nothing in it says blood",
    ("fa-solid", "burst"): "a jagged star: an explosion or a highlight, unclear",
    ("fa-solid", "shield"): "protective, not a weapon",
}

ICONS: list[Icon] = [*HARMFUL, *SAFE]


def icon_items(
    icons: list[Icon] | None = None, excluded: dict[tuple[str, str], str] | None = None
) -> list[tuple[str, str, Icon]]:
    """``(source, path inside the package, icon)`` for every icon (default: the drawing pool's).

    Raises:
        ValueError: An icon listed twice, or both listed and excluded.
    """
    icons = ICONS if icons is None else icons
    excluded = EXCLUDED if excluded is None else excluded
    keys = [(i.iconset, i.name) for i in icons]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    both = sorted(set(keys) & set(excluded))
    if twice or both:
        raise ValueError(f"icons listed twice {twice}; listed and excluded {both}")
    return [(i.source, i.path, i) for i in icons]
