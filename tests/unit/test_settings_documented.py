"""Every settings key is described in the README or in a docs/ page it links to.

The keys are read from the schema itself (every field of every section model under
``conf/sections/``, nested models included), so a new key without a word of documentation fails
here rather than being found by a user. A key counts as described when

- its dotted name (``serving.max_frames``) is in a code span or code block of the README or of a
  ``docs/*.md`` page the README links to, or
- its bare name starts a code span (```max_frames```, ```recipe: probe```, ```tolerance```) in
  the part of the README that describes its section (its ``<!-- section:... -->`` block or the
  Configuration section), or in a docs page that part links to.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from conf.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

# Which README part (its `<!-- section:NAME -->` block) describes each settings section.
_PART = {
    "paths": "operations",
    "prefect": "operations",
    "stack": "operations",
    "openimages": "etl",
    "classes": "etl",
    "etl": "etl",
    "train": "train",
    "mlflow": "train",
    "kafka": "serving",
    "serving": "serving",
    "int8": "serving",
    "review": "review",
}
_LINK = re.compile(r"\]\((docs/[^)#\s]+\.md)(?:#[^)\s]*)?\)")
# Fenced blocks, then inline spans (which may wrap onto the next line).
_CODE = re.compile(r"```.*?```|`[^`]+`", flags=re.S)


def _model_of(annotation: object) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def settings_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[str]:
    """Every leaf key of the schema as a dotted name, nested sections walked."""
    for name, field in model.model_fields.items():
        nested = _model_of(field.annotation)
        if nested is not None:
            yield from settings_keys(nested, f"{prefix}{name}.")
        elif prefix:  # `profile` is chosen by --profile, not a key of a section
            yield f"{prefix}{name}"


def _part(name: str) -> str:
    if name == "configuration":
        start = README.index("## Configuration")
        return README[start : README.index("\n## ", start + 1)]
    match = re.search(rf"<!-- section:{name} -->(.*?)<!-- /section:{name} -->", README, re.S)
    assert match, f"README has no <!-- section:{name} --> block"
    return match.group(1)


def _linked_docs(text: str) -> str:
    pages = sorted(set(_LINK.findall(text)))
    return "\n".join((ROOT / page).read_text() for page in pages if (ROOT / page).is_file())


def _code(text: str) -> str:
    return "\n".join(_CODE.findall(text))


def described(key: str) -> bool:
    section, _, name = key.partition(".")
    everywhere = _code(README + _linked_docs(README))
    if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", everywhere):
        return True
    part = _part(_PART[section]) + _part("configuration")
    leaf = re.escape(name.rsplit(".", 1)[-1])
    spans = _CODE.findall(part + _linked_docs(part))
    return any(re.match(rf"`{leaf}(?![\w.])", span) for span in spans)


def test_the_walk_finds_nested_and_every_section() -> None:
    keys = set(settings_keys())
    assert {"train.epochs", "serving.max_frames", "int8.tolerance", "review.token"} <= keys
    assert {key.split(".")[0] for key in keys} == set(_PART)


@pytest.mark.parametrize("key", sorted(settings_keys()))
def test_every_setting_is_described(key: str) -> None:
    assert described(key), (
        f"{key} is described nowhere: name it in README's section for `{key.split('.')[0]}`, "
        "in its Configuration section, or in a docs/ page the README links to"
    )


def test_an_undescribed_key_is_found() -> None:
    assert not described("train.no_such_key_anywhere")
