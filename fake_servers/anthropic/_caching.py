"""Prompt caching: ``cache_creation_input_tokens`` / ``cache_read_input_tokens`` from the
prefixes the fake has seen.

A request's prompt is laid out as the real API caches it: tools, then system blocks, then the
messages' blocks. Each block carrying ``cache_control`` is a breakpoint; the prefix up to and
including it is identified by a hash of its content (``cache_control`` itself left out). For a
request, the longest breakpoint prefix already cached (per model, not expired) is *read*; the
longest breakpoint prefix beyond it is *created* (stored for later requests); ``input_tokens``
is what remains after the last breakpoint. A prefix shorter than the model's
``cache_min_tokens`` (1024 by default) is not cached, as the real API documents. Entries live
5 minutes (``ttl: "1h"``: an hour) on the injected clock, refreshed on every read. Token counts
use the fake's approximation (``_tokens``), so they add up: input + creation + read = the
request's counted input tokens.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fake_servers.anthropic._tokens import MESSAGE_OVERHEAD_CHARS, block_chars, ceil_quarter
from fake_servers.anthropic._validation import compact_json

__all__ = ["PromptCache"]

_TTL = {"5m": 300.0, "1h": 3600.0}
_PURGE_ABOVE = 4096


def _units(body: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """(block, characters) in cache order: tools, system blocks, message blocks."""
    units: list[tuple[dict[str, Any], int]] = []
    for tool in body.get("tools") or []:
        units.append((tool, len(compact_json(tool))))
    system = body.get("system")
    if isinstance(system, str):
        units.append(({"type": "text", "text": system}, len(system)))
    elif isinstance(system, list):
        units.extend((block, len(block["text"])) for block in system)
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            text = {"type": "text", "text": content}
            units.append((text, len(content) + MESSAGE_OVERHEAD_CHARS))
            continue
        for k, block in enumerate(content):
            overhead = MESSAGE_OVERHEAD_CHARS if k == 0 else 0
            units.append((block, block_chars(block) + overhead))
    return units


class PromptCache:
    """Cached prefixes by (model, prefix hash): their token count and expiry time."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[int, float, float]] = {}

    def _purge(self, now: float) -> None:
        if len(self._entries) > _PURGE_ABOVE:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}

    def usage(
        self, body: dict[str, Any], *, model: str, total: int, min_tokens: int, now: float
    ) -> dict[str, int]:
        """Split ``total`` input tokens into input / cache creation / cache read."""
        self._purge(now)
        digest = hashlib.sha256()
        chars = 0
        breakpoints: list[tuple[str, int, float]] = []
        for block, size in _units(body):
            control = block.get("cache_control")
            bare = {k: v for k, v in block.items() if k != "cache_control"}
            digest.update(compact_json(bare).encode())
            chars += size
            if isinstance(control, dict):
                ttl = _TTL.get(str(control.get("ttl", "5m")), _TTL["5m"])
                tokens = min(ceil_quarter(chars), total)
                breakpoints.append((digest.copy().hexdigest(), tokens, ttl))
        read = 0
        for key, tokens, _ in breakpoints:
            entry = self._entries.get((model, key))
            if entry is not None and entry[1] > now:
                read = max(read, tokens)
                self._entries[(model, key)] = (tokens, now + entry[2], entry[2])
        created = 0
        for key, tokens, ttl in breakpoints:
            if tokens < min_tokens or tokens <= read:
                continue
            self._entries[(model, key)] = (tokens, now + ttl, ttl)
            created = max(created, tokens - read)
        return {
            "input_tokens": max(total - read - created, 0),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }
