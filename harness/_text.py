"""Text from files and traces made safe for a terminal.

A run directory, a trace or a scenario may come from anyone; a span name holding
``ESC ] 52 ; c ; ... BEL`` would write the reader's clipboard, ``ESC ] 0 ;`` their window title,
``ESC [ 2 J`` clear their screen. Every terminal view and every error message passes the text
it did not write itself through ``printable``: control characters (C0, DEL, C1) become visible
escapes (``\\x1b``), so the text is shown, never obeyed.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar

__all__ = ["printable", "printable_data"]

T = TypeVar("T")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape (``keep_newlines``: except
    line breaks, for multi-line messages)."""
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))
    return _CONTROL.sub(_escape, text)


def printable_data(value: T) -> T:
    """A copy of ``value`` (strings, containers, dataclass instances) with ``printable``
    applied to every string in it, keys included."""
    return _clean(value)  # type: ignore[no-any-return]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_clean(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _clean(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value
