"""The vendor pool (``vendorpool/``): icons of vendors no other set uses, labelled how.

`scripts/build_gate_set.py` builds it (``--only vendorpool``); this module only says what goes
in it. What limits the drawing branch is how it ranks drawing styles it never saw, and the one
lever that moved that so far is more training vendors (``glyphpool/``). Every icon here is from
an Iconify JSON package (``@iconify-json/<set>``, an icon is ``icons.json#<name>``) of a vendor
that no set uses yet, each a vendor of its own (no kin among the pools):

- WebHostingHub Glyphs (``whh``, OFL 1.1): solid glyphs, and pixel-art swords;
- Pico-icon (``picon``, OFL 1.1): blocky geometric glyphs;
- SmartIcons Glyph (``si-glyph``, CC BY-SA 4.0): solid glyphs;
- Arcticons (``arcticons``, CC BY-SA 4.0): thin line drawings of emoji (its ``emoji-*`` icons);
- Vaadin Icons (``vaadin``, Apache 2.0): solid glyphs (a bomb and a sword only).

Never the gate set's vendors (Google Noto incl. ``noto-v1`` and Material Symbols, Microsoft
Fluent incl. Fluent UI icons), the icon check set's (IconPark, Lucide, Remix, Tabler), the emoji
pool's and the mirror's (Twemoji, OpenMoji), nor a family of a vendor that already trains
(game-icons, Font Awesome incl. ``fa`` and Line Awesome's Font Awesome set, MDI incl.
``mdi-light``, Streamline, EmojiOne, Firefox OS emoji, Hugeicons, MingCute, Solar, Phosphor).

Labelling rules (those of `scripts/draw_icons.py` and `scripts/icon_pools.py`): harmful =
weapons (guns, knives, swords, axes, a bow), bombs, explosions and blood; safe = animals, plants,
food, vehicles, tools (hammer, wrench, screwdriver, saw and scissors are near misses, safe), the
space rocket, faces and people. Drawings that say something else, or nothing clear, at 128 px
are in `EXCLUDED` with the reason. Every label was checked by looking at the rendered drawing.
"""

from __future__ import annotations

from draw_icons import COLOUR_FAMILIES, VENDOR_FAMILIES, Icon, _icons
from icon_pools import CHECK_FAMILIES, GLYPH_FAMILIES, POOL_FAMILIES, family_items

# family -> the vendor kin it is held out with in the development metric: none, every family
# here is a vendor of its own (kept for the study's interface, `bench/pool_study.py`)
KIN: dict[str, str] = {}

VENDOR: list[Icon] = [
    *_icons(
        "whh",
        "harmful",
        """
        axe             | battle axe
        bomb            | round bomb with a fuse
        dagger          | dagger
        gun             | pistol
        knife           | kitchen knife
        sword           | sword
        pixelsword      | sword (pixel art)
        pixelbattleaxe  | battle axe (pixel art)
        pixeldagger     | dagger (pixel art)
        tank            | tank
        """,
    ),
    *_icons(
        "picon",
        "harmful",
        """
        axe             | axe
        gun             | pistol
        revolver        | revolver
        sword           | sword
        """,
    ),
    *_icons(
        "si-glyph",
        "harmful",
        """
        axe             | axe
        bomb-1          | aerial bomb with fins
        bomb-2          | round bomb with a fuse
        knife           | kitchen knife
        """,
    ),
    *_icons(
        "arcticons",
        "harmful",
        """
        emoji-axe              | axe
        emoji-bomb             | round bomb with a fuse
        emoji-bow-and-arrow    | bow and arrow
        emoji-collision-symbol | explosion burst
        """,
    ),
    *_icons(
        "vaadin",
        "harmful",
        """
        bomb            | bomb with a lit fuse
        sword           | sword
        """,
    ),
    *_icons(
        "whh",
        "safe",
        """
        apple           | apple
        baby            | baby
        banana          | bananas
        boat            | sailboat
        bread           | loaf of bread
        bug             | ladybird
        bus             | bus
        butterfly       | butterfly
        cactus          | cactus
        camera          | camera
        carrot          | carrot
        cat             | cat
        catface         | cat face
        cherry          | cherries
        chicken         | chicken drumstick
        cow             | cow face
        dog             | dog
        dolphin         | dolphin
        fish            | fish
        flower          | flower
        football        | football
        gift            | gift
        grapes          | grapes
        guitar          | guitar
        hammer          | hammer (a tool)
        house           | house
        icecream        | ice cream cone
        key             | key
        mug             | mug
        mushroom        | mushroom
        pear            | pear
        pizza           | pizza slice
        plane           | airplane
        rabbit          | rabbit
        scissorsalt     | scissors
        screwdriver     | screwdriver
        sheep           | sheep
        smile           | smiling face
        snowman         | snowman
        taxi            | taxi
        truck           | lorry
        umbrella        | umbrella
        wrench          | wrench
        """,
    ),
    *_icons(
        "picon",
        "safe",
        """
        bird            | bird
        burger          | hamburger
        bus             | bus
        butterfly       | butterfly
        camera          | camera
        car             | car
        cat             | cat face
        dog             | dog
        fish            | fish
        guitar          | guitar
        hammer          | hammer (a tool)
        horse           | horse
        house           | house
        icecream        | ice cream cone
        key             | key
        leaf            | leaf
        mushroom        | mushroom
        taxi            | taxi
        umbrella        | umbrella
        whale           | whale
        wrench          | wrench
        """,
    ),
    *_icons(
        "si-glyph",
        "safe",
        """
        airplane        | airplane
        baby            | baby
        bicycle-1       | bicycle
        boat            | sailboat
        bread           | loaf of bread
        bug             | ladybird
        bus             | bus
        camera          | camera
        car             | car
        cheese          | cheese
        cherry          | cherries
        cow             | cow face
        dog             | dog
        fish            | fish
        flower          | flower
        gift            | gift
        guitar          | guitar
        hammer          | hammer (a tool)
        hammer-and-wrench | hammer and wrench (tools)
        horse           | horse head
        house           | house
        key             | key
        lamp            | table lamp
        leaf            | leaf
        rocket          | space rocket (not a weapon)
        saw             | hand saw (a tool)
        train           | steam locomotive
        tree            | fir tree
        truck           | lorry
        umbrella-open   | umbrella
        wrench          | wrench
        wrench-screwdriver | wrench and screwdriver (tools)
        """,
    ),
    *_icons(
        "arcticons",
        "safe",
        """
        emoji-airplane        | airplane
        emoji-baby            | baby
        emoji-banana          | banana
        emoji-bird            | bird
        emoji-birthday-cake   | birthday cake
        emoji-bread           | loaf of bread
        emoji-bug             | caterpillar
        emoji-camera          | camera
        emoji-carrot          | carrot
        emoji-cat-face        | cat face
        emoji-chair           | chair
        emoji-cow-face        | cow face
        emoji-dog-face        | dog face
        emoji-dolphin         | dolphin
        emoji-duck            | duck
        emoji-evergreen-tree  | evergreen tree
        emoji-face-grinning   | grinning face
        emoji-face-joy        | laughing face
        emoji-face-loudly-crying | crying face
        emoji-fish            | fish
        emoji-hamburger       | hamburger
        emoji-hammer          | hammer (a tool)
        emoji-hammer-and-wrench | hammer and wrench (tools)
        emoji-carpentry-saw   | hand saw (a tool)
        emoji-screwdriver     | screwdriver
        emoji-helicopter      | helicopter
        emoji-horse-face      | horse face
        emoji-mushroom        | mushroom
        emoji-owl             | owl
        emoji-panda-face      | panda face
        emoji-penguin         | penguin
        emoji-potted-plant    | potted plant
        emoji-soccer-ball     | football
        emoji-teddy-bear      | teddy bear
        emoji-tiger-face      | tiger face
        emoji-unicorn         | unicorn face
        emoji-scooter         | kick scooter
        emoji-balloon         | balloon
        emoji-electric-light-bulb | light bulb
        emoji-hedgehog        | hedgehog
        emoji-doughnut        | doughnut
        """,
    ),
    *_icons(
        "vaadin",
        "safe",
        """
        airplane        | airplane
        anchor          | anchor
        boat            | ship
        bug             | beetle
        camera          | camera
        car             | car
        child           | child
        coffee          | cup of coffee
        gift            | gift
        glasses         | glasses
        hammer          | hammer (a tool)
        home            | house
        key             | key
        lightbulb       | light bulb
        rocket          | space rocket (not a weapon)
        scissors        | scissors
        screwdriver     | screwdriver
        smiley-o        | smiling face
        taxi            | taxi
        train           | tram
        truck           | lorry
        umbrella        | umbrella
        user            | person
        wrench          | wrench
        piggy-bank      | piggy bank
        """,
    ),
]

# Drawn as something other than what the name says, or neither harmful nor safe.
EXCLUDED: dict[tuple[str, str], str] = {
    ("whh", "bullet"): "a cartridge: ammunition, not a weapon",
    ("whh", "circleknife"): "a knife on a black disc: a badge or sign",
    ("whh", "pixelbroadsword"): "the same pixel sword as pixelsword again",
    ("whh", "pixelbastardsword"): "the same pixel sword as pixelsword again",
    ("whh", "egg"): "a black oval: nothing says egg",
    ("whh", "train"): "a disc on a stand: nothing says train",
    ("picon", "ammo"): "three cartridges: ammunition, not a weapon",
    ("picon", "boomerang"): "a toy",
    ("picon", "apple"): "reads as the Apple logo",
    ("picon", "baby"): "blocky shapes: nothing clear",
    ("picon", "bike"): "squares on a stick figure: nothing clear",
    ("picon", "cow"): "blocky shapes: nothing clear",
    ("picon", "pig"): "a blob with an ear: nothing clear",
    ("picon", "rabbit"): "a blob with an ear: nothing clear",
    ("picon", "tree"): "blocky shapes: nothing clear",
    ("picon", "truck"): "blocky shapes: nothing clear",
    ("picon", "saw"): "a jagged triangle: nothing clear",
    ("si-glyph", "multifunction-knife"): "a Swiss army knife: a tool",
    ("si-glyph", "tank"): "diving cylinders, not a tank",
    ("si-glyph", "blood-bag"): "a transfusion bag: medical",
    ("si-glyph", "pizza"): "a wheel of wedges: nothing says pizza",
    ("si-glyph", "sheep"): "a face with a cloud: nothing clear",
    ("arcticons", "dagger"): "an app icon: a squiggle, nothing says dagger",
    ("arcticons", "emoji-droplet"): "an outlined drop: water as much as blood",
    ("arcticons", "emoji-maple-leaf"): "reads as a cannabis leaf",
    ("vaadin", "bullets"): "a bulleted list, not ammunition",
    ("vaadin", "cutlery"): "cutlery, not the kitchen knife of the harmful side",
}


def vendor_pool_items() -> list[tuple[str, str, Icon]]:
    """The vendor pool's ``(source, path inside the package, icon)``.

    Raises:
        ValueError: A family of another icon set (the split is by family, and every vendor
            here must be new), or not of this set, or an icon listed twice or both listed and
            excluded.
    """
    used = (*COLOUR_FAMILIES, *POOL_FAMILIES, *GLYPH_FAMILIES, *CHECK_FAMILIES)
    return family_items("vendor pool", VENDOR, VENDOR_FAMILIES, EXCLUDED, others=used)
