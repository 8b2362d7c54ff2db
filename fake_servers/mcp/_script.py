"""The behaviour model of a fake MCP server and the per-call choice of behaviour.

A ``ServerScript`` maps tool names to ``ToolScript``s. For each ``tools/call`` the behaviour is
chosen in this order:

1. ``calls[N]``: the N-th call of that tool on this server (1-based, counted across all
   connections of the server, in the order requests arrive);
2. the first ``match`` rule whose ``args`` all match (a plain value matches by equality, a
   ``{regex: ...}`` value by ``re.fullmatch`` on the argument's string form);
3. the tool's ``default``;
4. none: the server's built-in result (deterministic, derived from the arguments).

A behaviour without ``result`` / ``error`` / ``crash`` / ``hang`` applies its effects (latency,
stderr flood) and then answers with the built-in result.

Every tool of a fake server is a *declared* one: the built-in servers (ssh, vault, ...) are
the ``declared`` server with a preset of tools, each with a Python answer function. A script
entry for a preset tool may replace its ``description``, ``input_schema`` or ``store``; an entry
for another tool that carries a declaration adds it (on the ``declared`` server every entry
does). A declared tool checks its arguments against ``input_schema`` as an SDK server does, and
its built-in result is the store operation (``store``), else the preset's answer, else an echo
of the arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from fake_servers.mcp._names import DECLARED
from harness._files import read_text
from harness._yaml import RegexText, compose, line_of, parse_yaml, validation_error
from harness.chaos_random import ChaosRandom
from harness.errors import ScriptError
from harness.scenarios.distributions import DistributionError, Spec, parse_spec

__all__ = [
    "SDK_GENERATIONS",
    "Behaviour",
    "Crash",
    "ImageSpec",
    "MatchRule",
    "ProtocolError",
    "Regex",
    "ResultSpec",
    "ServerScript",
    "StoreSpec",
    "ToolScript",
]

SDK_GENERATIONS = ("2.x", "1.x")

_STRICT = ConfigDict(extra="forbid", frozen=True)

ArgValue = str | int | float | bool | None


class _Model(BaseModel):
    model_config = _STRICT


class Regex(_Model):
    """Matches an argument whose string form fully matches ``regex``."""

    regex: RegexText


class ImageSpec(_Model):
    """A small generated image (deterministic from ``seed_text``)."""

    format: Literal["png"] = "png"
    width: Annotated[int, Field(ge=1, le=1024)] = 32
    height: Annotated[int, Field(ge=1, le=1024)] = 24
    seed_text: str = "image"


class ResultSpec(_Model):
    """A scripted tool result. ``oversized_bytes`` appends that many bytes of filler text."""

    text: str | None = None
    structured: dict[str, Any] | None = None
    image: ImageSpec | None = None
    is_error: bool = False
    oversized_bytes: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ResultSpec:
        if not (self.text or self.structured or self.image or self.oversized_bytes):
            raise ValueError("a result needs text, structured, image or oversized_bytes")
        return self


class ProtocolError(_Model):
    """Answer with a JSON-RPC error response instead of a result."""

    code: int = -32603
    message: str = "Internal error"


class Crash(_Model):
    """End the server: ``exit`` with ``code`` or ``sigkill`` itself (subprocess); in-memory and
    in-process servers close their connections instead (there is no process to end)."""

    how: Literal["exit", "sigkill"] = "exit"
    code: Annotated[int, Field(ge=0, le=255)] = 1


LATENCY_DRAWS = ("per_call", "per_run")


@dataclass(frozen=True)
class DrawnLatency:
    """A latency written as a distribution (``{uniform: [1, 5]}``): each call that uses the
    behaviour draws its own value from the server's seeded randomness (``per_call``), or one
    value serves every call (``draw: per_run``). ``first``, when given, is the value of the
    behaviour's first call: a scenario fills it with its seeded draw for that place (the draw
    run.json lists, which shrinking simplifies)."""

    spec: Spec
    draw: Literal["per_call", "per_run"] = "per_call"
    first: float | None = None

    def to_json(self) -> dict[str, Any]:
        written: dict[str, Any] = self.spec.to_json()
        if self.draw != "per_call":
            written["draw"] = self.draw
        if self.first is not None:
            written["first"] = self.first
        return written

    def value(self, rng: ChaosRandom) -> float:
        """A draw; one below 0 (a normal without ``min``) is 0."""
        return max(0.0, float(self.spec.draw(rng)))


def _latency(value: Any) -> float | DrawnLatency:
    """A number of seconds, or a distribution mapping (with ``draw``: per_call | per_run)."""
    if isinstance(value, DrawnLatency):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not value >= 0:
            raise ValueError("Input should be greater than or equal to 0")
        return float(value)
    if not isinstance(value, Mapping):
        raise ValueError("Input should be a number of seconds or a distribution")
    written = dict(value)
    how = written.pop("draw", "per_call")
    if how not in LATENCY_DRAWS:
        raise ValueError(f"draw must be one of {', '.join(LATENCY_DRAWS)}")
    first = written.pop("first", None)
    if first is not None:
        first = _latency(first)
        if not isinstance(first, float):
            raise ValueError("first must be a number of seconds")
    try:
        spec = parse_spec(written)
    except DistributionError as exc:
        where = ".".join(map(str, exc.loc))
        raise ValueError(f"{where + ': ' if where else ''}{exc.message}") from None
    if not isinstance(spec.low, int | float) or isinstance(spec.low, bool) or spec.low < 0:
        raise ValueError("a latency distribution draws seconds: numbers, none below 0")
    return DrawnLatency(spec, how, first)


Latency = Annotated[
    float | DrawnLatency,
    PlainValidator(_latency),
    PlainSerializer(lambda v: v.to_json() if isinstance(v, DrawnLatency) else v),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {
                    "type": "object",
                    "description": "A distribution ({uniform: [a, b]}, {lognormal: {...}}, "
                    "...), drawn per call; draw: per_run draws it once.",
                },
            ]
        }
    ),
]


class Behaviour(_Model):
    """What one call does, in order: forget sessions, stderr flood, latency, then hang / crash /
    error / result (else the built-in result)."""

    model_config = ConfigDict(**_STRICT, arbitrary_types_allowed=True)

    latency: Latency = Field(
        default=0.0,
        description="Seconds (server clock) before the outcome, or a distribution drawn per "
        "call ({uniform: [1, 5]}; draw: per_run draws one value for the run).",
    )
    stderr_bytes: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Write this many bytes to stderr first (a blocking write)."
    )
    hang: bool = Field(default=False, description="Never answer (until cancelled).")
    crash: Crash | None = Field(default=None, description="End the server at this call.")
    error: ProtocolError | None = Field(
        default=None, description="Answer with a JSON-RPC error response."
    )
    result: ResultSpec | None = Field(default=None, description="Answer with this result.")
    ignore_cancel: bool = Field(
        default=False,
        description="Keep working after the client's notifications/cancelled (or a closed "
        "connection) until the latency is over; the answer is then dropped, as the SDK does.",
    )
    late_response: bool = Field(
        default=False,
        description="Keep working after a cancel and then send the response anyway, with the "
        "cancelled request's id (a late reply the client no longer waits for).",
    )
    unknown_id_response: bool = Field(
        default=False,
        description="Before the answer, also send a response whose id no request has.",
    )
    forget_sessions: bool = Field(
        default=False,
        description="Streamable HTTP: forget every session first (like a restarted server); "
        "later requests with an old Mcp-Session-Id get 404 'Session not found'.",
    )

    @model_validator(mode="after")
    def _one_outcome(self) -> Behaviour:
        outcomes = [
            name
            for name, value in (
                ("hang", self.hang),
                ("crash", self.crash),
                ("error", self.error),
                ("result", self.result),
            )
            if value
        ]
        if len(outcomes) > 1:
            raise ValueError(
                f"choose one of hang, crash, error, result (got {', '.join(outcomes)})"
            )
        if (self.ignore_cancel or self.late_response) and (self.hang or self.crash):
            # Work that outlives a cancel must end: a shielded hang or crash never would.
            raise ValueError("ignore_cancel and late_response need an outcome that ends")
        return self


class MatchRule(_Model):
    """Apply ``then`` when every argument in ``args`` matches."""

    args: dict[str, Regex | ArgValue]
    then: Behaviour

    def matches(self, arguments: Mapping[str, Any]) -> bool:
        for key, expected in self.args.items():
            if key not in arguments:
                return False
            actual = arguments[key]
            if isinstance(expected, Regex):
                text = actual if isinstance(actual, str) else json.dumps(actual)
                if re.fullmatch(expected.regex, text) is None:
                    return False
            elif actual != expected:
                return False
        return True


class StoreSpec(_Model):
    """A memory-like tool: ``write`` appends the ``value`` argument (default: every argument but
    the key) under a context key, ``read`` returns what was written under it. The key is the
    ``key`` argument; when the call omits it, the caller's context (``_meta``) if ``caller``,
    else ``default_key``. Every write and read is an event of the server."""

    op: Literal["write", "read"] = Field(description="write or read.")
    key: str = Field(default="context_id", description="The argument naming the context.")
    value: str | None = Field(
        default=None, description="write: the argument to store (default: all but the key)."
    )
    caller: bool = Field(
        default=True, description="Without the key argument, use the caller's context."
    )
    default_key: str = Field(
        default="default", description="The context used when neither gives one."
    )


# The input schemas that passed the metaschema check (their sorted JSON text), bounded.
_VALID_SCHEMAS: set[str] = set()
_VALID_SCHEMAS_MAX = 1024


class ToolScript(_Model):
    """Behaviour of one tool: by call index, by argument match, else ``default``; with a
    declaration (``description``, ``input_schema``, ``store``) it is a declared tool."""

    description: str | None = Field(
        default=None, description="Declared tool: the description tools/list gives."
    )
    input_schema: dict[str, Any] | None = Field(
        default=None,
        description="Declared tool: the JSON Schema of its arguments (default: any object); "
        "a call whose arguments fail it gets an isError result naming the field.",
    )
    store: Literal["write", "read"] | StoreSpec | None = Field(
        default=None, description="Declared tool: a store operation (memory-like tools)."
    )
    default: Behaviour | None = Field(
        default=None, description="Behaviour when no call index or match rule applies."
    )
    calls: dict[Annotated[int, Field(ge=1)], Behaviour] = Field(
        default_factory=dict, description="Behaviour by 1-based call index of this tool."
    )
    match: list[MatchRule] = Field(
        default_factory=list, description="Behaviour by arguments: the first rule that matches."
    )

    @field_validator("input_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        from jsonschema import Draft202012Validator, SchemaError

        if value.get("type", "object") != "object":
            raise ValueError("input_schema must describe an object (type: object)")
        # Checking against the metaschema is pure and costs about a millisecond: a preset's
        # schemas are checked again by every run's server build, so a valid one is remembered
        # (by its JSON text: a schema is JSON data).
        try:
            key: str | None = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):  # not JSON data (e.g. a YAML date): checked every time
            key = None
        if key is None or key not in _VALID_SCHEMAS:
            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
            if key is not None:
                if len(_VALID_SCHEMAS) >= _VALID_SCHEMAS_MAX:
                    _VALID_SCHEMAS.clear()
                _VALID_SCHEMAS.add(key)
        # As given when it says its type (a preset's schema is listed byte for byte).
        return value if "type" in value else {"type": "object", **value}

    @property
    def declares(self) -> bool:
        """Whether this entry declares a tool (rather than scripting a built-in one)."""
        return (
            self.description is not None or self.input_schema is not None or self.store is not None
        )

    @property
    def store_spec(self) -> StoreSpec | None:
        """``store`` as a ``StoreSpec`` (``store: write`` is ``{op: write}``)."""
        if isinstance(self.store, str):
            return StoreSpec(op=self.store)
        return self.store

    def select(self, call_index: int, arguments: Mapping[str, Any]) -> Behaviour | None:
        """The behaviour for this call, or None for the built-in result."""
        chosen = self.calls.get(call_index)
        if chosen is not None:
            return chosen
        for rule in self.match:
            if rule.matches(arguments):
                return rule.then
        return self.default


class ServerScript(_Model):
    """The script of one fake MCP server.

    ``slow_start`` delays the answer to ``initialize`` (or ``server/discover``);
    ``crash_after_calls`` N crashes the server, as ``crash_after`` says, on the (N+1)-th
    ``tools/call`` it receives (any tool, counted in arrival order).
    """

    server: str | None = Field(default=None, description="Optional: the server it is for.")
    sdk: Literal["2.x", "1.x"] = Field(
        default="2.x",
        description="The MCP SDK generation the server behaves like: 2.x, or 1.x (legacy "
        "initialize only, no 2.x-only result fields, nothing written after its input closes, "
        "HTTP 404 bodies with id 'server-error').",
    )
    requests: Literal["concurrent", "serial"] = Field(
        default="concurrent",
        description="concurrent: every tools/call runs at once; serial: one at a time, the "
        "others wait in arrival order (a single-threaded server).",
    )
    cancel_after_response: Literal["ignore", "crash"] = Field(
        default="ignore",
        description="A notifications/cancelled for a request the server has already answered "
        "(its answer crossed the cancel on the wire): ignore it (idempotent respond and "
        "cancel), or crash with 'AssertionError: Request already responded to' as an mcp "
        "1.27 server does.",
    )
    slow_start: Annotated[float, Field(ge=0)] = Field(
        default=0.0, description="Seconds before answering initialize (or server/discover)."
    )
    crash_after_calls: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Crash on the (N+1)-th tools/call (any tool)."
    )
    crash_after: Crash = Field(default=Crash(), description="How crash_after_calls crashes.")
    tools: dict[str, ToolScript] = Field(
        default_factory=dict, description="Tool name -> its script (and declaration)."
    )
    _source: str | None = PrivateAttr(default=None)
    _root: yaml.Node | None = PrivateAttr(default=None)
    _from_file: bool = PrivateAttr(default=False)

    @property
    def source(self) -> str | None:
        """The file the script was loaded from (None when built in Python)."""
        return self._source

    @classmethod
    def load(cls, path: str | Path) -> ServerScript:
        """Read a YAML or JSON script; any problem raises ``ScriptError`` naming file, tool and
        field."""
        path = Path(path)
        text = read_text(path, what="script", error=ScriptError)
        data = parse_yaml(text, path=path, error=ScriptError)
        root = compose(text)
        return cls._validate(data, source=str(path), root=root, from_file=True)

    @classmethod
    def from_data(cls, data: object, *, source: str | None = None) -> ServerScript:
        """Validate already-parsed data (``source`` names where it came from in errors)."""
        return cls._validate(data, source=source, root=None)

    @classmethod
    def _validate(
        cls, data: object, *, source: str | None, root: yaml.Node | None, from_file: bool = False
    ) -> ServerScript:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            # The type only: the content may be any file the path named (never echo it).
            raise ScriptError(
                f"a script must be a mapping of tools; this holds {_type_name(data)}",
                path=source,
            )
        try:
            script = cls.model_validate(data)
        except ValidationError as exc:
            raise validation_error(
                exc,
                text=root,
                path=source,
                error=ScriptError,
                data=data,
                quote=not from_file,
                lead=_tool_lead,
            ) from None
        script._source = source
        script._root = root
        script._from_file = from_file
        return script

    def for_tool(self, tool: str) -> ToolScript | None:
        """The script of ``tool``, or None when it is not scripted."""
        return self.tools.get(tool)

    def check_server(self, name: str, preset: Mapping[str, ToolScript]) -> None:
        """Raise ``ScriptError`` if the script is for another server or names a tool that is
        neither in the server's ``preset`` nor declared."""
        if self.server is not None and self.server != name:
            # A file's values are not quoted: the path may name any file (field and line do).
            shown = "another server" if self._from_file else f"server '{self.server}'"
            raise ScriptError(
                f"script is for {shown}, not '{name}'",
                path=self.source,
                line=line_of(self._root, ("server",)),
                field="server",
            )
        for tool, entry in self.tools.items():
            if tool in preset or entry.declares or name == DECLARED:
                continue
            known = ", ".join(sorted(preset)) or "none"
            raise ScriptError(
                f"server '{name}' has no tool '{tool}' (tools: {known}; declare a new one "
                "with description or input_schema)",
                path=self.source,
                line=line_of(self._root, ("tools", tool)),
                field=f"tools.{tool}",
            )

    def declared_tools(self, name: str, preset: Mapping[str, ToolScript]) -> dict[str, ToolScript]:
        """The tools of server ``name``: its ``preset``'s, each with the declaration fields
        (``description``, ``input_schema``, ``store``) this script's entry gives in place of the
        preset's, then the tools the script adds (every entry that declares one, and on the
        ``declared`` server every entry)."""
        tools = {tool: _overridden(entry, self.tools.get(tool)) for tool, entry in preset.items()}
        for tool, entry in self.tools.items():
            if tool not in preset and (entry.declares or name == DECLARED):
                tools[tool] = entry
        return tools


def _overridden(preset: ToolScript, entry: ToolScript | None) -> ToolScript:
    if entry is None:
        return preset
    fields = ("description", "input_schema", "store")
    update = {f: getattr(entry, f) for f in fields if getattr(entry, f) is not None}
    return preset.model_copy(update=update)


def _type_name(data: object) -> str:
    kinds = {str: "plain text", list: "a list", bool: "true or false", int: "a number"}
    return kinds.get(type(data), "a number" if isinstance(data, float) else "another value")


def _tool_lead(loc: tuple[int | str, ...]) -> str:
    return f"tool '{loc[1]}': " if len(loc) >= 2 and loc[0] == "tools" else ""
