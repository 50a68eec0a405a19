"""Where every weapon-, blood- and explosion-family class of the real Open Images list goes.

`tests/data/oid_weapon_family_classes.csv` holds those rows of the published ~20k-class list
(and the decoys that merely contain such a word). Each row must be decided here: a class added to
that file without a decision, or a default set that moves a class elsewhere, fails.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from conf.loader import load_settings
from conf.settings import OpenImagesSettings
from harmscan.classtree import (
    ClassSets,
    ClassTable,
    Hierarchy,
    read_class_descriptions,
    resolve_classes,
)
from harmscan.openimages import label_images

ROOT = Path(__file__).resolve().parents[2]
SUBSET = ROOT / "tests" / "data" / "oid_weapon_family_classes.csv"
MIRROR = ROOT / "mirror" / "metadata"

# Trained on as harmful (Axe, Bow and arrow, Cannon, Tank, Missile, Bomb: through Weapon).
HARMFUL = {
    "Weapon",
    "Gun",
    "Handgun",
    "Rifle",
    "Shotgun",
    "Knife",
    "Kitchen knife",
    "Dagger",
    "Sword",
    "Blood",
    "Explosion",
    "Firearm",
    "Machine gun",
    "Sniper rifle",
    "Assault rifle",
    "Revolver",
    "Machete",
    "Bowie knife",
    "Hunting knife",
    "Throwing knife",
    "Cleaver",
    "Sabre",
    "Hatchet",
    "Throwing axe",
    "Dane axe",
    "Long-bearded axe",
    "Broadaxe",
    "Pollaxe",
    "Crossbow",
    "Spear",
    "Lance",
    "Brass knuckles",
    "Nunchaku",
    "Shuriken",
    "Cold weapon",
    "Melee weapon",
    "Ranged weapon",
    "Explosive weapon",
    "Dynamite",
    "Explosive material",
    "Mortar (Weapon)",
    "Self-propelled artillery",
    "Bombard",
    "V-1 flying bomb",
    "Gunshot",
    "Axe",
    "Bow and arrow",
    "Cannon",
    "Tank",
    "Missile",
    "Bomb",
}

# Not trained on, but an image carrying one is never a safe example.
NEVER_SAFE = {
    "Ammunition",
    "Bullet",
    "Gun accessory",
    "Blade",
    "Serrated blade",
    "Ammunition box",
    "Ammunition belt",
    "Handgun holster",
    "Gun barrel",
    "Gun turret",
    "Trigger",
    "Projectile",
    "Air gun",
    "Airsoft gun",
    "Starting pistol",
    "Escopetarra",
    "Blowgun",
    "Slingshot",
    "Utility knife",
    "Scabbard",
    "Knife throwing",
    "Axe throwing",
    "Torpedo",
    "Explosion crater",
    "Injury",
    "Burn",
    "Sniper",
    "Gunfighter",
    "Gunsmith",
    "War",
    "Violence",
    "Death",
    "Combat pistol shooting",
    "Match rifle shooting",
    "Gallery rifle shooting",
    "Churchill tank",
    "T-72",
}

# A decoy that a safe class reaches (Food > Fast food > Hot dog).
SAFE = {
    "Hot dog",
}

# Decoys and out-of-scope classes: in no set (fire, fencing, archery, tools, vehicles, ...).
IGNORED = {
    "Bloodhound",
    "Gun dog",
    "Swordfish",
    "Water gun",
    "Heat gun",
    "Heat guns",
    "Screw gun",
    "Rivet gun",
    "Needlegun scaler",
    "Gun drill",
    "Laser guns",
    "Paintball gun barrel",
    "Gunboat",
    "River gunboat",
    "Motor gun boat",
    "Gunny sack",
    "Shotgun start",
    "Triggerfish",
    "Table knife",
    "Palette knife",
    "Electric knife",
    "Marking knife",
    "Knife sharpener",
    "Knife holder",
    "Saw blade",
    "Lawn mower blade",
    "Diamond blade",
    "Pickaxe",
    "Cleaving axe",
    "Axe of perun",
    "Cleavers",
    "Spearmint",
    "Spear thistle",
    "Spearfishing",
    "Sabretooth",
    "Saber-toothed cat",
    "Foil (Weapon)",
    "Sabre (Fencing)",
    "Fencing weapon",
    "Weapon combat sports",
    "Archery",
    "Target archery",
    "Field archery",
    "Kyūdō",
    "Arrow",
    "Gladiolus",
    "Scar",
    "Blood vessel",
    "Blood orange",
    "Bloody mary",
    "Blood amaranth",
    "Blood and sand",
    "Alapaha blue blood bulldog",
    "Blood glucose test strip",
    "Blood pressure monitor",
    "Rocket",
    "Fireworks",
    "Fire",
    "Flame",
    "Smoke",
    "Wildfire",
    "Bonfire",
    "Campfire",
    "Bomber",
    "Photobombing",
    "Sake bomb",
    "Irish car bomb",
    "Bomb shot",
    "Bombolone",
    "Gunpowder tea",
    "Cannonball tree",
    "Mortar and pestle",
    "Mortar (Construction)",
    "Mortarboard",
    "Armored car (Military)",
    "Military vehicle",
    "Artillery tractor",
    "Missile boat",
    "Torpedo boat",
    "Ballistic missile submarine",
    "Guided missile destroyer",
    "Bomb vessel",
    "Ammunition ship",
    "Landing ship, tank",
    "Water tank",
    "Storage tank",
    "Fuel tank",
    "Soldier",
    "Military",
    "War machine",
    "Ballistic vest",
    "Nuclear power plant",
    "Tug of war",
    "Water fight",
    "Snowball fight",
}

WHERE = (
    dict.fromkeys(HARMFUL, "harmful")
    | dict.fromkeys(NEVER_SAFE, "never_safe")
    | dict.fromkeys(SAFE, "safe")
    | dict.fromkeys(IGNORED, "ignored")
)


def _rows() -> list[tuple[str, str]]:
    with SUBSET.open(encoding="utf-8", newline="") as fh:
        return [(r["LabelName"], r["DisplayName"]) for r in csv.DictReader(fh)]


ROWS = _rows()


@pytest.fixture(scope="module")
def default_sets() -> ClassSets:
    """The default class sets resolved against the real rows (plus the mirror's class list for the
    safe side) and the mirror's pruned copy of the real hierarchy."""
    files = OpenImagesSettings().metadata_files
    mirror = read_class_descriptions(MIRROR / files["class_descriptions"])
    names = dict(mirror.names) | dict(ROWS)
    classes = load_settings("ci", env={}).classes
    return resolve_classes(
        classes.harmful,
        classes.safe,
        ClassTable(names=names),
        Hierarchy.read(MIRROR / files["hierarchy"]),
        exclude=classes.exclude,
        never_safe=classes.never_safe,
    )


def test_subset_rows_are_unique_and_every_decision_has_a_row() -> None:
    names = [name for _, name in ROWS]
    assert len(set(names)) == len(names) == len({label_id for label_id, _ in ROWS})
    assert sum(len(s) for s in (HARMFUL, NEVER_SAFE, SAFE, IGNORED)) == len(WHERE)
    assert set(WHERE) == set(names), "a decision names a class the data file does not hold"


def _where(sets: ClassSets, label_id: str) -> str:
    if label_id in sets.harmful:
        return "harmful"
    if label_id in sets.never_safe:
        return "never_safe"
    return "safe" if label_id in sets.safe else "ignored"


@pytest.mark.parametrize(("label_id", "name"), ROWS, ids=[name for _, name in ROWS])
def test_every_weapon_blood_and_explosion_class_is_decided(
    default_sets: ClassSets, label_id: str, name: str
) -> None:
    assert name in WHERE, f"decide where {name!r} ({label_id}) goes, then add it here"
    assert _where(default_sets, label_id) == WHERE[name]


def _side(sets: ClassSets, *names: str) -> str:
    ids = {n: i for i, n in {**sets.harmful, **sets.never_safe, **sets.safe}.items()}
    ids |= {n: i for i, n in ROWS}
    labels = pd.DataFrame({"ImageID": "img", "LabelName": [ids[n] for n in names]})
    images = label_images(labels, sets)
    return str(images["label"].iloc[0]) if len(images) else "left out"


@pytest.mark.parametrize(
    ("names", "side"),
    [
        (("Firearm", "Person"), "harmful"),
        (("Machete", "Dog"), "harmful"),
        (("Ammunition", "Person"), "left out"),
        (("Gun accessory", "Blade", "Person"), "left out"),
        (("Ammunition", "Revolver", "Person"), "harmful"),
        (("Water gun", "Person"), "safe"),
        (("Gun dog", "Dog"), "safe"),
    ],
)
def test_default_sets_decide_images(
    default_sets: ClassSets, names: tuple[str, ...], side: str
) -> None:
    assert _side(default_sets, *names) == side
