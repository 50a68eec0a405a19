"""Open Images classes: class descriptions, the class hierarchy, configured names to exact ids.

- class descriptions ``LabelName,DisplayName`` (``oidv7-class-descriptions.csv``; older files
  have no header row, both are accepted);
- the hierarchy JSON ``{"LabelName": ..., "Subcategory": [...]}`` (``Part`` edges are ignored:
  a face is part of a person, not a kind of person).

Class names resolve to EXACT class ids (never substrings: "Bloodhound" is not "Blood"), then
optionally grow through the hierarchy.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from harmscan.openimages import HARMFUL, NEVER_SAFE, SAFE, MetadataError, Source


class ClassResolutionError(ValueError):
    """A configured class name is unknown or ambiguous; the message says what to write instead."""


@dataclass(frozen=True)
class ClassTable:
    """The class descriptions: id -> display name, and display name -> ids."""

    names: Mapping[str, str]

    @property
    def ids_by_name(self) -> dict[str, list[str]]:
        """Every display name with the (sorted) ids carrying it."""
        out: dict[str, list[str]] = {}
        for label_id, name in sorted(self.names.items()):
            out.setdefault(name, []).append(label_id)
        return out


def read_class_descriptions(source: Source) -> ClassTable:
    """Read ``LabelName,DisplayName`` rows (with or without the header row).

    Every value is text as written: a class named ``NA``, ``None`` or ``null`` is a class, not a
    missing value (pandas would read those as missing and drop the row); only a row with an
    empty id or name is skipped.
    """
    try:
        frame = pd.read_csv(
            source,
            header=None,
            names=["LabelName", "DisplayName"],
            dtype=str,
            keep_default_na=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MetadataError(f"{source}: not a LabelName,DisplayName CSV: {exc}") from None
    frame = frame[(frame["LabelName"].str.strip() != "") & (frame["DisplayName"].str.strip() != "")]
    if len(frame) and frame.iloc[0]["LabelName"].lstrip("\ufeff") == "LabelName":
        frame = frame.iloc[1:]
    if frame.empty:
        raise MetadataError(f"{source}: no classes; needs LabelName,DisplayName rows")
    return ClassTable(names=dict(zip(frame["LabelName"], frame["DisplayName"], strict=True)))


@dataclass(frozen=True)
class Hierarchy:
    """The Open Images class hierarchy as parent id -> child ids (``Subcategory`` edges only)."""

    children: Mapping[str, frozenset[str]]

    @classmethod
    def from_json(cls, tree: Mapping[str, Any]) -> Hierarchy:
        """Build from the parsed hierarchy JSON (a class may sit under several parents)."""
        children: dict[str, set[str]] = {}
        stack = [tree]
        while stack:
            node = stack.pop()
            subs = node.get("Subcategory", [])
            children.setdefault(node["LabelName"], set()).update(s["LabelName"] for s in subs)
            stack.extend(subs)
        return cls(children={k: frozenset(v) for k, v in children.items()})

    @classmethod
    def read(cls, path: Path) -> Hierarchy:
        """Read the hierarchy JSON file.

        Raises:
            MetadataError: Not JSON, or not a tree of ``LabelName``/``Subcategory`` nodes.
        """
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8-sig")))
        except (
            json.JSONDecodeError,
            UnicodeDecodeError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            raise MetadataError(
                f"{path}: not an Open Images hierarchy (JSON nodes with LabelName and "
                f"Subcategory): {type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    def descendants(self, label_id: str) -> set[str]:
        """Every class below ``label_id`` (not itself), through any depth."""
        seen: set[str] = set()
        frontier = list(self.children.get(label_id, ()))
        while frontier:
            node = frontier.pop()
            if node not in seen:
                seen.add(node)
                frontier.extend(self.children.get(node, ()))
        return seen


@dataclass(frozen=True)
class ClassSets:
    """Resolved class ids per side, each with its own display name."""

    harmful: Mapping[str, str]
    safe: Mapping[str, str]
    # Configured name -> ids it brought in (for the summary and for debugging a selection).
    origin: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    never_safe: Mapping[str, str] = field(default_factory=dict)

    def side_of(self) -> dict[str, str]:
        """Class id -> side (harmful, never_safe or safe); where the hierarchy put an id in
        several sets, harmful wins, then never_safe."""
        sides = dict.fromkeys(self.safe, SAFE)
        sides.update(dict.fromkeys(self.never_safe, NEVER_SAFE))
        sides.update(dict.fromkeys(self.harmful, HARMFUL))
        return sides

    @property
    def all_ids(self) -> set[str]:
        """Every class id of any set (the never_safe ones too: they decide images)."""
        return set(self.harmful) | set(self.safe) | set(self.never_safe)


def resolve_name(
    name: str, table: ClassTable, on_ambiguous: Literal["error", "all"] = "error"
) -> list[str]:
    """Resolve one configured class to its exact id(s).

    ``name`` is a display name or a class id (``/m/...``). Display names match exactly and
    case-sensitively first; only when that finds nothing, a case-insensitive exact match is tried.
    Substrings never match.

    Raises:
        ClassResolutionError: Unknown (with the closest valid names) or ambiguous (with the ids).
    """
    if name in table.names:
        return [name]
    by_name = table.ids_by_name
    ids = by_name.get(name)
    if ids is None:
        folded = [n for n in by_name if n.casefold() == name.casefold()]
        if len(folded) == 1:
            ids = by_name[folded[0]]
        elif len(folded) > 1:
            raise ClassResolutionError(
                f"class name {name!r} matches several names differing only in case: {folded}; "
                "write the exact one"
            )
    if ids is None:
        close = difflib.get_close_matches(name, list(by_name), n=5, cutoff=0.5)
        close += [n for n in sorted(by_name) if name.casefold() in n.casefold()][:5]
        close = list(dict.fromkeys(close))[:6]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ClassResolutionError(f"unknown Open Images class {name!r}{hint}")
    if len(ids) > 1 and on_ambiguous == "error":
        raise ClassResolutionError(
            f"class name {name!r} is ambiguous: it names {len(ids)} classes {ids}; list one id "
            "instead of the name, or set classes.on_ambiguous=all"
        )
    return list(ids)


def resolve_classes(
    harmful: Iterable[str],
    safe: Iterable[str],
    table: ClassTable,
    hierarchy: Hierarchy | None = None,
    *,
    exclude: Iterable[str] = (),
    never_safe: Iterable[str] = (),
    on_ambiguous: Literal["error", "all"] = "error",
) -> ClassSets:
    """Resolve the harmful and safe sets to class ids, expanded through ``hierarchy`` if given.

    Excluded names (and, with a hierarchy, everything below them) are removed from every set.
    An id reached from several sets stays in one: harmful first, then never_safe, then safe.
    """
    origin: dict[str, tuple[str, ...]] = {}

    def expand(names: Iterable[str], setting: str) -> set[str]:
        found: set[str] = set()
        for name in names:
            try:
                ids = set(resolve_name(name, table, on_ambiguous))
            except ClassResolutionError as exc:
                raise ClassResolutionError(f"classes.{setting}: {exc}") from None
            if hierarchy is not None:
                for label_id in list(ids):
                    ids |= hierarchy.descendants(label_id)
            origin[name] = tuple(sorted(ids))
            found |= ids
        return found

    harmful_ids, safe_ids = expand(harmful, "harmful"), expand(safe, "safe")
    never_ids, dropped = expand(never_safe, "never_safe"), expand(exclude, "exclude")
    harmful_ids -= dropped
    never_ids -= dropped | harmful_ids
    safe_ids -= dropped | harmful_ids | never_ids
    for side, ids in (("harmful", harmful_ids), ("safe", safe_ids)):
        if not ids:
            raise ClassResolutionError(
                f"classes.{side} has no classes left after classes.exclude (and, for safe, the "
                "harmful and never_safe classes); list more, or exclude fewer"
            )

    def named(ids: set[str]) -> dict[str, str]:
        return {i: table.names.get(i, i) for i in sorted(ids)}

    return ClassSets(
        harmful=named(harmful_ids),
        safe=named(safe_ids),
        origin=origin,
        never_safe=named(never_ids),
    )
