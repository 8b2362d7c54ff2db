"""Declared tools: tools whose name, description and input schema are data, from a server's
preset (``fake: ssh`` etc.) and its script.

The behaviour middleware answers them itself (they are not in the SDK's tool manager, which
derives schemas from Python signatures): it lists them on ``tools/list``, checks a call's
arguments against the declared schema as an SDK server does, and makes the built-in result:
the store operation of a memory-like tool, else the preset's answer function, else an echo of
the arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, Tool

from fake_servers.mcp._results import text_result
from fake_servers.mcp._script import StoreSpec, ToolScript

if TYPE_CHECKING:
    from fake_servers.mcp._base import FakeServer

__all__ = ["Answer", "DeclaredTools"]

# A preset tool's built-in result: from the call's arguments and the caller's context (the
# request's ``_meta["harness/context_id"]``, or None). ``ToolError`` makes an ``isError`` result.
Answer = Callable[[dict[str, Any], str | None], CallToolResult]

_ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass
class _Entry:
    seq: int  # the event that wrote it
    writer: str | None  # the caller's context
    value: Any


@dataclass
class DeclaredTools:
    """The declared tools of one server and the store they share (per server process)."""

    fake: FakeServer
    tools: dict[str, ToolScript]
    answers: dict[str, Answer] = field(default_factory=dict)
    _validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    _store: dict[str, list[_Entry]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, tool in self.tools.items():
            self._validators[name] = Draft202012Validator(tool.input_schema or _ANY_OBJECT)

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def listing(self) -> list[Tool]:
        """The declared tools as ``tools/list`` gives them."""
        return [
            Tool(
                name=name,
                description=tool.description or "",
                input_schema=tool.input_schema or _ANY_OBJECT,
            )
            for name, tool in self.tools.items()
        ]

    def schema(self, name: str) -> dict[str, Any] | None:
        """The input schema of tool ``name`` (None when it is not declared): the SDK reads it
        to check a modern HTTP request's ``Mcp-Param-*`` headers, as for its own tools."""
        tool = self.tools.get(name)
        return None if tool is None else tool.input_schema or _ANY_OBJECT

    def check_arguments(self, name: str, arguments: Any) -> str | None:
        """Why ``arguments`` fail the tool's input schema (naming the field), or None.

        The wording is the SDK's low-level server's ("Input validation error: ..."), with the
        field's path added when the message does not say it."""
        error = best_match(self._validators[name].iter_errors(arguments))
        if error is None:
            return None
        where = ".".join(str(part) for part in error.absolute_path)
        suffix = f" (at '{where}')" if where else ""
        return f"Input validation error: {error.message}{suffix}"

    def answer(
        self, name: str, arguments: dict[str, Any], fields: dict[str, Any]
    ) -> CallToolResult:
        """The built-in result of a declared tool: its store operation, else its preset's
        answer, else an echo. A failing answer is an ``isError`` result worded as the SDK's tool
        manager words it (``Error executing tool NAME: ...``; an unexpected error's text stays
        on the server)."""
        spec = self.tools[name].store_spec
        builtin = self.answers.get(name)
        if spec is None and builtin is not None:
            try:
                return builtin(arguments, fields.get("context_id"))
            except ToolError as exc:
                return text_result(f"Error executing tool {name}: {exc}", is_error=True)
            except Exception:  # as the SDK: e.g. an overriding schema the answer cannot use
                return text_result(f"Error executing tool {name}", is_error=True)
        if spec is None:
            echo = {"tool": name, "arguments": arguments}
            return text_result(json.dumps(echo, default=str), structured=echo)
        key, scope = self._key(spec, arguments, fields.get("context_id"))
        fake = self.fake
        if spec.op == "write":
            value = (
                arguments.get(spec.value)
                if spec.value is not None
                else {k: v for k, v in arguments.items() if k != spec.key}
            )
            event = fake.log(
                "store_write",
                time=fake.clock.now(),
                **fields,
                detail={"key": key, "scope": scope, "value": value},
            )
            entries = self._store.setdefault(key, [])
            entries.append(_Entry(event.seq, fields.get("context_id"), value))
            written = {"context_id": key, "scope": scope, "stored": value, "count": len(entries)}
            return text_result(json.dumps(written, default=str), structured=written)
        entries = list(self._store.get(key, []))
        fake.log(
            "store_read",
            time=fake.clock.now(),
            **fields,
            detail={
                "key": key,
                "scope": scope,
                "items": len(entries),
                "writes": [e.seq for e in entries],
                "writers": sorted({e.writer for e in entries if e.writer is not None}),
            },
        )
        listing = {"context_id": key, "scope": scope, "items": [e.value for e in entries]}
        return text_result(json.dumps(listing, default=str), structured=listing)

    @staticmethod
    def _key(spec: StoreSpec, arguments: dict[str, Any], caller: str | None) -> tuple[str, str]:
        given = arguments.get(spec.key)
        if given is not None:
            return str(given), "argument"
        if spec.caller and caller:
            return caller, "caller"
        return spec.default_key, "default"
