"""The icon pool (``iconpool/``) and the icon check set (``iconcheck/``): which icons, labelled how.

`scripts/build_gate_set.py` builds both; this module only says what goes in them. Every icon
comes from an Iconify JSON package (``@iconify-json/<set>``, an icon is ``icons.json#<name>``)
of a vendor that no other set uses (not the gate set's Noto and Fluent, not the mirror's Twemoji,
OpenMoji and openclipart, not the drawing pool's EmojiOne, Firefox OS emoji, game-icons and Font
Awesome). The two sets are split **by icon family**, never by glyph:

- ``iconpool/`` trains the probe (``train.extra_train_sets``): Material Design Icons (``mdi``),
  Phosphor (regular and fill weights) and Streamline Emojis (colour emoji);
- ``glyphpool/`` may train it too: three more families, each a vendor of its own (Hugeicons'
  stroke icons, MingCute's line and fill weights, Solar's linear and bold weights), so the probe
  sees more drawing styles than the seven vendors of ``drawpool/`` and ``iconpool/``;
- ``iconcheck/`` is held out: Tabler, Lucide, Remix Icon and IconPark. Nothing trains on it or
  picks a threshold with it; `bench/gate_study.py` scores it, so icons get a held-out figure.

Labelling rules (those of `scripts/draw_icons.py` and `scripts/gate_emoji.py`): harmful =
weapons (guns, knives, swords, axes, bows), bombs, explosions and blood; safe = animals, plants,
food, vehicles, tools (hammer, wrench, scissors and saw are near misses, safe), faces and people.
Icons whose drawing says something else, or nothing clear, at 128 px are in `EXCLUDED` with the
reason. Every label was checked by looking at the rendered icon. The domain is ``emoji`` (the
metrics know ``photo``, ``illustration`` and ``emoji``, and the maintainers' private set groups
"emoji and icons"). Left out on purpose: ``noto-v1`` (Noto's older drawing, but the gate set's
vendor), ``emojione-v1`` (EmojiOne, the drawing pool's vendor), ``fa6-solid`` (Font Awesome
again), Material Symbols (Google's Material drawing, the kin of ``mdi``: it would leak across
the split); for ``glyphpool/`` also Fluent UI System icons and Fluent colour icons (Microsoft's
design system, the kin of the gate set's Fluent emoji, whose high-contrast style is black glyphs
too), Streamline's other styles (Streamline Emojis' vendor again), and the sets that draw no
weapon or one or two (Bootstrap Icons, Carbon, Icons8's sets, Flat Color Icons, Health Icons,
Boxicons, TDesign, Pixelarticons, Akar Icons, Iconoir, Unicons).
"""

from __future__ import annotations

from draw_icons import Icon, _icons, icon_items

POOL_FAMILIES = ("mdi", "phosphor", "streamline-emojis")
GLYPH_FAMILIES = ("hugeicons", "mingcute", "solar")
CHECK_FAMILIES = ("tabler", "lucide", "remixicon", "icon-park")

POOL: list[Icon] = [
    *_icons(
        "mdi",
        "harmful",
        """
        pistol          | pistol
        sword           | sword
        sword-cross     | crossed swords
        knife-military  | combat knife
        knife           | kitchen knife
        axe-battle      | battle axe
        axe             | axe
        bomb            | bomb with a fuse
        nuke            | mushroom cloud (explosion)
        bow-arrow       | bow and arrow
        spear           | spear
        tank            | battle tank
        """,
    ),
    *_icons(
        "phosphor",
        "harmful",
        """
        axe             | axe
        axe-fill        | axe (filled)
        bomb            | bomb
        bomb-fill       | bomb (filled)
        knife           | kitchen knife
        knife-fill      | kitchen knife (filled)
        sword           | sword
        sword-fill      | sword (filled)
        """,
    ),
    *_icons(
        "streamline-emojis",
        "harmful",
        """
        pistol          | revolver
        bomb            | bomb with a lit fuse
        collision       | explosion burst
        """,
    ),
    *_icons(
        "mdi",
        "safe",
        """
        dog             | dog
        cat             | cat
        horse           | horse
        cow             | cow
        rabbit          | rabbit
        duck            | duck
        fish            | fish
        turtle          | turtle
        butterfly       | butterfly
        bee             | bee
        elephant        | elephant
        owl             | owl
        penguin         | penguin
        tree            | tree
        pine-tree       | pine tree
        flower          | flower
        cactus          | cactus
        food-apple      | apple
        carrot          | carrot
        pizza           | pizza slice
        hamburger       | hamburger
        cupcake         | cupcake
        coffee          | coffee cup
        car             | car
        bus             | bus
        bicycle         | bicycle
        airplane        | airplane
        ferry           | ferry
        tractor         | tractor
        hammer          | hammer (a tool)
        wrench          | wrench
        screwdriver     | screwdriver
        hand-saw        | hand saw (a tool)
        scissors-cutting | scissors cutting along a line
        face-man        | man's face
        face-woman      | woman's face
        baby-face       | baby face
        human-child     | child
        account         | person
        run             | person running
        emoticon-happy  | smiling face
        home            | house
        umbrella        | umbrella
        guitar-acoustic | guitar
        soccer          | football
        camera          | camera
        lightbulb       | light bulb
        book-open-variant | open book
        """,
    ),
    *_icons(
        "phosphor",
        "safe",
        """
        dog             | dog
        cat             | cat
        horse           | horse (chess knight)
        cow             | cow
        rabbit          | rabbit
        bird            | bird
        fish            | fish
        butterfly       | butterfly
        tree            | tree
        flower          | flower
        plant           | plant
        carrot          | carrot
        pizza           | pizza slice
        hamburger       | hamburger
        coffee          | coffee cup
        car             | car
        bus             | bus
        bicycle         | bicycle
        airplane        | airplane
        boat            | boat
        hammer          | hammer (a tool)
        wrench          | wrench
        scissors        | scissors
        screwdriver     | screwdriver
        baby            | baby
        person          | person
        smiley          | smiling face
        house           | house
        umbrella        | umbrella
        guitar          | guitar
        soccer-ball     | football
        camera          | camera
        dog-fill        | dog (filled)
        cat-fill        | cat (filled)
        bird-fill       | bird (filled)
        fish-fill       | fish (filled)
        tree-fill       | tree (filled)
        flower-fill     | flower (filled)
        car-fill        | car (filled)
        airplane-fill   | airplane (filled)
        hammer-fill     | hammer (filled)
        smiley-fill     | smiling face (filled)
        house-fill      | house (filled)
        person-fill     | person (filled)
        """,
    ),
    *_icons(
        "streamline-emojis",
        "safe",
        """
        grinning-face   | grinning face
        face-with-tears-of-joy | laughing face
        smiling-face-with-heart-eyes | face with heart eyes
        thinking-face   | thinking face
        crying-face     | crying face
        smiling-face-with-sunglasses | face with sunglasses
        baby-1          | baby
        girl-1          | girl
        boy-1           | boy
        woman-1         | woman
        man-1           | man
        old-woman-1     | old woman
        man-running-1   | man running
        man-cook-1      | cook
        woman-scientist-1 | scientist
        dog-face        | dog face
        cat-face        | cat face
        horse           | horse
        cow             | cow
        rabbit-face     | rabbit face
        panda-face      | panda face
        lion-face       | lion face
        penguin-1       | penguin
        frog-face       | frog face
        turtle          | turtle
        dolphin         | dolphin
        elephant        | elephant
        palm-tree       | palm tree
        sunflower-1     | sunflower
        tulip           | tulip
        red-apple       | apple
        strawberry-1    | strawberry
        watermelon-1    | watermelon slice
        pizza-1         | pizza slice
        hamburger-1     | hamburger
        birthday-cake-1 | birthday cake
        hot-beverage-1  | hot drink
        automobile      | car
        bus             | bus
        bicycle         | bicycle
        airplane        | airplane
        ship            | ship
        tractor         | tractor
        fire-engine     | fire engine
        rocket          | space rocket (not a weapon)
        wrench          | wrench
        nut-and-bolt    | nut and bolt
        guitar          | guitar
        house-with-garden | house with a garden
        umbrella        | umbrella
        """,
    ),
]

GLYPH_POOL: list[Icon] = [
    *_icons(
        "hugeicons",
        "harmful",
        """
        axe             | axe
        bomb            | bomb with a fuse
        gun             | pistol
        knife-01        | cleaver
        knife-02        | kitchen knife
        sword-01        | sword
        sword-02        | sword
        sword-03        | crossed swords
        swords          | crossed swords
        """,
    ),
    *_icons(
        "mingcute",
        "harmful",
        """
        axe-line        | axe
        axe-fill        | axe (filled)
        bomb-line       | bomb with a lit fuse
        bomb-fill       | bomb with a lit fuse (filled)
        knife-line      | kitchen knife
        knife-fill      | kitchen knife (filled)
        sword-line      | sword
        sword-fill      | sword (filled)
        tank-line       | battle tank
        tank-fill       | battle tank (filled)
        """,
    ),
    *_icons(
        "solar",
        "harmful",
        """
        bomb-linear     | bomb with a lit fuse
        bomb-bold       | bomb with a lit fuse (filled)
        bomb-minimalistic-linear | bomb with a lit fuse
        bomb-minimalistic-bold | bomb with a lit fuse (filled)
        """,
    ),
    *_icons(
        "hugeicons",
        "safe",
        """
        cat             | cat face
        horse           | horse
        rabbit          | rabbit
        fish            | fish
        turtle          | turtle
        bird            | bird
        pine-tree       | pine tree
        tree-01         | tree
        flower          | flower
        cactus          | cactus in a pot
        plant-01        | sprouting plant
        leaf-01         | leaf
        carrot          | carrot
        pizza-01        | pizza slice
        hamburger-01    | hamburger
        birthday-cake   | cupcake with a candle
        coffee-01       | coffee cup
        car-01          | car
        bus-01          | bus
        bicycle         | bicycle
        plane           | airplane
        ship            | ship
        boat            | boat
        tractor         | tractor
        hammer          | hammer (a tool)
        wrench-01       | wrench
        scissors        | scissors
        man             | man
        woman           | woman
        baby-01         | baby face
        child           | child's face
        smile           | smiling face
        home-01         | house
        umbrella        | umbrella
        guitar          | guitar
        football        | football
        camera-01       | camera
        bulb            | light bulb
        book-01         | book
        rocket          | space rocket (not a weapon)
        """,
    ),
    *_icons(
        "mingcute",
        "safe",
        """
        dog-line        | dog face
        cat-line        | cat face
        rabbit-line     | rabbit face
        fish-line       | fish
        butterfly-line  | butterfly
        bird-line       | bird
        tree-line       | pine tree
        flower-line     | tulip
        cactus-line     | cactus
        leaf-line       | leaf
        apple-fruit-line | apple
        carrot-line     | carrot
        pizza-line      | pizza
        hamburger-line  | hamburger
        cake-line       | birthday cake
        car-line        | car
        bus-line        | bus
        bike-line       | bicycle
        airplane-line   | airplane
        ship-line       | ship
        hammer-line     | hammer (a tool)
        screwdriver-line | screwdriver
        scissors-line   | scissors
        baby-line       | baby face
        user-1-line     | person
        run-line        | person running
        home-1-line     | house
        umbrella-line   | umbrella
        guitar-line     | guitar
        football-line   | football
        camera-line     | camera
        bulb-line       | light bulb
        book-2-line     | book
        rocket-line     | space rocket (not a weapon)
        dog-fill        | dog face (filled)
        cat-fill        | cat face (filled)
        fish-fill       | fish (filled)
        bird-fill       | bird (filled)
        tree-fill       | pine tree (filled)
        flower-fill     | tulip (filled)
        car-fill        | car (filled)
        airplane-fill   | airplane (filled)
        hammer-fill     | hammer (filled)
        home-1-fill     | house (filled)
        user-1-fill     | person (filled)
        """,
    ),
    *_icons(
        "solar",
        "safe",
        """
        cat-linear      | cat face
        cat-bold        | cat face (filled)
        leaf-linear     | leaf
        leaf-bold       | leaf (filled)
        paw-linear      | paw print
        car-linear      | car
        car-bold        | car (filled)
        bus-linear      | bus
        tram-linear     | tram
        bicycling-linear | person cycling
        scissors-linear | scissors
        house-linear    | house
        house-bold      | house (filled)
        umbrella-linear | umbrella
        umbrella-bold   | umbrella (filled)
        football-linear | football
        camera-linear   | camera
        camera-bold     | camera (filled)
        rocket-linear   | space rocket (not a weapon)
        rocket-bold     | space rocket (filled)
        book-linear     | book
        tea-cup-linear  | cup of tea
        cup-hot-linear  | hot mug
        gift-linear     | gift box
        glasses-linear  | glasses
        key-linear      | key
        sofa-linear     | sofa
        t-shirt-linear  | T-shirt
        balloon-linear  | balloon
        bed-linear      | bed
        bottle-linear   | bottle
        music-note-linear | musical note
        smile-circle-linear | smiling face
        sun-linear      | sun
        heart-linear    | heart
        user-linear     | person
        user-bold       | person (filled)
        """,
    ),
]

CHECK: list[Icon] = [
    *_icons(
        "tabler",
        "harmful",
        """
        axe             | axe
        bomb            | bomb
        bomb-filled     | bomb (filled)
        sword           | sword
        swords          | crossed swords
        tank            | battle tank
        """,
    ),
    *_icons(
        "lucide",
        "harmful",
        """
        axe             | axe
        bomb            | bomb
        bow-arrow       | bow and arrow
        sword           | sword
        swords          | crossed swords
        """,
    ),
    *_icons(
        "remixicon",
        "harmful",
        """
        knife-line       | kitchen knife
        knife-fill       | kitchen knife (filled)
        knife-blood-line | knife dripping blood
        knife-blood-fill | knife dripping blood (filled)
        sword-line       | crossed swords
        sword-fill       | crossed swords (filled)
        """,
    ),
    *_icons(
        "icon-park",
        "harmful",
        """
        holy-sword      | sword
        kitchen-knife   | cleaver
        """,
    ),
    *_icons(
        "tabler",
        "safe",
        """
        dog             | dog
        cat             | cat
        horse           | horse
        fish            | fish
        butterfly       | butterfly
        pig             | pig
        deer            | deer
        paw             | paw print
        tree            | tree
        plant           | potted plant
        leaf            | leaf
        mushroom        | mushroom
        apple           | apple
        carrot          | carrot
        pizza           | pizza slice
        burger          | burger
        coffee          | coffee cup
        car             | car
        bus             | bus
        bike            | person cycling
        plane           | airplane
        ship            | ship
        hammer          | hammer (a tool)
        tool            | wrench
        scissors        | scissors
        mood-smile      | smiling face
        baby-carriage   | pram
        user            | person
        home            | house
        umbrella        | umbrella
        camera          | camera
        """,
    ),
    *_icons(
        "lucide",
        "safe",
        """
        dog             | dog
        cat             | cat
        rabbit          | rabbit
        fish            | fish
        bird            | bird
        turtle          | turtle
        snail           | snail
        squirrel        | squirrel
        tree-pine       | pine tree
        flower          | flower
        apple           | apple
        carrot          | carrot
        pizza           | pizza slice
        sandwich        | sandwich
        coffee          | coffee cup
        car             | car
        bus             | bus
        bike            | person cycling
        plane           | airplane
        ship            | ship
        hammer          | hammer (a tool)
        wrench          | wrench
        scissors        | scissors
        smile           | smiling face
        baby            | baby face
        user            | person
        house           | house
        umbrella        | umbrella
        guitar          | guitar
        camera          | camera
        """,
    ),
    *_icons(
        "remixicon",
        "safe",
        """
        bear-smile-line | bear face
        bug-line        | beetle
        plant-line      | potted plant
        leaf-line       | leaf
        cup-line        | cup
        goblet-line     | cocktail glass
        car-line        | car
        bus-line        | bus
        bike-line       | bicycle
        plane-line      | airplane
        ship-line       | ship
        hammer-line     | hammer (a tool)
        tools-line      | screwdriver and wrench crossed (tools)
        scissors-line   | scissors
        emotion-happy-line | smiling face
        user-line       | person
        home-line       | house
        umbrella-line   | umbrella
        camera-line     | camera
        football-line   | football
        """,
    ),
    *_icons(
        "icon-park",
        "safe",
        """
        dog             | dog face
        cat             | cat face
        rabbit          | rabbit face
        fish            | fish
        bird            | bird
        tree            | tree
        cactus          | cactus
        carrot          | carrot
        hamburger       | hamburger
        car             | car
        bus             | bus
        airplane        | airplane
        ship            | ship
        scissors        | scissors
        smiling-face    | smiling face
        baby            | baby face
        people          | person
        home            | house
        umbrella        | umbrella
        camera          | camera
        """,
    ),
]

# Drawn as something other than a weapon, or nothing clear at 128 px: in neither label.
EXCLUDED: dict[tuple[str, str], str] = {
    ("mdi", "mace"): "a stick with a star that reads as a sparkler",
    ("mdi", "shuriken"): "a four-pointed star",
    ("mdi", "fencing"): "two fencers with foils: a sport",
    ("tabler", "boom"): "a jagged outline: an explosion or a highlight, unclear",
    ("tabler", "boom-filled"): "a jagged blot: an explosion or a highlight, unclear",
    ("tabler", "blade"): "a razor blade",
    ("tabler", "guitar-pick"): "a rounded triangle: nothing in it says guitar pick",
    ("lucide", "pocket-knife"): "a Swiss army knife: a tool, unclear",
    ("icon-park", "blade"): "a razor blade",
    ("icon-park", "apple"): "the Apple logo",
    ("remixicon", "cake-line"): "a block with a candle: nothing in it says cake",
    ("hugeicons", "blood"): "two outlined drops: water as much as blood",
    ("hugeicons", "knife-bread"): "a serrated bread knife: cutlery, unclear",
    ("hugeicons", "pocket-knife"): "a Swiss army knife: a tool, unclear",
    ("hugeicons", "ammo"): "cartridges: ammunition, not harmful enough to train on",
    ("hugeicons", "bullet"): "a cartridge: ammunition, not harmful enough to train on",
    ("hugeicons", "pickaxe"): "a pickaxe: a tool drawn like a weapon",
    ("hugeicons", "apple"): "the Apple logo",
    ("mingcute", "boom-line"): "a jagged outline: an explosion or a highlight, unclear",
    ("mingcute", "boom-fill"): "a jagged blot: an explosion or a highlight, unclear",
    ("solar", "bomb-emoji-linear"): "a bomb with a face: a character, unclear",
    ("solar", "bomb-emoji-bold"): "a bomb with a face: a character, unclear",
    ("solar", "bomb-broken"): "a broken ring with a spark: nothing clear",
    ("solar", "plane-2-linear"): "a paper plane (send), not an airplane",
}


def family_items(
    name: str, icons: list[Icon], families: tuple[str, ...],
    excluded: dict[tuple[str, str], str], others: tuple[str, ...] = (),
) -> list[tuple[str, str, Icon]]:  # fmt: skip
    """An icon set's ``(source, path inside the package, icon)``: the split is by family, so
    none of ``families`` may be in ``others`` (the families of the other icon sets), and every
    icon must be of ``families``.

    Raises:
        ValueError: A family shared with another set, an icon of another family, an icon listed
            twice or both listed and excluded.
    """
    shared = sorted(set(families) & set(others))
    if shared:
        raise ValueError(f"icon families {shared} are in the {name} and another icon set")
    wrong = sorted({i.iconset for i in icons} - set(families))
    if wrong:
        raise ValueError(f"icon families {wrong} are not of this set; valid: {', '.join(families)}")
    return icon_items(icons, excluded)


def pool_items() -> list[tuple[str, str, Icon]]:
    """The icon pool's ``(source, path inside the package, icon)``."""
    return family_items("icon pool", POOL, POOL_FAMILIES, EXCLUDED)


def glyph_items() -> list[tuple[str, str, Icon]]:
    """The glyph pool's ``(source, path inside the package, icon)``.

    Raises:
        ValueError: A family also in the icon pool or the check set, or an icon of another family.
    """
    return family_items("glyph pool", GLYPH_POOL, GLYPH_FAMILIES, EXCLUDED,
                        others=(*POOL_FAMILIES, *CHECK_FAMILIES))  # fmt: skip


def check_items() -> list[tuple[str, str, Icon]]:
    """The icon check set's ``(source, path inside the package, icon)``.

    Raises:
        ValueError: A family in a pool and the check set (the split is by family), or an icon
            of another family.
    """
    shared = sorted({*POOL_FAMILIES, *GLYPH_FAMILIES} & set(CHECK_FAMILIES))
    if shared:  # the held-out side of the split: said so in its own words
        raise ValueError(f"icon families {shared} are in both the pool and the check set")
    return family_items("check set", CHECK, CHECK_FAMILIES, EXCLUDED)
