"""Newline-delimited JSON-RPC frames out of a byte stream, in linear time and within a limit.

``LineFramer.feed(data)`` returns the frames ``data`` completes (each with its ``\\n``). A frame
arriving in many reads is kept as a list of parts and joined once, so a 64 MiB frame costs one
copy, not one per read. A frame that grows past ``limit`` bytes is given up at that moment:
``feed`` returns an ``Oversized`` (with the frame's head, where its ``id`` is) in its place,
and the rest of that frame is discarded up to its newline, so a peer that never ends a line
cannot make the relay hold gigabytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["DEFAULT_FRAME_LIMIT", "LineFramer", "Oversized", "too_large_error"]

# Larger than any frame an MCP exchange needs (a tool result with a large image is a few MiB).
DEFAULT_FRAME_LIMIT = 32 << 20
_HEAD = 4096
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,256}")')


@dataclass(frozen=True, slots=True)
class Oversized:
    """A frame given up for its size: its first bytes, and the limit it passed."""

    head: bytes
    limit: int

    def request_id(self) -> int | str | None:
        """The frame's JSON-RPC ``id``, when its head names one."""
        found = _ID.search(self.head)
        if found is None:
            return None
        value: int | str = json.loads(found.group(1))
        return value


class LineFramer:
    """Frames of one direction of a stream."""

    def __init__(self, limit: int | None = DEFAULT_FRAME_LIMIT) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        out: list[bytes | Oversized] = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start : end + 1]
            start = len(data) if end < 0 else end + 1
            if self._discarding:
                self._discarding = end < 0
                continue
            self._parts.append(piece)
            self._size += len(piece)
            if self._limit is not None and self._size > self._limit:
                head = b"".join(self._parts)[:_HEAD]
                out.append(Oversized(head, self._limit))
                self._discarding = end < 0
                self._parts, self._size = [], 0
            elif end >= 0:
                out.append(b"".join(self._parts))
                self._parts, self._size = [], 0
        return out

    def rest(self) -> bytes:
        """What follows the last newline (a frame cut short by the end of the stream)."""
        rest = b"".join(self._parts)
        self._parts, self._size = [], 0
        return rest


def too_large_error(frame: Oversized, *, what: str) -> bytes:
    """A JSON-RPC error frame answering an oversized ``what`` ("request", "response")."""
    message = {
        "jsonrpc": "2.0",
        "id": frame.request_id(),
        "error": {
            "code": -32600,
            "message": f"{what.capitalize()} too large: the interposer relays frames of at most "
            f"{frame.limit} bytes (--max-frame-bytes)",
        },
    }
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
