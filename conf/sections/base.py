"""What every settings section shares."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# A share, weight or score in [0, 1] (finite).
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Section(BaseModel):
    """Base of every settings section: frozen, and unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """A YAML ``true``/``false`` where a number belongs is refused: pydantic would read it
        as 1 or 0 (``epochs: true`` would train one epoch without a word)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _holds_a_yes_no_for_a_number(field.annotation, value):
            if isinstance(value, bool):
                raise ValueError(f"{str(value).lower()} is a yes/no, not a number: write a number")
            raise ValueError("true or false is a yes/no, not a number: write each item as a number")
        return value


def _holds_a_yes_no_for_a_number(annotation: Any, value: Any) -> bool:
    """Whether ``value`` is (or holds, in a list or mapping) a bool where ``annotation`` wants
    an int or a float."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _holds_a_yes_no_for_a_number(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if isinstance(value, bool) and any(a is bool for a in options):
            return False
        return any(_holds_a_yes_no_for_a_number(a, value) for a in options)
    if origin in (list, tuple, set, frozenset) and isinstance(value, list | tuple):
        item = typing.get_args(annotation)[0] if typing.get_args(annotation) else Any
        return any(_holds_a_yes_no_for_a_number(item, v) for v in value)
    if origin is dict and isinstance(value, dict):
        item = typing.get_args(annotation)[1]
        return any(_holds_a_yes_no_for_a_number(item, v) for v in value.values())
    return isinstance(value, bool) and annotation in (int, float)
