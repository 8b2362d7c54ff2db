"""Failures the fake API can inject, in a script turn or at run time (``FakeAnthropic.inject``):
the fault plan names them too, so they live with the plan, outside the fake.

Each fault is a small pydantic model tagged by ``kind`` so a script file spells it as a mapping
(``{kind: rate_limit, retry_after: 1}``) and Python code builds it directly
(``RateLimit(retry_after=1)``).

========================  =====================================================================
kind                      effect on the request that draws it
========================  =====================================================================
``rate_limit``            429 ``rate_limit_error`` with a ``retry-after`` header (seconds)
``api_error``             500 ``api_error`` (``retry_after`` optional, as for the others)
``overloaded``            529 ``overloaded_error``
``connection_drop``       the connection closes without a response (loopback: the socket is
                          closed; in-process: the ASGI app raises, which the SDK sees as
                          ``APIConnectionError``)
``stream_cut``            a streaming response stops after ``after_events`` SSE events and the
                          connection closes (in-process the transport buffers the whole
                          response, so the SDK sees a connection error before any event); on a
                          non-streaming request it acts as ``connection_drop``
``stream_error``          a streaming response sends ``after_events`` events, then an SSE
                          ``error`` event (``error_type``, default ``overloaded_error``) and
                          ends, as the real API does mid-stream; on a non-streaming request
                          it is the matching status (529 or 500)
``latency``               wait ``seconds`` on the injected clock, then answer normally
``context_edit``          the server-side context management of the request goes wrong, then
                          it is answered normally: ``mode: skip`` applies no edit although one
                          triggers (the whole history counts, up to "prompt is too long");
                          ``mode: clear_all`` clears every tool result and every thinking block
                          of earlier turns whatever the edit's ``keep`` and ``trigger`` say
========================  =====================================================================

A failure (every kind but ``latency`` and ``context_edit``) consumes itself, not the turn: the
SDK's retry of the failed request gets the turn.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiFailure",
    "ConnectionDrop",
    "ContextEditFault",
    "Fault",
    "Latency",
    "Overloaded",
    "RateLimit",
    "StreamCut",
    "StreamError",
]


class _FaultBase(BaseModel):
    # The attribute docstrings are the fields' descriptions in the JSON Schema.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class RateLimit(_FaultBase):
    """429 ``rate_limit_error``; the SDK waits ``retry_after`` seconds before its retry."""

    kind: Literal["rate_limit"] = "rate_limit"
    """The fault's kind."""
    retry_after: float = Field(default=1.0, ge=0)
    """The ``retry-after`` header (seconds) the client waits before its retry."""


class ApiFailure(_FaultBase):
    """500 ``api_error``."""

    kind: Literal["api_error"] = "api_error"
    """The fault's kind."""
    retry_after: float | None = Field(default=None, ge=0)
    """When set, a ``retry-after`` header (seconds) asks the client to wait that long."""


class Overloaded(_FaultBase):
    """529 ``overloaded_error``."""

    kind: Literal["overloaded"] = "overloaded"
    """The fault's kind."""
    retry_after: float | None = Field(default=None, ge=0)
    """When set, a ``retry-after`` header (seconds) asks the client to wait that long."""


class ConnectionDrop(_FaultBase):
    """The connection closes without any response."""

    kind: Literal["connection_drop"] = "connection_drop"
    """The fault's kind."""


class StreamCut(_FaultBase):
    """A streaming response stops after ``after_events`` events and the connection closes."""

    kind: Literal["stream_cut"] = "stream_cut"
    """The fault's kind."""
    after_events: int = Field(default=1, ge=0)
    """Server-sent events before the connection closes."""


class StreamError(_FaultBase):
    """An SSE ``error`` event after ``after_events`` events (e.g. ``overloaded_error``)."""

    kind: Literal["stream_error"] = "stream_error"
    """The fault's kind."""
    after_events: int = Field(default=1, ge=0)
    """Server-sent events before the error event."""
    error_type: Literal["overloaded_error", "api_error"] = "overloaded_error"
    """The error event's type."""


class Latency(_FaultBase):
    """Added latency before an otherwise normal answer (costs nothing in virtual time)."""

    kind: Literal["latency"] = "latency"
    """The fault's kind."""
    seconds: float = Field(ge=0)
    """Seconds before the answer."""


class ContextEditFault(_FaultBase):
    """Server-side context management that fails to clear (``skip``) or clears too much."""

    kind: Literal["context_edit"] = "context_edit"
    """The fault's kind."""
    mode: Literal["skip", "clear_all"] = "skip"
    """skip: the request's edits are not applied; clear_all: every tool result and earlier
    thinking block is cleared."""


Fault = Annotated[
    RateLimit
    | ApiFailure
    | Overloaded
    | ConnectionDrop
    | StreamCut
    | StreamError
    | Latency
    | ContextEditFault,
    Field(discriminator="kind"),
]
"""Any fault; pydantic picks the class from ``kind``."""
