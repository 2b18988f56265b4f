"""The base of every request body, the API's and the pages' alike (a shared schema lives
below both faces, so neither imports the other)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from app.services.text import unstorable_in


class Strict(BaseModel):
    """A request body: unknown fields are refused, and so is text that no database column
    or mail can hold (PostgreSQL refuses NUL; a lone surrogate cannot be encoded at all)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    # Any: the raw JSON (or form) a body is validated from, before it has a shape.
    def _storable_text(cls, data: Any) -> Any:
        problem = unstorable_in(data)
        if problem:
            raise ValueError(problem)
        return data
