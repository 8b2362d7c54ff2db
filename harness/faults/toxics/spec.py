"""A toxic as the Toxiproxy API describes it, validated, and the registry of toxic types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from harness.errors import FaultConfigError
from harness.faults.toxics._base import Toxic
from harness.faults.toxics.bandwidth import Bandwidth
from harness.faults.toxics.latency import Latency
from harness.faults.toxics.limit_data import LimitData
from harness.faults.toxics.reset_peer import ResetPeer
from harness.faults.toxics.slicer import Slicer
from harness.faults.toxics.slow_close import SlowClose
from harness.faults.toxics.timeout import Timeout

__all__ = ["STREAMS", "TOXIC_TYPES", "ToxicSpec"]

TOXIC_TYPES: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData)
}

# "upstream" is client -> server, "downstream" is server -> client (Toxiproxy's names).
STREAMS = ("upstream", "downstream")

_FIELDS = frozenset({"name", "type", "stream", "toxicity", "attributes"})


@dataclass(frozen=True, slots=True)
class ToxicSpec:
    """One named toxic of a proxy: where it applies, how often, and what it does."""

    name: str
    stream: str
    toxicity: float
    toxic: Toxic

    @property
    def type(self) -> str:
        return self.toxic.type_name

    @classmethod
    def parse(cls, data: object) -> ToxicSpec:
        """Validate a toxic's JSON, filling Toxiproxy's defaults; raises ``FaultConfigError``."""
        if not isinstance(data, Mapping):
            raise FaultConfigError("a toxic must be a JSON object", value=data)
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise FaultConfigError(
                f"unknown toxic field {unknown[0]!r}; known: {', '.join(sorted(_FIELDS))}",
                field=unknown[0],
            )
        toxic_type = data.get("type")
        toxic_cls = TOXIC_TYPES.get(toxic_type) if isinstance(toxic_type, str) else None
        if toxic_cls is None:
            raise FaultConfigError(
                f"invalid toxic type; known types: {', '.join(sorted(TOXIC_TYPES))}",
                field="type",
                value=toxic_type,
            )
        stream = data.get("stream", "downstream")
        if stream not in STREAMS:
            raise FaultConfigError(
                "stream was invalid, can be either upstream or downstream",
                field="stream",
                value=stream,
            )
        toxicity = _toxicity(data.get("toxicity", 1.0))
        name = data.get("name") or f"{toxic_type}_{stream}"
        if not isinstance(name, str):
            raise FaultConfigError("toxic name must be a string", field="name", value=name)
        toxic = build_toxic(toxic_cls, data.get("attributes") or {})
        return cls(name=name, stream=stream, toxicity=toxicity, toxic=toxic)

    def updated(self, data: object) -> ToxicSpec:
        """This toxic with ``toxicity`` and ``attributes`` changed by a partial JSON update."""
        if not isinstance(data, Mapping):
            raise FaultConfigError("a toxic update must be a JSON object", value=data)
        for fixed in ("type", "stream", "name"):
            if fixed in data and data[fixed] != getattr(self, fixed):
                raise FaultConfigError(
                    f"a toxic's {fixed} cannot be changed", field=fixed, value=data[fixed]
                )
        toxicity = _toxicity(data["toxicity"]) if "toxicity" in data else self.toxicity
        changes = data.get("attributes") or {}
        if not isinstance(changes, Mapping):
            raise FaultConfigError("attributes must be a JSON object", field="attributes")
        toxic = build_toxic(type(self.toxic), {**self.toxic.attributes(), **changes})
        return ToxicSpec(name=self.name, stream=self.stream, toxicity=toxicity, toxic=toxic)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.toxic.attributes(),
        }


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultConfigError(
            "toxicity must be a number between 0 and 1", field="toxicity", value=value
        )
    return float(value)


def build_toxic(toxic_cls: type[Toxic], attributes: object) -> Toxic:
    """Validate ``attributes`` for ``toxic_cls``; the first problem becomes the message."""
    if not isinstance(attributes, Mapping):
        raise FaultConfigError("attributes must be a JSON object", field="attributes")
    try:
        return toxic_cls.model_validate(dict(attributes))
    except ValidationError as exc:
        error = exc.errors()[0]
        attr = ".".join(str(part) for part in error["loc"])
        known = ", ".join(toxic_cls.model_fields) or "none"
        if error["type"] == "extra_forbidden":
            message = f"unknown attribute for {toxic_cls.type_name} (known: {known})"
        else:
            message = f"invalid attribute for {toxic_cls.type_name}: {error['msg']}"
        raise FaultConfigError(
            message, field=f"attributes.{attr}", value=error.get("input")
        ) from None
