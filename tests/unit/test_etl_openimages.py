"""Class resolution, hierarchy expansion and label filtering on small in-memory OIDv7 files."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from harmscan.classtree import (
    ClassResolutionError,
    Hierarchy,
    read_class_descriptions,
    resolve_classes,
    resolve_name,
)
from harmscan.openimages import MetadataError, filter_labels, label_images, read_image_index

CLASSES = """LabelName,DisplayName
/m/weapon,Weapon
/m/handgun,Handgun
/m/knife,Knife
/m/kknife,Kitchen knife
/m/sharpener,Knife sharpener
/m/pocketknife,Pocketknife
/m/blood,Blood
/m/bloodhound,Bloodhound
/m/bloodorange,Blood orange
/m/person,Person
/m/face,Human face
/m/dog,Dog
/m/jag1,Jaguar
/m/jag2,Jaguar
/m/toy,Toy
/m/toygun,Toy gun
"""

HIERARCHY = {
    "LabelName": "/m/entity",
    "Subcategory": [
        {
            "LabelName": "/m/weapon",
            "Subcategory": [
                {"LabelName": "/m/handgun"},
                {"LabelName": "/m/knife", "Subcategory": [{"LabelName": "/m/kknife"}]},
                {"LabelName": "/m/toygun"},
            ],
        },
        {"LabelName": "/m/person", "Part": [{"LabelName": "/m/face"}]},
        {"LabelName": "/m/toy", "Subcategory": [{"LabelName": "/m/toygun"}]},
        {"LabelName": "/m/dog"},
    ],
}


@pytest.fixture
def table():
    return read_class_descriptions(io.BytesIO(CLASSES.encode()))


@pytest.fixture
def hierarchy():
    return Hierarchy.from_json(HIERARCHY)


def test_headerless_class_file_reads_the_same(table):
    headerless = read_class_descriptions(io.BytesIO(CLASSES.split("\n", 1)[1].encode()))
    assert headerless.names == table.names
    assert table.names["/m/blood"] == "Blood"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Blood", ["/m/blood"]),  # not Bloodhound, not Blood orange
        ("Knife", ["/m/knife"]),  # not Knife sharpener, not Pocketknife
        ("knife", ["/m/knife"]),  # case-insensitive only as a fallback
        ("/m/jag2", ["/m/jag2"]),  # an id names itself
        ("Person", ["/m/person"]),
    ],
)
def test_names_resolve_to_exact_ids(table, name, expected):
    assert resolve_name(name, table) == expected


def test_unknown_name_suggests_closest(table):
    with pytest.raises(
        ClassResolutionError, match=r"unknown Open Images class 'Handgunn'.*'Handgun'"
    ):
        resolve_name("Handgunn", table)


def test_unknown_short_name_suggests_names_containing_it(table):
    with pytest.raises(ClassResolutionError, match=r"'Gun'.*did you mean.*'Handgun'"):
        resolve_name("Gun", table)


def test_ambiguous_name_fails_listing_ids_unless_all(table):
    with pytest.raises(ClassResolutionError, match=r"ambiguous.*/m/jag1.*/m/jag2"):
        resolve_name("Jaguar", table)
    assert resolve_name("Jaguar", table, on_ambiguous="all") == ["/m/jag1", "/m/jag2"]


def test_hierarchy_descendants_follow_subcategories_not_parts(hierarchy):
    assert hierarchy.descendants("/m/weapon") == {
        "/m/handgun",
        "/m/knife",
        "/m/kknife",
        "/m/toygun",
    }
    assert hierarchy.descendants("/m/person") == set()  # "Human face" is a Part


def test_expansion_excludes_decoys_and_exclusions(table, hierarchy):
    sets = resolve_classes(
        ["Weapon", "Blood"], ["Person", "Dog"], table, hierarchy, exclude=["Toy"]
    )
    assert set(sets.harmful) == {
        "/m/weapon",
        "/m/handgun",
        "/m/knife",
        "/m/kknife",
        "/m/blood",
    }
    assert "/m/sharpener" not in sets.harmful
    assert "/m/bloodhound" not in sets.harmful
    assert "/m/bloodorange" not in sets.harmful
    assert set(sets.safe) == {"/m/person", "/m/dog"}
    assert sets.harmful["/m/kknife"] == "Kitchen knife"


def test_without_hierarchy_no_expansion(table):
    sets = resolve_classes(["Knife"], ["Dog"], table, None)
    assert set(sets.harmful) == {"/m/knife"}


def test_a_bad_name_is_named_with_its_setting_and_an_emptied_side_is_named(table, hierarchy):
    for setting in ("harmful", "safe", "exclude", "never_safe"):
        lists = {"harmful": ["Knife"], "safe": ["Dog"], "exclude": [], "never_safe": []}
        lists[setting] = [*lists[setting], "Handgunn"]
        with pytest.raises(
            ClassResolutionError, match=rf"^classes\.{setting}: unknown .*'Handgun'"
        ):
            resolve_classes(
                lists["harmful"], lists["safe"], table, hierarchy,
                exclude=lists["exclude"], never_safe=lists["never_safe"],
            )  # fmt: skip
    with pytest.raises(ClassResolutionError, match=r"^classes\.safe has no classes left"):
        resolve_classes(["Knife"], ["Dog"], table, hierarchy, exclude=["Dog"])


def test_id_on_both_sides_stays_harmful(table, hierarchy):
    sets = resolve_classes(["Weapon"], ["Toy"], table, hierarchy)
    assert "/m/toygun" in sets.harmful
    assert "/m/toygun" not in sets.safe


LABELS = """ImageID,Source,LabelName,Confidence
img1,verification,/m/knife,1
img1,verification,/m/person,1
img2,verification,/m/person,1
img2,verification,/m/dog,1
img3,verification,/m/knife,0
img3,verification,/m/dog,1
img4,crowdsource-verification,/m/bloodhound,1
img5,verification,/m/sharpener,1
img6,verification,/m/handgun,1
img6,verification,/m/kknife,1
img7,verification,/m/blood,1.0
img8,machine,/m/knife,1
img8,verification,/m/dog,1
"""


@pytest.mark.parametrize("chunk_rows", [1000, 1_000_000])
def test_filter_keeps_only_positive_rows_of_wanted_ids(table, hierarchy, chunk_rows):
    sets = resolve_classes(["Weapon", "Blood"], ["Person", "Dog"], table, hierarchy)
    seen: list[int] = []
    rows = filter_labels(
        io.BytesIO(LABELS.encode()), sets.all_ids, chunk_rows=chunk_rows, on_rows=seen.append
    )
    assert sum(seen) == LABELS.count("\n") - 1
    assert set(rows["ImageID"]) == {"img1", "img2", "img3", "img6", "img7", "img8"}
    assert set(rows[rows["ImageID"] == "img8"]["LabelName"]) == {"/m/dog"}  # machine label ignored
    assert not ((rows["ImageID"] == "img3") & (rows["LabelName"] == "/m/knife")).any()


def test_image_with_any_harmful_label_is_never_safe(table, hierarchy):
    sets = resolve_classes(["Weapon", "Blood"], ["Person", "Dog"], table, hierarchy)
    rows = filter_labels(io.BytesIO(LABELS.encode()), sets.all_ids).assign(Subset="validation")
    images = label_images(rows, sets).set_index("image_id")
    assert images.loc["img1", "label"] == "harmful"
    assert images.loc["img1", "source_labels"] == "Knife"  # its safe label is not listed
    assert images.loc["img2", "label"] == "safe"
    assert images.loc["img2", "source_labels"] == "Dog;Person"
    assert images.loc["img3", "label"] == "safe"  # knife verified ABSENT
    assert images.loc["img6", "source_labels"] == "Handgun;Kitchen knife"
    assert images.loc["img7", "label"] == "harmful"
    assert images.loc["img8", "label"] == "safe"  # only a machine said "knife"
    assert set(images["subset"]) == {"validation"}


def test_never_safe_keeps_images_off_the_safe_side_through_the_hierarchy(table, hierarchy):
    # Toy > Toy gun: Toy gun is also under Weapon, so it stays harmful; Toy itself is never_safe.
    sets = resolve_classes(
        ["Blood"], ["Person", "Dog"], table, hierarchy, never_safe=["Knife", "Toy"]
    )
    assert set(sets.never_safe) == {"/m/knife", "/m/kknife", "/m/toy", "/m/toygun"}
    assert "/m/knife" in sets.all_ids
    rows = pd.DataFrame(
        {
            "ImageID": ["a", "a", "b", "b", "c", "c", "c", "d"],
            "LabelName": [
                "/m/kknife",  # never_safe only through Knife > Kitchen knife
                "/m/person",
                "/m/toy",
                "/m/dog",
                "/m/knife",
                "/m/blood",
                "/m/person",
                "/m/dog",
            ],
        }
    )
    images = label_images(rows, sets).set_index("image_id")
    assert set(images.index) == {"c", "d"}  # a and b are left out
    assert images.loc["c", "label"] == "harmful"
    assert images.loc["c", "source_labels"] == "Blood"
    assert images.loc["d", "label"] == "safe"
    only_never_safe = label_images(rows[rows["ImageID"] == "a"], sets)
    assert only_never_safe.empty
    assert list(only_never_safe.columns) == ["image_id", "label", "source_labels"]


def test_harmful_wins_over_never_safe(table, hierarchy):
    sets = resolve_classes(["Weapon"], ["Dog"], table, hierarchy, never_safe=["Toy"])
    assert "/m/toygun" in sets.harmful
    assert set(sets.never_safe) == {"/m/toy"}


def test_empty_filter_result_has_columns(table):
    rows = filter_labels(io.BytesIO(LABELS.encode()), {"/m/nothing"})
    assert list(rows.columns) == ["ImageID", "LabelName"]
    assert rows.empty


IMAGE_HEADER = (
    "ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,Title,"
    "OriginalSize,OriginalMD5,Thumbnail300KURL,Rotation"
)
CC_BY = "https://creativecommons.org/licenses/by/2.0/"
IMAGES = "\n".join(
    [
        IMAGE_HEADER,
        f'img1,validation,https://x/1.jpg,https://l/1,{CC_BY},https://a/1,"Doe, Jane",'
        '"A title, with comma",1234,abc==,https://t/1.jpg,90.0',
        f"img2,validation,https://x/2.jpg,https://l/2,{CC_BY},https://a/2,Joe,T,1000,def==,"
        "https://t/2.jpg,",
        "img9,validation,https://x/9.jpg,https://l/9,lic,https://a/9,Z,T,1,g==,https://t/9.jpg,0.0",
        "",
    ]
)


def test_image_index_keeps_wanted_rows_and_parses_rotation():
    index = read_image_index(io.BytesIO(IMAGES.encode()), ["img1", "img2"]).set_index("ImageID")
    assert sorted(index.index) == ["img1", "img2"]
    assert index.loc["img1", "Author"] == "Doe, Jane"
    assert index.loc["img1", "Rotation"] == 90.0
    assert pd.isna(index.loc["img2", "Rotation"])


LABEL_HEADER = "ImageID,Source,LabelName,Confidence\n"
IMAGE_HEADER = "ImageID,Subset,OriginalURL,License,Author,Rotation\n"


@pytest.mark.parametrize(
    ("read", "text", "says"),
    [
        ("labels", "ImageID,Source,LabelName\nx,verification,/m/1\n", "Column 'Confidence'"),
        ("labels", LABEL_HEADER + "x,verification,/m/1,yes\n", "invalid value 'yes'"),
        ("labels", "", "Empty CSV file"),
        ("labels", LABEL_HEADER + "x,verification,/m/1,1,extra\n", "Expected 4 columns, got 5"),
        ("labels", "<html><body>404</body></html>\n", "its first line: '<html><body>404"),
        ("images", IMAGE_HEADER + "x,train,u,l,a,abc\n", "invalid value 'abc'"),
        ("images", "ImageID,Subset,OriginalURL,License,Author\nx,t,u,l,a\n", "Column 'Rotation'"),
    ],
)
def test_unreadable_metadata_names_the_file_and_the_columns(tmp_path, read, text, says):
    """pyarrow's own errors named neither the file nor what it should hold."""
    path = tmp_path / f"{read}.csv"
    path.write_text(text)
    function, wanted = {"labels": (filter_labels, "/m/1"), "images": (read_image_index, "x")}[read]
    with pytest.raises(MetadataError) as caught:
        function(path, [wanted])
    message = str(caught.value)
    assert message.startswith(str(path))
    assert says in message
    assert "needs the columns ImageID, S" in message


def test_empty_rotation_and_confidence_are_missing_values_not_errors(tmp_path):
    labels, images = tmp_path / "labels.csv", tmp_path / "images.csv"
    labels.write_text(LABEL_HEADER + "x,verification,/m/1,\n")
    images.write_text(IMAGE_HEADER + "x,train,u,l,a,\n")
    assert filter_labels(labels, ["/m/1"]).empty
    assert read_image_index(images, ["x"])["Rotation"].isna().all()


@pytest.mark.parametrize("name", ["NA", "None", "null", "NaN", "N/A", "nan"])
def test_a_class_whose_name_reads_as_missing_to_pandas_is_kept(name):
    rows = f"LabelName,DisplayName\n/m/odd,{name}\n/m/knife,Knife\n/m/empty,\n"
    table = read_class_descriptions(io.BytesIO(rows.encode()))
    assert table.names == {"/m/odd": name, "/m/knife": "Knife"}
    assert resolve_name(name, table) == ["/m/odd"]


def test_a_class_file_or_hierarchy_that_is_not_one_is_named(tmp_path):
    (tmp_path / "classes.csv").write_text("")
    (tmp_path / "hierarchy.json").write_text("<html>")
    with pytest.raises(MetadataError, match=r"classes\.csv: no classes"):
        read_class_descriptions(tmp_path / "classes.csv")
    with pytest.raises(MetadataError, match=r"hierarchy\.json: not an Open Images hierarchy"):
        Hierarchy.read(tmp_path / "hierarchy.json")


def test_a_large_image_list_with_titles_over_several_lines_is_read(tmp_path):
    """A quoted Title or Author holding line breaks is valid CSV (Flickr text is free text). In
    a file larger than one streamed block it failed: "CSV parser got out of sync with chunker"."""
    ids = [f"{i:016x}" for i in range(40_000)]
    buffer = io.StringIO()
    buffer.write(IMAGES.splitlines()[0] + "\n")
    for n, image_id in enumerate(ids):
        title = '"Line one\nline two, ""quoted""\nthree"' if n % 3 == 0 else "plain"
        buffer.write(
            f"{image_id},train,https://x/{n}.jpg,https://l/{n},{CC_BY},https://a/{n},"
            f'"Doe,\nJane",{title},1234,abc==,https://t/{n}.jpg,{90.0 if n % 2 else 0.0}\n'
        )
    path = tmp_path / "images.csv"
    path.write_text(buffer.getvalue())
    assert path.stat().st_size > 3 << 20  # several 1 MiB blocks
    index = read_image_index(path, ids[::7], chunk_rows=1000).set_index("ImageID")
    assert sorted(index.index) == ids[::7]
    assert set(index["Author"]) == {"Doe,\nJane"}
    assert index.loc[ids[7], "Rotation"] == 90.0
