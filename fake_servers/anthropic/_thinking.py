"""Thinking-block signatures: what the fake issues, and the check of blocks sent back.

A scripted ``thinking`` block is signed with a keyed hash of its text (or carries the signature
the script gives, e.g. one recorded from the real API); a ``redacted_thinking`` block's ``data``
is what the script gives. A block sent back is genuine when its signature is the fake's hash of
its text, or the (signature, text) pair, or the redacted ``data``, came from the script. Like the
real API, every thinking block of a request is checked: in the latest assistant message a
mismatch is ``messages.N.content.K: `thinking` or `redacted_thinking` blocks in the latest
assistant message cannot be modified. These blocks must remain as they were in the original
response.``; in an earlier one it is ``messages.N.content.K: Invalid `signature` in `thinking`
block`` (both texts as the real API answers them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from fake_servers.anthropic._errors import ApiError
from fake_servers.anthropic._validation import ParsedRequest

__all__ = ["SignatureBook", "sign"]

# Not a secret: it only keeps the fake's signatures from being guessable by accident.
_KEY = b"heisenharness-fake-anthropic-thinking"
_MODIFIED = (
    "messages.{n}.content.{k}: `thinking` or `redacted_thinking` blocks in the latest assistant "
    "message cannot be modified. These blocks must remain as they were in the original response."
)
_INVALID = "messages.{n}.content.{k}: Invalid `signature` in `thinking` block"


def sign(text: str) -> str:
    """The signature the fake gives a thinking block with this text."""
    digest = hmac.new(_KEY, text.encode(), hashlib.sha256).digest()
    return base64.b64encode(b"\x12" + digest * 3).decode()


class SignatureBook:
    """The thinking blocks a script can issue, to tell genuine blocks from altered ones."""

    def __init__(
        self, signed: Iterable[tuple[str, str]] = (), redacted: Iterable[str] = ()
    ) -> None:
        self._signed = set(signed)
        self._signatures = {signature for signature, _ in self._signed}
        self._redacted = set(redacted)

    def genuine(self, block: dict[str, object]) -> bool:
        if block["type"] == "redacted_thinking":
            data = block.get("data")
            return isinstance(data, str) and data in self._redacted
        text, signature = block.get("thinking"), block.get("signature")
        if not isinstance(text, str) or not isinstance(signature, str):
            return False
        if (signature, text) in self._signed:
            return True
        # ``display: omitted`` sends the block with empty text and the scripted signature.
        if not text and signature in self._signatures:
            return True
        return hmac.compare_digest(signature, sign(text))

    def check(self, request: ParsedRequest) -> None:
        """Raise the real API's error for the first altered thinking block."""
        for message in request.messages:
            if message.role != "assistant":
                continue
            for block in message.blocks:
                if block.data["type"] not in ("thinking", "redacted_thinking"):
                    continue
                if self.genuine(block.data):
                    continue
                latest = block.message_index == request.last_assistant
                text = _MODIFIED if latest else _INVALID
                raise ApiError(400, text.format(n=block.message_index, k=block.block_index))
