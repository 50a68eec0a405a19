"""What each set holds: the photos listed here, the emoji and icons of the catalogue modules.

The photos of the gate set (`GATE_ITEMS`) and of the photo pool (`POOL_ITEMS`) are listed here,
one item per image; the emoji come from `scripts/gate_emoji.py` in the vendor styles of each set,
the drawing pool's icons from `scripts/draw_icons.py`, the icon pool's, the glyph pool's and
the icon check set's from `scripts/icon_pools.py`, the colour pool's from
`scripts/colour_pool.py`, the vendor pool's from `scripts/vendor_pool.py` (all imported from
``scripts/``, which the builder puts on ``sys.path``). Every label was checked by looking at
the image.
"""

from __future__ import annotations

from dataclasses import dataclass

from colour_pool import colour_items
from draw_icons import Icon, icon_items
from gate_emoji import DRAW_VENDORS, GATE_VENDORS, POOL_VENDORS, vendor_items
from icon_pools import check_items, glyph_items, pool_items
from vendor_pool import vendor_pool_items


@dataclass(frozen=True)
class Item:
    """One image: the package it comes from, its path inside, its label and what it shows."""

    source: str
    path: str
    label: str
    subject: str
    domain: str = "photo"
    license: str = ""  # this image's licence and author, when the package states one per image


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

PAL = "usr/share/palapeli/collection/"
OBJECT_ITEMS: list[Item] = [
    # photo stamps of tuxpaint-stamps-default that the gate set does not hold (other images of
    # a package it uses): objects, people, vehicles, food and animals cut out, flattened on white
    *(
        Item("tuxpaint-stamps-default", TP + path, "safe", subject)
        for path, subject in (
            ("hobbies/binoculars.png", "binoculars"),
            ("hobbies/camera_35mm.png", "35 mm camera"),
            ("hobbies/music/brass/trumpet.png", "trumpet"),
            ("hobbies/music/string/violin.png", "violin"),
            ("hobbies/music/string/guitar_electric.png", "electric guitar"),
            ("household/Lightbulb.png", "light bulb"),
            ("household/arttools/scissors_small_open.png", "small scissors, open"),
            ("household/cylinder.png", "gas cylinder"),
            ("household/dishes/pitcher_small.png", "porcelain jug"),
            ("household/dishes/utensils/pepper_grinder.png", "pepper grinder"),
            ("household/kettle.png", "electric kettle"),
            ("household/key.png", "door key"),
            ("household/rubberduck.png", "rubber duck"),
            ("household/toilet.png", "toilet"),
            ("household/tools/mallet_metal.png", "mallet"),
            ("household/tools/plyers.png", "pliers"),
            ("household/tools/saw.png", "hand saw"),
            ("household/tools/toolbox.png", "toolbox"),
            ("household/tools/wrench_adjustable.png", "adjustable wrench"),
            ("household/wheelie_bin.png", "wheelie bin"),
            ("medical/stethoscope.png", "stethoscope"),
            ("medical/syringe.png", "syringe"),
            ("people/fireman240a.png", "person in a protective suit"),
            ("people/toys/grannysmith.png", "rag doll"),
            ("space/spacewalk.png", "astronaut on a spacewalk"),
            ("sports/basketball.png", "basketball"),
            ("sports/tennis_racket.png", "tennis racket"),
            ("sports/trophy_cup.png", "trophy cup"),
            ("vehicles/auto/sportscar2.png", "sports car"),
            ("vehicles/cycle/pink_tricycle.png", "tricycle"),
            ("vehicles/flight/balloon360.png", "hot-air balloon"),
            ("vehicles/flight/planes/747.png", "airliner"),
            ("vehicles/garbagetruck.png", "rubbish truck"),
            ("vehicles/masstransit/green_korean_bus.png", "city bus"),
            ("vehicles/race/indycar.png", "racing car"),
            ("food/fruit/Cherry_Stella.png", "cherries"),
            ("food/fruit/avocado.png", "avocado"),
            ("food/fruit/grapes.png", "grapes"),
            ("food/fruit/pineapple.png", "pineapple"),
            ("food/vegetables/onion.png", "onion"),
            ("plants/mushrooms/cep.png", "cep mushroom"),
            ("animals/birds/crow.png", "crow"),
            ("animals/birds/peacock.png", "peacock"),
            ("animals/fish/lobster.png", "lobster"),
            ("animals/mammals/bears/bear.png", "brown bear"),
            ("animals/mammals/bears/toys/edward_bear.png", "teddy bear"),
            ("animals/mammals/bovines/cow.png", "cow"),
            ("animals/mammals/cats/tiger.png", "tiger"),
            ("animals/mammals/dogs/dog.png", "husky dog"),
            ("animals/mammals/equines/horse.png", "horse"),
        )
    ),
    # scenes: other images of opencv-doc and ultralytics than the gate set's, and palapeli-data
    Item("opencv-doc", CV + "messi5.jpg", "safe", "footballer kicking a ball"),
    Item("opencv-doc", CV + "box.png", "safe", "biscuit box (grey)"),
    Item("opencv-doc", CV + "box_in_scene.png", "safe", "boxes on a desk (grey)"),
    Item("opencv-doc", CV + "blox.jpg", "safe", "wooden blocks (grey)"),
    Item("opencv-doc", CV + "left.jpg", "safe", "books on a floor"),
    Item("opencv-doc", CV + "basketball2.png", "safe", "two people with a ball indoors (grey)"),
    Item("opencv-doc", CV + "ela_original.jpg", "safe", "notebook with an elastic band"),
    Item("ultralytics", "ultralytics/assets/zidane.jpg", "safe", "two men in suits"),
    Item(
        "palapeli-data",
        PAL + "castle-maintenon.jpg",
        "safe",
        "castle and garden",
        license="GFDL, Eric Pouhier",
    ),
    Item(
        "palapeli-data",
        PAL + "cincinnati-bridge.jpg",
        "safe",
        "suspension bridge at night",
        license="public domain, Derek Jensen",
    ),
    Item(
        "palapeli-data",
        PAL + "citrus-fruits.jpg",
        "safe",
        "citrus fruit slices",
        license="public domain, US Department of Agriculture",
    ),
    Item(
        "palapeli-data",
        PAL + "european-honey-bee.jpg",
        "safe",
        "honey bee on a flower",
        license="public domain, John Severns",
    ),
    Item(
        "palapeli-data",
        PAL + "panther-chameleon-female.jpg",
        "safe",
        "chameleon on a branch",
        license="GFDL, B. Navez and others",
    ),
]


GC = "usr/share/gcompris-qt/rcc/"
CAT = "categorization/resource/images/"
LIFE_ITEMS: list[Item] = [
    # everyday photos of GCompris's activities (gcompris-qt-data, a package no other set uses):
    # tools and household objects of "categorization", animals of "erase", hands of "leftright";
    # each image is a file inside the activity's Qt resource bundle (``<bundle>.rcc#<member>``),
    # its licence and author as the Debian copyright file states them for that image (the ones
    # it does not name fall under its ``Files: *``, GPL-3+). Left out: the sickle and the table
    # knife (blades), and the renamed images whose licence the copyright file does not state.
    Item(
        "gcompris-qt-data",
        f"{GC}{bundle}.rcc#gcompris/src/activities/{member}",
        "safe",
        subject,
        license=licence,
    )
    for bundle, member, subject, licence in (
        ("categorization", CAT + "others/baseball.webp", "baseball", "CC BY-SA 2.0, Tage Olsin"),
        (
            "categorization",
            CAT + "others/blackslate.webp",
            "blackboard slate",
            "CC BY-SA 3.0, Peng",
        ),
        ("categorization", CAT + "others/bucket.webp", "wooden bucket", "public domain, MarlonBSB"),
        (
            "categorization",
            CAT + "others/buffetset.webp",
            "cup and saucer",
            "public domain, Detweiler, Susan G.",
        ),
        ("categorization", CAT + "others/bulb.webp", "light bulb", "CC BY-SA 3.0, KMJ"),
        ("categorization", CAT + "others/chair.webp", "chair", "CC BY-SA 3.0, Dori"),
        ("categorization", CAT + "others/cup.webp", "cup", "CC BY-SA 4.0, Shreya13jain"),
        (
            "categorization",
            CAT + "others/erasers.webp",
            "erasers",
            "CC BY-SA 3.0, M1ss1ontomars2k4",
        ),
        (
            "categorization",
            CAT + "others/igloo.webp",
            "igloo in the snow",
            "public domain, U.S. National Oceanic and Atmospheric Administration",
        ),
        ("categorization", CAT + "others/pan.webp", "frying pan", "public domain, Suricata"),
        (
            "categorization",
            CAT + "others/pencil.webp",
            "pencils",
            "CC BY 2.0, Ole Palnatoke Andersen",
        ),
        ("categorization", CAT + "others/pillow.webp", "pillow", "CC BY-SA 3.0, mattbuck"),
        ("categorization", CAT + "others/plate.webp", "white plate", "CC BY-SA 3.0, Hannes Grobe"),
        ("categorization", CAT + "others/spoons.webp", "spoons", "CC BY-SA 3.0, Sailko"),
        (
            "categorization",
            CAT + "others/volleyball.webp",
            "volleyball",
            "public domain, Starlight~commonswiki",
        ),
        (
            "categorization",
            CAT + "others/weighingMachine.webp",
            "kitchen scale",
            "CC BY-SA 3.0, Bhaskaranaidu",
        ),
        ("categorization", CAT + "tools/hammer1.webp", "hammer", "CC BY-SA 3.0, Kszapsza"),
        ("categorization", CAT + "tools/hammer2.webp", "hammer", "CC BY-SA 3.0, Kulmalukko"),
        ("categorization", CAT + "tools/hammer3.webp", "hammer", "public domain, Evan-Amos"),
        ("categorization", CAT + "tools/hammer4.webp", "hammer", "CC BY-SA 3.0, Tjcase2"),
        ("categorization", CAT + "tools/hammer5.webp", "hammer", "public domain, Dmitry G"),
        (
            "categorization",
            CAT + "tools/measuringTape1.webp",
            "measuring tape",
            "CC BY-SA 3.0, Pastorius",
        ),
        (
            "categorization",
            CAT + "tools/measuringTape2.webp",
            "measuring tape",
            "CC BY-SA 3.0, KoS",
        ),
        (
            "categorization",
            CAT + "tools/measuringTape3.webp",
            "measuring tape",
            "CC BY 2.0, Pink Sherbet Photography",
        ),
        (
            "categorization",
            CAT + "tools/measuringTape4.webp",
            "measuring tape",
            "CC0 1.0, Douglas Perkins",
        ),
        ("categorization", CAT + "tools/multimeter1.webp", "multimeter", "CC BY-SA 3.0, Harke"),
        ("categorization", CAT + "tools/multimeter2.webp", "multimeter", "public domain, Chabrez"),
        (
            "categorization",
            CAT + "tools/nailCutter.webp",
            "nail clippers",
            "public domain, Tripy~commonswiki",
        ),
        ("categorization", CAT + "tools/plier1.webp", "pliers", "public domain, Baran Ivo"),
        ("categorization", CAT + "tools/plier2.webp", "pliers", "public domain, Dmitry G"),
        ("categorization", CAT + "tools/scissors2.webp", "scissors", "CC BY 1.0, Modeha"),
        (
            "categorization",
            CAT + "tools/screwDriver.webp",
            "screwdriver",
            "public domain, Dmitry G",
        ),
        ("categorization", CAT + "tools/screwDriver1.webp", "screwdriver", "CC BY-SA 3.0, Rasbak"),
        (
            "categorization",
            CAT + "tools/screwDriver2.webp",
            "screwdriver",
            "public domain, Dezertscorpion",
        ),
        ("categorization", CAT + "tools/screwDriver3.webp", "screwdriver", "CC BY-SA 3.0, Fvb981"),
        ("categorization", CAT + "tools/sideCutter1.webp", "side cutters", "public domain, M338"),
        ("categorization", CAT + "tools/tweezer.webp", "tweezers", "CC BY-SA 4.0, Swathysuren"),
        ("categorization", CAT + "tools/tweezer1.webp", "tweezers", "CC BY-SA 3.0, ZooFari"),
        ("categorization", CAT + "tools/wrench.webp", "wrench", "public domain, Dori"),
        ("categorization", CAT + "tools/wrench1.webp", "wrench", "public domain, Dori"),
        ("erase", "erase/resource/alpaca.webp", "alpaca", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/calf.webp", "calf", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/camels.webp", "camels", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/cheetah.webp", "cheetah", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/crab.webp", "crab", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/dolphin.webp", "dolphin", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/giraffe.webp", "giraffe", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/goat.webp", "goat", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/gorilla.webp", "gorilla", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/gosling.webp", "gosling", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/horse.webp", "horse", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/kitten.webp", "kitten", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/macaque.webp", "macaque", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/meerkats.webp", "meerkats", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/penguin.webp", "penguin", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/red_panda.webp", "red panda", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/rhinoceros.webp", "rhinoceros", "GPL-3+ (Files: *)"),
        (
            "erase",
            "erase/resource/squirrel.webp",
            "squirrel",
            "GPL-3+, Erwan Velu and Anne Nicolas",
        ),
        ("erase", "erase/resource/swans.webp", "swans on water", "GPL-3+ (Files: *)"),
        ("erase", "erase/resource/toucan.webp", "toucan", "GPL-3+ (Files: *)"),
        (
            "leftright",
            "leftright/resource/main_droite_paume_0.webp",
            "open hand, palm",
            "GPL-3+ (Files: *)",
        ),
        (
            "leftright",
            "leftright/resource/main_gauche_dessus_0.webp",
            "open hand, back",
            "GPL-3+ (Files: *)",
        ),
        (
            "leftright",
            "leftright/resource/poing_droit_dessus_0.webp",
            "fist, back of the hand",
            "GPL-3+ (Files: *)",
        ),
        (
            "leftright",
            "leftright/resource/poing_gauche_paume_0.webp",
            "fist, palm",
            "GPL-3+ (Files: *)",
        ),
    )
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


def icon_set_items(listed: list[tuple[str, str, Icon]]) -> list[Item]:
    """Icons of `scripts/icon_pools.py` (an icon pool's or the check set's), as items."""
    return [
        Item(source, path, icon.label, icon.subject, domain="emoji")
        for source, path, icon in listed
    ]


SETS = {
    "gateset": [*GATE_ITEMS, *emoji_items(GATE_VENDORS)],
    "photopool": POOL_ITEMS,
    "objectpool": OBJECT_ITEMS,
    "lifepool": LIFE_ITEMS,
    "emojipool": emoji_items(POOL_VENDORS),
    "drawpool": draw_items(),
    "iconpool": icon_set_items(pool_items()),
    "glyphpool": icon_set_items(glyph_items()),
    "colourpool": icon_set_items(colour_items()),
    "vendorpool": icon_set_items(vendor_pool_items()),
    "iconcheck": icon_set_items(check_items()),
}
