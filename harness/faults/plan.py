"""The fault plan: one vocabulary for the proxy, the stdio interposer, in-process transports and
the fake Anthropic API.

A plan is a list of faults, as a YAML/JSON file (a list, or a mapping with a ``faults:`` list)
or embedded in a scenario under ``faults:``. Every entry has a ``type``; ``target`` names the
MCP server (or ``anthropic`` for the model API) it applies to (omitted: every MCP server)::

    faults:
      - {type: delay, target: ssh, seconds: 2,
         match: {method: tools/call, tool: mem_ssh, direction: downstream}}
      - {type: drop, target: ssh, match: {method: tools/call, nth: 2, direction: upstream}}
      - {type: duplicate, match: {method: notifications/progress}, count: all}
      - {type: corrupt, match: {direction: downstream, method: tools/list}}
      - {type: kill, target: ssh, signal: SIGKILL, match: {method: tools/call, nth: 3}}
      - {type: kill, target: ssh, signal: close_stdin, at: 12.5}
      - {type: freeze, target: ssh, seconds: 30, match: {method: tools/call}}
      - {type: late_response, target: ssh, delay: 1, match: {method: tools/call}}
      - {type: unknown_id, target: ssh, match: {method: tools/call, direction: downstream}}
      - {type: garbage, target: ssh, at: 3, size: 64}
      - {type: toxic, target: ssh, toxic: {type: latency, attributes: {latency: 100}}}
      - {type: llm, target: anthropic, agent: main, count: 2,
         fault: {kind: rate_limit, retry_after: 1}}
      - {type: cancel, target: ssh, match: {method: tools/call, tool: mem_ssh, nth: 2}, after: 1.5}
      - {type: cancel, at: 4}                    # every call in flight then (a user's Esc)

Frames are JSON-RPC messages. ``direction`` is Toxiproxy's: ``upstream`` client -> server,
``downstream`` server -> client. A response matches ``method``/``tool`` of the request it
answers. ``nth`` picks the Nth matching frame (1-based); else the first ``count`` matching frames
are hit (``count: all`` = every one). ``probability`` < 1 draws from the run's seeded source for
each candidate frame and the draw is recorded. Times (``at``, ``seconds``, ``delay``) are
scenario seconds on the injected clock.

``kill`` with ``match`` fires once the matching request (only requests count) has been written
to the server (it is in flight; ``after`` waits longer); ``freeze`` stops the server just
before that request is written; with ``at`` either fires at that scenario time. A SIGKILLed
server's unread output is discarded. In process (no process to signal) a kill closes the
connection, like a crashed server; a freeze holds every frame for ``seconds``.
``late_response`` holds the response to the matching request until the client cancels it
(``notifications/cancelled``), keeps the cancel from the server, and delivers the response
``delay`` seconds after the cancel: the client sees an answer to a request it gave up on.

``cancel`` acts in the client, not on the wire: the runtime under test stops waiting for the
call and sends ``notifications/cancelled``, as when a user interrupts it. With ``match`` the
Nth matching ``tools/call`` (every matching one without ``nth``) is cancelled ``after`` seconds
after it started; with ``at`` every call in flight at that time on ``target`` (every server when
omitted). Only the reference runtime can act on it: a scenario of another runtime refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)

from harness._files import read_text
from harness._yaml import LocatedError, compose, parse_yaml, validation_error
from harness.errors import FaultConfigError
from harness.faults.api_faults import Fault
from harness.faults.toxics import ToxicSpec

if TYPE_CHECKING:
    pass

__all__ = [
    "ANTHROPIC_TARGET",
    "CallMatch",
    "CancelFault",
    "CorruptFault",
    "DelayFault",
    "DropFault",
    "DuplicateFault",
    "FaultEntry",
    "FaultPlan",
    "FrameFault",
    "FrameMatch",
    "FreezeFault",
    "GarbageFault",
    "KillFault",
    "LateResponseFault",
    "LlmFault",
    "ProcessFault",
    "ToxicFault",
    "UnknownIdFault",
]

ANTHROPIC_TARGET = "anthropic"
"""The ``target`` of faults on the model API."""

Direction = Literal["upstream", "downstream", "any"]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    # The attribute docstrings are the fields' descriptions in the JSON Schema.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class FrameMatch(_Strict):
    """Which JSON-RPC frames a fault hits; every given field must match."""

    method: str | None = None
    """The frame's method, or for a response the method of the request it answers."""
    tool: str | None = None
    """``params.name`` of a ``tools/call`` (for a response: of the request it answers)."""
    id: int | str | None = None
    """The request id (a response carries the id of its request)."""
    direction: Direction = "any"
    kind: Literal["request", "notification", "response", "any"] = "any"
    """``response`` covers error responses too."""
    nth: int | None = Field(default=None, ge=1)
    """Only the Nth matching frame (1-based, counted per connection)."""

    def describe(self) -> str:
        """A compact trigger text for records, e.g. ``method=tools/call,tool=x,nth=2``."""
        parts = [
            f"{key}={value}"
            for key, value in (
                ("method", self.method),
                ("tool", self.tool),
                ("id", self.id),
                ("kind", None if self.kind == "any" else self.kind),
                ("direction", None if self.direction == "any" else self.direction),
                ("nth", self.nth),
            )
            if value is not None
        ]
        return ",".join(parts) or "any"


class _FaultBase(_Strict):
    type: ClassVar[str]
    name: str | None = None
    """Unique in the plan; default ``<type>_<index>``."""
    target: str | None = None
    """The MCP server (``anthropic`` for the model API); none = every MCP server."""
    probability: float = Field(default=1.0, ge=0, le=1)
    """Chance that a candidate frame is hit (a seeded draw, recorded)."""

    @property
    def label(self) -> str:
        return self.name or self.type

    def applies_to(self, target: str) -> bool:
        return self.target is None or self.target == target


class _Counted(_FaultBase):
    count: int | Literal["all"] = 1
    """How many matching frames are hit; ``all`` = every one (ignored with ``match.nth``)."""

    @field_validator("count")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("count must be at least 1, or 'all'")
        return value


class DelayFault(_Counted):
    """Deliver the matching frame ``seconds`` late (frames behind it are not held up)."""

    type: Literal["delay"] = "delay"  # type: ignore[misc]
    match: FrameMatch
    """The frames it hits."""
    seconds: Seconds
    """How late the frame arrives (scenario seconds)."""


class DropFault(_Counted):
    """Never deliver the matching frame."""

    type: Literal["drop"] = "drop"  # type: ignore[misc]
    match: FrameMatch


class DuplicateFault(_Counted):
    """Deliver the matching frame, then ``copies`` more times."""

    type: Literal["duplicate"] = "duplicate"  # type: ignore[misc]
    match: FrameMatch
    copies: int = Field(default=1, ge=1)
    """Extra deliveries of the frame."""


class CorruptFault(_Counted):
    """Deliver the matching frame cut at a seeded random point: it is no longer valid JSON."""

    type: Literal["corrupt"] = "corrupt"  # type: ignore[misc]
    match: FrameMatch


class LateResponseFault(_Counted):
    """Answer the matching request only after the client cancelled it (see the module doc)."""

    type: Literal["late_response"] = "late_response"  # type: ignore[misc]
    match: FrameMatch
    delay: Seconds = 0.0
    """Seconds after the client's cancel that the response arrives."""


class _Timed(_Counted):
    match: FrameMatch | None = None
    """Fire when a frame like this passes (give this or ``at``)."""
    at: Seconds | None = None
    """Fire at this scenario time (give this or ``match``)."""

    @model_validator(mode="after")
    def _one_trigger(self) -> _Timed:
        if (self.match is None) == (self.at is None):
            raise ValueError(f"a {self.type} fault needs exactly one of 'match' or 'at'")
        return self

    def trigger(self) -> str:
        return f"at={self.at:g}" if self.match is None else self.match.describe()


class UnknownIdFault(_Timed):
    """Send the client a response whose id was never issued (after the matching frame, or at a
    time)."""

    type: Literal["unknown_id"] = "unknown_id"  # type: ignore[misc]
    error: bool = False
    """An error response instead of a result."""


class GarbageFault(_Timed):
    """Send a line of seeded random bytes (not JSON) in ``stream`` (after the matching frame, or
    at a time)."""

    type: Literal["garbage"] = "garbage"  # type: ignore[misc]
    stream: Literal["upstream", "downstream"] = "downstream"
    """Toward the server (upstream) or the client (downstream)."""
    size: int = Field(default=32, ge=1, le=1 << 20)
    """Bytes of garbage."""


class KillFault(_Timed):
    """End the server: ``SIGKILL``, ``SIGTERM`` or ``close_stdin`` (in process: the connection
    closes)."""

    type: Literal["kill"] = "kill"  # type: ignore[misc]
    signal: Literal["SIGKILL", "SIGTERM", "close_stdin"] = "SIGKILL"
    """How the server is ended."""
    after: Seconds = 0.0
    """With ``match``: wait this long after the request reached the server."""


class FreezeFault(_Timed):
    """Stop the server (``SIGSTOP``) for ``seconds``, then continue it (in process: every frame
    is held for ``seconds``). With ``match`` the server is stopped before the matching request
    is written to it, so it finds the request only once it thaws."""

    type: Literal["freeze"] = "freeze"  # type: ignore[misc]
    seconds: Seconds
    after: Seconds = 0.0
    """With ``match``: wait this long after the request reached the server."""


class CallMatch(_Strict):
    """Which tool calls a ``cancel`` fault hits, counted per server as the runtime starts them."""

    method: Literal["tools/call"] = "tools/call"
    tool: str | None = None
    nth: int | None = Field(default=None, ge=1)
    """Only the Nth matching call (1-based, per server); none: every matching call."""

    def describe(self) -> str:
        parts = [f"method={self.method}"]
        if self.tool is not None:
            parts.append(f"tool={self.tool}")
        if self.nth is not None:
            parts.append(f"nth={self.nth}")
        return ",".join(parts)


class CancelFault(_FaultBase):
    """Cancel tool calls from the client side (a user's interrupt): the runtime stops waiting
    and sends ``notifications/cancelled``. ``match`` and ``after``, or ``at``."""

    type: Literal["cancel"] = "cancel"  # type: ignore[misc]
    match: CallMatch | None = None
    at: Seconds | None = None
    after: Seconds = 0.0
    """With ``match``: seconds after the call started."""

    @model_validator(mode="after")
    def _one_trigger(self) -> CancelFault:
        if (self.match is None) == (self.at is None):
            raise ValueError("a cancel fault needs exactly one of 'match' or 'at'")
        if self.at is not None and self.after:
            raise ValueError("'after' applies to a cancel fault with 'match', not with 'at'")
        return self

    def trigger(self) -> str:
        return f"at={self.at:g}" if self.match is None else self.match.describe()


class ToxicFault(_FaultBase):
    """A Toxiproxy toxic (its JSON as for ``POST /proxies/{p}/toxics``) on the target's byte
    stream: TCP proxy, stdio pipes, or in process on the serialized frames."""

    type: Literal["toxic"] = "toxic"  # type: ignore[misc]
    toxic: dict[str, Any]
    """The toxic: type (latency, bandwidth, slow_close, timeout, reset_peer, slicer,
    limit_data), stream, toxicity, attributes."""

    @field_validator("toxic")
    @classmethod
    def _valid_toxic(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            ToxicSpec.parse(value)
        except FaultConfigError as exc:
            where = f" (field {exc.field})" if exc.field else ""
            raise ValueError(f"{exc.message}{where}") from None
        return value

    def spec(self) -> ToxicSpec:
        """The validated toxic; its name defaults to the fault's name."""
        data = dict(self.toxic)
        if self.name is not None:
            data.setdefault("name", self.name)
        return ToxicSpec.parse(data)


class LlmFault(_FaultBase):
    """A failure of the fake Anthropic API (``harness.faults.api_faults``): injected at
    scenario time ``at`` into the next ``count`` requests of ``agent`` (or of any agent)."""

    type: Literal["llm"] = "llm"  # type: ignore[misc]
    fault: Fault
    """The API fault: kind (rate_limit, api_error, overloaded, connection_drop, stream_cut,
    stream_error, latency, context_edit) and its fields."""
    agent: str | None = None
    """Only this agent's requests (default: any agent's)."""
    count: int = Field(default=1, ge=1)
    """How many requests get the fault."""
    at: Seconds = 0.0
    """From this scenario time on."""


FrameFault = (
    DelayFault
    | DropFault
    | DuplicateFault
    | CorruptFault
    | LateResponseFault
    | UnknownIdFault
    | GarbageFault
)
ProcessFault = KillFault | FreezeFault
FaultEntry = Annotated[
    DelayFault
    | DropFault
    | DuplicateFault
    | CorruptFault
    | LateResponseFault
    | UnknownIdFault
    | GarbageFault
    | KillFault
    | FreezeFault
    | ToxicFault
    | LlmFault
    | CancelFault,
    Field(discriminator="type"),
]
"""Any plan entry; pydantic picks the class from ``type``."""

_FRAME_TYPES = (
    DelayFault,
    DropFault,
    DuplicateFault,
    CorruptFault,
    LateResponseFault,
    UnknownIdFault,
    GarbageFault,
    KillFault,
    FreezeFault,
)

_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


class FaultPlan(RootModel[list[FaultEntry]]):
    """An ordered list of faults with unique names.

    ``FaultPlan.model_validate(data)`` takes the list itself or ``{"faults": [...]}``. As a
    field of another model (a scenario's ``faults: FaultPlan``) it validates the list in place,
    so errors point at ``faults.<index>.<field>``. ``FaultPlan.load(path)`` reads a YAML or
    JSON file and names file, line and field in its errors.
    """

    model_config = ConfigDict(frozen=True)

    root: list[FaultEntry] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _accept_mapping(cls, data: Any) -> Any:
        if data is None:
            return []
        if isinstance(data, dict) and set(data) == {"faults"}:
            return data["faults"] if data["faults"] is not None else []
        return data

    @field_validator("root")
    @classmethod
    def _names(cls, faults: list[Any]) -> list[Any]:
        seen: set[str] = set()
        named: list[Any] = []
        for index, fault in enumerate(faults):
            name = fault.name or f"{fault.type}_{index}"
            where = ("faults", index, "name")  # as written in a plan file and in a scenario
            if not _NAME.match(name):
                raise LocatedError(
                    f"a name uses letters, digits and _ . : - only (got {name!r})", loc=where
                )
            if name in seen:
                raise LocatedError(f"duplicate fault name {name!r}", loc=where)
            seen.add(name)
            named.append(fault if fault.name else fault.model_copy(update={"name": name}))
        return named

    @property
    def faults(self) -> list[Any]:
        """The entries, in plan order."""
        return self.root

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(self.faults)

    def __len__(self) -> int:
        return len(self.faults)

    @classmethod
    def load(cls, path: str | Path) -> FaultPlan:
        """Read a plan file; bad input raises ``FaultConfigError`` naming file, line, field."""
        path = Path(path)
        return cls.parse(read_text(path, what="fault plan", error=FaultConfigError), path=path)

    @classmethod
    def parse(cls, text: str, *, path: str | Path = "<plan>") -> FaultPlan:
        """Validate plan YAML/JSON ``text``."""
        data = parse_yaml(text, path=path, error=FaultConfigError)
        if data is not None and not isinstance(data, list | dict):
            raise FaultConfigError(
                "a fault plan is a list of faults or a mapping with 'faults'",
                path=path,
                value=data,
            )
        # Read as a scenario's faults: fields and lines are faults.<index>.<field>.
        doc = data if isinstance(data, dict) else {"faults": data}
        try:
            return _PlanFile.model_validate(doc).faults
        except ValidationError as exc:
            root = compose(text)
            if isinstance(root, yaml.SequenceNode):
                key = yaml.ScalarNode("tag:yaml.org,2002:str", "faults", root.start_mark)
                root = yaml.MappingNode("tag:yaml.org,2002:map", [(key, root)])
            raise validation_error(
                exc, text=root, path=path, error=FaultConfigError, data=doc
            ) from None

    # -- selections ------------------------------------------------------------------------

    def for_target(self, target: str) -> FaultPlan:
        """The faults that apply to ``target`` (entries without a target apply to every MCP
        server, not to the model API)."""
        if target == ANTHROPIC_TARGET:
            kept = [f for f in self.faults if f.target == ANTHROPIC_TARGET]
        else:
            kept = [f for f in self.faults if f.applies_to(target)]
        return FaultPlan.model_construct(kept)

    def frame_faults(self) -> list[Any]:
        """Frame and process faults (everything the interposer and transports act on)."""
        return [f for f in self.faults if isinstance(f, _FRAME_TYPES)]

    def toxics(self, target: str | None = None) -> list[ToxicSpec]:
        """The toxics (for ``target`` when given), as the proxy and the links take them."""
        return [
            f.spec()
            for f in self.faults
            if isinstance(f, ToxicFault) and (target is None or f.applies_to(target))
        ]

    def llm_faults(self) -> list[LlmFault]:
        return [f for f in self.faults if isinstance(f, LlmFault)]

    def cancels(self) -> list[CancelFault]:
        """Client-side cancels (acted on by the runtime itself)."""
        return [f for f in self.faults if isinstance(f, CancelFault)]


class _PlanFile(BaseModel):
    """A plan file as a mapping (a bare list is read as ``{faults: [...]}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: FaultPlan
