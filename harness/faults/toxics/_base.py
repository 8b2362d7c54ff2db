"""The base of every toxic: validated attributes (Toxiproxy's names, units and defaults) and one
``pipe`` method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from harness.faults.toxics._stub import ToxicStub

__all__ = ["Count", "Toxic"]

# Toxiproxy's attributes are int64 JSON numbers: refuse strings, booleans, fractions, negatives
# and numbers past int64 (Toxiproxy cannot decode them either).
Count = Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)]


class Toxic(BaseModel, ABC):
    """A byte-stream transformer with Toxiproxy's ``type`` name and attributes.

    Instances are immutable: changing a toxic's attributes builds a new instance, and live
    connections rebuild their chain around it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type_name: ClassVar[str]

    @abstractmethod
    async def pipe(self, stub: ToxicStub) -> None:
        """Move data from ``stub.input`` to ``stub.output`` until the input ends."""

    def attributes(self) -> dict[str, int]:
        """The attributes as Toxiproxy's JSON shows them."""
        return self.model_dump()
