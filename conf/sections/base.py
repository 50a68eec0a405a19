"""What every settings section shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every settings section: frozen, and unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)
