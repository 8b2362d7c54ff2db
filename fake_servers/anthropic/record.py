"""Record a client's session with a real (or any compatible) Messages API into a model script.

``Recorder`` is an ASGI proxy: every request goes to the upstream unchanged (headers but
``host`` and the hop-by-hop ones, body as sent) and every answer comes back unchanged, JSON or
SSE chunk by chunk. On the side it reads each ``POST /v1/messages`` exchange and adds a turn to
the agent the request belongs to, routed as the fake routes (an ``[agent:NAME]`` tag in the
system prompt, else ``metadata.user_id``, else ``default``):

- a 200 answer becomes a turn with its thinking (text and signature), redacted thinking, text,
  tool calls (with their ids), ``stop_reason`` and ``output_tokens``, marked ``verbatim`` so
  the fake sends the text as recorded;
- a 429 / 500 / 529 answer becomes a ``fail`` entry of that agent's next turn (with its
  ``retry-after``), so the replay makes the client retry the same way.

Every string written is passed through the telemetry ``Redactor`` (the client's API key and
known credential shapes), and the API key itself is never written. The script is rewritten
after each recorded turn, so a stopped recorder loses nothing. ``harness fake-api serve
--script`` then answers the same client with the same content. An answer with text after a
tool call, or several text blocks, is recorded with its texts joined (the script's turn holds
one text before its tool calls).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import yaml
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from harness.telemetry.redact import Redactor

__all__ = ["Recorder", "Session"]

_AGENT_TAG = re.compile(r"\[agent:([^\]\s]+)\]")
_HOP_BY_HOP = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
    }
)
_FAULT_KINDS = {429: "rate_limit", 500: "api_error", 529: "overloaded"}


def _agent_of(body: dict[str, Any]) -> str:
    system = body.get("system")
    if isinstance(system, list):
        system = "\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    if isinstance(system, str):
        match = _AGENT_TAG.search(system)
        if match is not None:
            return match.group(1)
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user_id, str) and user_id:
        return user_id.removeprefix("agent:")
    return "default"


def message_from_sse(raw: bytes) -> dict[str, Any] | None:
    """The complete message an SSE stream carried (``None`` when it did not finish)."""
    message: dict[str, Any] | None = None
    partial: dict[int, str] = {}
    finished = False
    for event in raw.decode("utf-8", "replace").split("\n\n"):
        data = next((ln[5:].strip() for ln in event.split("\n") if ln.startswith("data:")), None)
        if not data:
            continue
        payload = json.loads(data)
        kind = payload.get("type")
        if kind == "message_start":
            message = dict(payload["message"], content=[])
        elif message is None:
            continue
        elif kind == "content_block_start":
            message["content"].append(dict(payload["content_block"]))
        elif kind == "content_block_delta":
            index, delta = payload["index"], payload["delta"]
            block = message["content"][index]
            if delta["type"] == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[index] = partial.get(index, "") + delta["partial_json"]
        elif kind == "content_block_stop":
            index = payload["index"]
            if index in partial:
                message["content"][index]["input"] = json.loads(partial.pop(index) or "{}")
        elif kind == "message_delta":
            message.update(payload.get("delta", {}))
            message["usage"] = dict(message.get("usage", {}), **payload.get("usage", {}))
        elif kind == "message_stop":
            finished = True
    return message if finished else None


class Session:
    """The turns recorded so far, by agent, and their YAML form."""

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact
        self.agents: dict[str, list[dict[str, Any]]] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, list):
            return [self._clean(v) for v in value]
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        return value

    def failure(self, agent: str, status: int, retry_after: str | None) -> None:
        fault: dict[str, Any] = {"kind": _FAULT_KINDS[status]}
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                fault["retry_after"] = float(retry_after)
        self._pending.setdefault(agent, []).append(fault)

    def answer(self, agent: str, message: dict[str, Any]) -> None:
        turn: dict[str, Any] = {}
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in message.get("content", []):
            kind = block.get("type")
            if kind == "thinking":
                turn["thinking"] = block.get("thinking", "")
                turn["thinking_signature"] = block.get("signature", "")
            elif kind == "redacted_thinking":
                turn["redacted_thinking"] = block.get("data", "")
            elif kind == "text":
                texts.append(block.get("text", ""))
            elif kind == "tool_use":
                calls.append({"name": block["name"], "input": block["input"], "id": block["id"]})
        if texts:
            turn["text"] = "".join(texts)
            turn["verbatim"] = True
        if calls:
            turn["tool_use"] = calls
        if not texts and not calls:
            turn["text"] = ""
            turn["verbatim"] = True
        if message.get("stop_reason"):
            turn["stop_reason"] = message["stop_reason"]
        output = (message.get("usage") or {}).get("output_tokens")
        if isinstance(output, int):
            turn["output_tokens"] = output
        failures = self._pending.pop(agent, [])
        if failures:
            turn["fail"] = failures
        self.agents.setdefault(agent, []).append(self._clean(turn))

    def script(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "agents": {name: {"turns": turns} for name, turns in self.agents.items()}
        }
        if "default" in self.agents:
            data["default_agent"] = "default"
        return data

    def write(self, path: Path) -> None:
        """Write the script atomically (a reader never sees half a file)."""
        text = yaml.safe_dump(self.script(), sort_keys=False, allow_unicode=True, width=100)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)


class Recorder:
    """The recording proxy as an ASGI app; ``aclose()`` closes its upstream client."""

    def __init__(
        self, upstream: str, out: str | Path, *, known_secrets: list[str] | None = None
    ) -> None:
        self._upstream = httpx2.AsyncClient(
            base_url=upstream.rstrip("/"), timeout=httpx2.Timeout(600.0, connect=10.0)
        )
        self._out = Path(out)
        self._secrets = list(known_secrets or [])
        self.session = Session(Redactor(lambda: self._secrets))

    async def aclose(self) -> None:
        await self._upstream.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self._forward(request)
        await response(scope, receive, send)

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        # Identity encoding: the bytes relayed are the bytes recorded.
        headers = [(k, v) for k, v in headers if k.lower() != "accept-encoding"]
        headers.append(("accept-encoding", "identity"))
        for name in ("x-api-key", "authorization"):
            value = request.headers.get(name)
            if value:
                self._secrets.append(value.removeprefix("Bearer ").strip())
                self.session._redact.refresh()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        upstream = self._upstream.build_request(request.method, path, headers=headers, content=body)
        answer = await self._upstream.send(upstream, stream=True)
        reply_headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() != "content-encoding"
        }
        parsed = self._parsed(request, body)

        async def relay() -> AsyncIterator[bytes]:
            seen = bytearray()
            async for chunk in answer.aiter_raw():
                seen.extend(chunk)
                yield chunk
            if parsed is not None:
                try:
                    self._record(parsed, answer.status_code, answer.headers, bytes(seen))
                except (ValueError, KeyError, TypeError) as exc:
                    print(f"fake-api record: could not record an answer: {exc!r}", file=sys.stderr)

        return StreamingResponse(
            relay(),
            status_code=answer.status_code,
            headers=reply_headers,
            background=BackgroundTask(answer.aclose),
        )

    @staticmethod
    def _parsed(request: Request, body: bytes) -> dict[str, Any] | None:
        if request.method != "POST" or request.url.path != "/v1/messages":
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _record(
        self, body: dict[str, Any], status: int, headers: httpx2.Headers, raw: bytes
    ) -> None:
        agent = _agent_of(body)
        if status in _FAULT_KINDS:
            self.session.failure(agent, status, headers.get("retry-after"))
            return
        if status != 200:
            return
        if "text/event-stream" in headers.get("content-type", ""):
            message = message_from_sse(raw)
        else:
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
        if not isinstance(message, dict):
            return
        self.session.answer(agent, message)
        self.session.write(self._out)
