"""What every settings section shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A share, weight or score in [0, 1] (finite).
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Section(BaseModel):
    """Base of every settings section: frozen, and unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)
