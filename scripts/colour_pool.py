"""The colour pool (``colourpool/``): colour drawings the probe may train on, labelled how.

`scripts/build_gate_set.py` builds it (``--only colourpool``); this module only says what goes
in it. The other training pools are mostly black glyphs, while the gate set's emoji (and the
private set's) are colour emoji. Every drawing here is colour, from an Iconify JSON package
(``@iconify-json/<set>``, an icon is ``icons.json#<name>``) of two vendors that already train:

- Streamline's colour styles (CC BY 4.0): Streamline Color, Cyber, Flex, Freehand, Kameleon,
  Plump, Sharp, Stickies and Ultimate colour (Streamline Emojis, in ``iconpool/``, is their kin);
- EmojiOne's first emoji (``emojione-v1``, CC BY-SA 4.0; EmojiOne 2.2, in ``drawpool/``, is its
  kin): the emoji of `scripts/gate_emoji.py`'s table that it draws, and its revolver.

Never the gate set's vendors (Google Noto incl. ``noto-v1`` and Material Symbols, Microsoft
Fluent incl. Fluent UI icons), the icon check set's (IconPark, Lucide, Remix, Tabler), the emoji
pool's and the mirror's (Twemoji, OpenMoji). Because both vendors train already, the development
metric holds each family out together with its kin (`KIN`), so no fold counts a vendor as unseen
while its other style trains (docs/colourpool.md).

Labelling rules (those of `scripts/draw_icons.py` and `scripts/icon_pools.py`): harmful =
weapons (guns, knives, swords), bombs, explosions and blood; safe = animals, plants, food,
vehicles, tools (hammer, wrench, screwdriver and scissors are near misses, safe), the space
rocket, faces and people. Drawings that say something else, or nothing clear, at 128 px are in
`EXCLUDED` with the reason. Every label was checked by looking at the rendered drawing.
"""

from __future__ import annotations

from draw_icons import COLOUR_FAMILIES, STREAMLINE_STYLES, Icon, _icons
from icon_pools import CHECK_FAMILIES, GLYPH_FAMILIES, POOL_FAMILIES, family_items

# family -> the vendor kin it is held out with in the development metric: a family of
# `POOL_FAMILIES` or a `draw_icons`/`gate_emoji` source of drawpool/ ("emojione": EmojiOne 2.2)
KIN: dict[str, str] = {
    "emojione-v1": "emojione",
    **dict.fromkeys(STREAMLINE_STYLES, "streamline-emojis"),
}

COLOUR: list[Icon] = [
    *_icons(
        "emojione-v1",
        "harmful",
        """
        bomb            | bomb with a lit fuse
        collision       | explosion burst
        dagger          | dagger
        kitchen-knife   | kitchen knife (hocho)
        pistol          | revolver
        """,
    ),
    *_icons(
        "streamline-color",
        "harmful",
        """
        bomb            | round bomb with a fuse
        bomb-flat       | round bomb with a fuse (flat)
        """,
    ),
    *_icons(
        "streamline-kameleon-color",
        "harmful",
        """
        bomb                 | bomb with a lit fuse
        bomb-duo             | bomb with a lit fuse (two-tone)
        nuclear-mushroom     | mushroom cloud (explosion)
        nuclear-mushroom-duo | mushroom cloud (explosion, two-tone)
        """,
    ),
    *_icons(
        "streamline-plump-color",
        "harmful",
        """
        bomb            | bomb with a fuse
        bomb-flat       | bomb with a fuse (flat)
        """,
    ),
    *_icons(
        "streamline-sharp-color",
        "harmful",
        """
        sword-attack      | sword
        sword-attack-flat | sword (flat)
        """,
    ),
    *_icons(
        "streamline-ultimate-color",
        "harmful",
        """
        martial-arts-swords       | crossed swords
        shooting-rifle-person-aim | person aiming a rifle
        """,
    ),
    *_icons(
        "emojione-v1",
        "safe",
        """
        grinning-face   | grinning face
        face-with-tears-of-joy | laughing face
        smiling-face-with-heart-eyes | face with heart eyes
        crying-face     | crying face
        smiling-face-with-sunglasses | face with sunglasses
        baby            | baby
        girl            | girl
        boy             | boy
        woman           | woman
        man             | man
        old-woman       | old woman
        person-running  | person running
        dog-face        | dog face
        cat-face        | cat face
        horse           | horse
        cow             | cow
        rabbit-face     | rabbit face
        panda-face      | panda face
        penguin         | penguin
        frog-face       | frog face
        turtle          | turtle
        dolphin         | dolphin
        elephant        | elephant
        evergreen-tree  | evergreen tree
        deciduous-tree  | deciduous tree
        palm-tree       | palm tree
        cactus          | cactus
        tulip           | tulip
        sunflower       | sunflower
        bicycle         | bicycle
        automobile      | car
        bus             | bus
        tractor         | tractor
        airplane        | airplane
        sailboat        | sailboat
        rocket          | space rocket (not a weapon)
        fire-engine     | fire engine
        red-apple       | red apple
        banana          | banana
        watermelon      | watermelon slice
        pizza           | pizza slice
        hamburger       | hamburger
        shortcake       | cake slice
        hot-beverage    | hot drink
        hammer          | hammer (a tool)
        wrench          | wrench
        light-bulb      | light bulb
        books           | books
        guitar          | guitar
        soccer-ball     | football
        balloon         | balloon
        wrapped-gift    | gift
        camera          | camera
        house           | house
        scissors        | scissors
        """,
    ),
    *_icons(
        "streamline-color",
        "safe",
        """
        cat-1           | cat face
        flower          | flower
        burger          | hamburger
        strawberry      | strawberry
        bicycle-bike    | bicycle
        bus             | bus
        airplane        | airplane
        wrench          | wrench
        smiley-happy    | smiling face
        camera-1        | camera
        home-3          | house
        tree-2          | tree
        cake-slice      | cake slice
        lightbulb       | light bulb
        """,
    ),
    *_icons(
        "streamline-cyber-color",
        "safe",
        """
        dog-1           | dog face
        cat-2           | cat
        elephant        | elephant
        whale           | whale
        watermelon      | watermelon slice
        bus-2           | bus
        car-4           | car
        guitar          | guitar
        hammer          | hammer (a tool)
        wrench          | wrench
        football        | football
        umbrella-rain   | umbrella in the rain
        smiley-smile1   | smiling face
        """,
    ),
    *_icons(
        "streamline-flex-color",
        "safe",
        """
        dog-1           | dog face
        cat-2           | cat face
        carrot          | carrot
        bicycle-bike    | bicycle
        car-taxi-1      | taxi
        rocket          | space rocket (not a weapon)
        scissors        | scissors
        screwdriver-wrench | screwdriver and wrench (tools)
        smiley-blessed  | smiling face
        sofa            | armchair
        home-2          | house
        cake-slice      | cake
        """,
    ),
    *_icons(
        "streamline-freehand-color",
        "safe",
        """
        smiley-happy    | smiling face
        smiley-lol      | laughing face
        camera          | camera
        home-chimney-2  | house
        phone-retro-1   | telephone
        business-metaphor-shark | shark fin in the sea
        """,
    ),
    *_icons(
        "streamline-kameleon-color",
        "safe",
        """
        butterfly       | butterfly
        chicken         | roast chicken
        strawberry      | strawberry
        donut           | doughnut
        hammer          | hammer (a tool)
        wrench          | wrench
        taxi-2          | taxi
        truck           | lorry
        man-12          | man
        woman-15        | woman
        light-bulb      | light bulb
        sofa-3          | sofa
        drum            | drum
        """,
    ),
    *_icons(
        "streamline-plump-color",
        "safe",
        """
        dog-1           | dog face
        fish            | fish
        burger          | hamburger
        strawberry      | strawberry
        bus             | bus
        bicycle-bike    | bicycle
        scissors        | scissors
        screwdriver     | screwdriver
        smiley-laughing-1 | laughing face
        tree-1          | tree
        gift            | gift
        balloon         | balloon
        """,
    ),
    *_icons(
        "streamline-sharp-color",
        "safe",
        """
        rabbit          | rabbit face
        apple           | apple
        car-2           | car
        ship            | ship
        wrench          | wrench
        screwdriver-wrench | screwdriver and wrench (tools)
        cake            | birthday cake
        """,
    ),
    *_icons(
        "streamline-stickies-color",
        "safe",
        """
        baby            | baby
        taxi            | taxi
        wrench          | wrench
        snowman         | snowman
        key             | key
        """,
    ),
    *_icons(
        "streamline-ultimate-color",
        "safe",
        """
        bicycle         | bicycle
        bus-1           | bus
        car-retro       | car
        taxi            | taxi
        bread-loaf      | loaf of bread
        ice-cream-cone  | ice cream cone
        scissors-2      | scissors
        house-chimney   | house
        smiley-happy    | smiling face
        soccer-kick-ball | football boot kicking a ball
        """,
    ),
]

# Drawn as something other than what the name says, or neither harmful nor safe.
EXCLUDED: dict[tuple[str, str], str] = {
    ("emojione-v1", "droplet"): "a blue drop: water, not blood",
    ("emojione-v1", "fork-and-knife"): "cutlery, not the kitchen knife of the harmful side",
    ("emojione-v1", "black-skull-cross-bones"): "a skull and bones: a warning sign",
    ("streamline-color", "blood-drop-donation"): "a drop with a cross: blood donation, medical",
    ("streamline-color", "blood-donate-drop"): "hands holding a drop: blood donation, medical",
    ("streamline-flex-color", "blood-donate-drop"): "hands holding a drop: blood donation",
    ("streamline-flex-color", "apple"): "an apple that reads as the Apple logo",
    ("streamline-flex-color", "flower"): "the same drawing as Streamline Color's flower",
    ("streamline-cyber-color", "bomb"): "a hexagonal flask with sparks: a bottle, unclear",
    ("streamline-cyber-color", "knife-1"): "a blade outline that reads as a paper fold",
    ("streamline-cyber-color", "blood-drop"): "an outlined drop: water as much as blood",
    ("streamline-cyber-color", "baby-face"): "a hexagon with a curl: nothing clear",
    ("streamline-cyber-color", "pizza"): "an octagon with a wedge cut out: nothing clear",
    ("streamline-kameleon-color", "soldier"): "an officer's portrait: a person, no weapon",
    ("streamline-kameleon-color", "soldier-duo"): "an officer's portrait: a person, no weapon",
    ("streamline-plump-color", "home-1"): "a pentagon with a bar: nothing says house",
    ("streamline-sharp-color", "home-1"): "a pentagon outline: nothing says house",
    ("streamline-sharp-color", "tree-3"): "a cloud on a stick: tree or sign, unclear",
    ("streamline-stickies-color", "plant-1"): "a yellow leaf shape on a foot: plant or trophy",
    ("streamline-stickies-color", "nuclear-2"): "the radiation trefoil: a hazard sign",
    ("streamline-stickies-color", "nuclear-2-duo"): "the radiation trefoil: a hazard sign",
    ("streamline-ultimate-color", "blood-drop"): "a pale pink drop: nothing clear says blood",
    ("streamline-ultimate-color", "blood-drops-positive"): "drops with a plus: a blood type",
    ("streamline-ultimate-color", "martial-arts-helmet"): "a fencing mask: sport equipment",
}


def colour_items() -> list[tuple[str, str, Icon]]:
    """The colour pool's ``(source, path inside the package, icon)``.

    Raises:
        ValueError: A family of another icon set (the split is by family) or not of this set,
            or an icon listed twice or both listed and excluded.
    """
    return family_items("colour pool", COLOUR, COLOUR_FAMILIES, EXCLUDED,
                        others=(*POOL_FAMILIES, *GLYPH_FAMILIES, *CHECK_FAMILIES))  # fmt: skip
