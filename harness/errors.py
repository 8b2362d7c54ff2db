"""The one exception tree of Heisenharness.

Third-party errors (mcp, anthropic, httpx2, yaml, pydantic) are mapped to these at the boundary
where they enter our code, so callers catch one family::

    HarnessError
    ├── ConfigError              bad input: a file, a field, a value; the CLI exits 2
    │   ├── ScriptError          a fake server's script (model script, MCP tool script)
    │   ├── ScenarioError        a scenario file
    │   └── FaultConfigError     a toxic, proxy or fault definition (carries an HTTP status)
    ├── ServerError              a fake server or proxy could not start, serve or stop
    ├── RuntimeFailure           the system under test failed (recorded, never silent): it
    │                            hung (a sim deadlock), refused a call, missed an expectation
    ├── FaultError               a fault could not be applied
    ├── ExportError              telemetry could not be sent to a collector
    └── HarnessDefect            the harness broke its own contract (e.g. nondeterminism)

Every error carries a message a person understands; ``ConfigError`` also names where the bad
input is (file, line, column, field, value) so the message can point at it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigError",
    "ExportError",
    "FaultConfigError",
    "FaultError",
    "HarnessDefect",
    "HarnessError",
    "RuntimeFailure",
    "ScenarioError",
    "ScriptError",
    "ServerError",
]

_MISSING = object()


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""

    exit_code: int = 1


class ConfigError(HarnessError):
    """Bad input: names the file, line, field and value when they are known."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        value: object = _MISSING,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.field = field
        self.value = value
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = ":".join(str(p) for p in (self.path, self.line, self.column) if p is not None)
        parts = [where] if where else []
        if self.field:
            parts.append(f"field '{self.field}'")
        prefix = ", ".join(parts)
        text = f"{prefix}: {self.message}" if prefix else self.message
        if self.value is not _MISSING:
            shown = repr(self.value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            text += f" (got {shown})"
        return text


class ScriptError(ConfigError):
    """A fake server's script (model script or MCP tool script) is malformed."""


class ScenarioError(ConfigError):
    """A scenario file is malformed or inconsistent."""


class FaultConfigError(ConfigError):
    """A toxic, proxy or fault definition is malformed, unknown or conflicting.

    ``status`` is the HTTP status the Toxiproxy-compatible API answers with (400 bad input,
    404 unknown proxy or toxic, 409 duplicate name).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        value: object = _MISSING,
    ) -> None:
        self.status = status
        super().__init__(message, path=path, line=line, column=column, field=field, value=value)


class ServerError(HarnessError):
    """A fake server or proxy failed to start, serve or stop."""


class RuntimeFailure(HarnessError):
    """The agent runtime under test failed; the cause is recorded, never swallowed."""


class FaultError(HarnessError):
    """A fault could not be applied as asked."""


class ExportError(HarnessError):
    """Spans could not be delivered to an OTLP collector (unreachable, refused, timed out)."""


class HarnessDefect(HarnessError):
    """The harness broke its own contract (for example, a sim run that is not deterministic)."""

    exit_code = 3
