"""Building tool results: text, structured, image content, error and oversized results, and
the deterministic "plausible" values the servers answer with when nothing is scripted."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib
from typing import Any

from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent

from fake_servers.mcp._script import ImageSpec, ResultSpec

__all__ = ["digest", "image_content", "png_bytes", "scripted_result", "text_result"]

_FILLER = b"lorem ipsum dolor sit amet, consectetur adipiscing elit. "


def digest(*parts: object) -> bytes:
    """A stable hash of ``parts`` (JSON-encoded): the source of built-in plausible values.

    Derived from the arguments, not from a random stream, so a call's answer does not depend on
    which calls came before it.
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()


def text_result(
    text: str, *, structured: dict[str, Any] | None = None, is_error: bool = False
) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured,
        is_error=is_error,
    )


def png_bytes(width: int, height: int, seed_text: str) -> bytes:
    """A valid RGB PNG: a gradient whose colours derive from ``seed_text``."""
    base = digest("png", seed_text)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += bytes(
                (
                    (base[0] + x * 255 // max(width - 1, 1)) % 256,
                    (base[1] + y * 255 // max(height - 1, 1)) % 256,
                    base[2],
                )
            )

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )


def image_content(spec: ImageSpec) -> ImageContent:
    data = png_bytes(spec.width, spec.height, spec.seed_text)
    return ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type="image/png")


def scripted_result(spec: ResultSpec) -> CallToolResult:
    """The ``CallToolResult`` a script asks for."""
    content: list[ContentBlock] = []
    text = spec.text or ""
    if spec.oversized_bytes:
        repeats = spec.oversized_bytes // len(_FILLER) + 1
        text += (_FILLER * repeats)[: spec.oversized_bytes].decode()
    if text:
        content.append(TextContent(type="text", text=text))
    elif spec.structured is not None:
        content.append(TextContent(type="text", text=json.dumps(spec.structured)))
    if spec.image is not None:
        content.append(image_content(spec.image))
    return CallToolResult(
        content=content, structured_content=spec.structured, is_error=spec.is_error
    )
