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
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from harness._files import read_text
from harness._yaml import compose, line_of, load_yaml, validation_error
from harness.errors import ScriptError

__all__ = [
    "Behaviour",
    "Crash",
    "ImageSpec",
    "MatchRule",
    "ProtocolError",
    "Regex",
    "ResultSpec",
    "ServerScript",
    "ToolScript",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)

ArgValue = str | int | float | bool | None


class _Model(BaseModel):
    model_config = _STRICT


class Regex(_Model):
    """Matches an argument whose string form fully matches ``regex``."""

    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


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


class Behaviour(_Model):
    """What one call does, in order: stderr flood, latency, then hang / crash / error / result."""

    latency: Annotated[float, Field(ge=0)] = 0.0
    stderr_bytes: Annotated[int, Field(ge=0)] = 0
    hang: bool = False
    crash: Crash | None = None
    error: ProtocolError | None = None
    result: ResultSpec | None = None

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


class ToolScript(_Model):
    """Behaviour of one tool: by call index, by argument match, else ``default``."""

    default: Behaviour | None = None
    calls: dict[Annotated[int, Field(ge=1)], Behaviour] = Field(default_factory=dict)
    match: list[MatchRule] = Field(default_factory=list)

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

    server: str | None = None
    slow_start: Annotated[float, Field(ge=0)] = 0.0
    crash_after_calls: Annotated[int, Field(ge=0)] | None = None
    crash_after: Crash = Crash()
    tools: dict[str, ToolScript] = Field(default_factory=dict)
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
        root: yaml.Node | None = None
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                data = load_yaml(text)
                root = compose(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ScriptError(
                f"not valid {_kind(path)}: {_error_text(exc)}", path=path, line=_error_line(exc)
            ) from None
        except RecursionError:
            raise ScriptError(f"not valid {_kind(path)}: nested too deeply", path=path) from None
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

    def check_server(self, name: str, tools: set[str]) -> None:
        """Raise ``ScriptError`` if the script is for another server or names a missing tool."""
        if self.server is not None and self.server != name:
            # A file's values are not quoted: the path may name any file (field and line do).
            shown = "another server" if self._from_file else f"server '{self.server}'"
            raise ScriptError(
                f"script is for {shown}, not '{name}'",
                path=self.source,
                line=line_of(self._root, ("server",)),
                field="server",
            )
        for tool in self.tools:
            if tool not in tools:
                raise ScriptError(
                    f"server '{name}' has no tool '{tool}' (tools: {', '.join(sorted(tools))})",
                    path=self.source,
                    line=line_of(self._root, ("tools", tool)),
                    field=f"tools.{tool}",
                )


def _type_name(data: object) -> str:
    kinds = {str: "plain text", list: "a list", bool: "true or false", int: "a number"}
    return kinds.get(type(data), "a number" if isinstance(data, float) else "another value")


def _kind(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "YAML"


def _error_line(exc: Exception) -> int | None:
    if isinstance(exc, json.JSONDecodeError):
        return exc.lineno
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def _error_text(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (column {exc.colno})"
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (column {mark.column + 1})"
    return str(exc).replace("\n", " ")


def _tool_lead(loc: tuple[int | str, ...]) -> str:
    return f"tool '{loc[1]}': " if len(loc) >= 2 and loc[0] == "tools" else ""
