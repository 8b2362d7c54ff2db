"""``FakeAnthropic``: the fake Messages API as an ASGI app, in-process client and loopback server.

Order of checks for a request: route (404 ``not_found_error``, 405), body size (413 over 32 MB,
from ``Content-Length`` or while streaming the body in), auth (``x-api-key`` or ``Authorization:
Bearer``, else 401), ``anthropic-version`` header (required, and one of the published versions),
content type and JSON (400), validation (400, see ``_validation``; ``anthropic-beta`` gates some
fields), model name (404 when the script lists models), ``max_tokens`` against the model's output
limit, thinking-block signatures, routing to an agent, context-management edits, the context
window ("prompt is too long"), turn selection, then injected faults (run-time ones from
``inject`` first, then the turn's ``fail``). Prompt caching splits ``usage`` by the prefixes
seen before (``_caching``).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fake_servers.anthropic._caching import PromptCache
from fake_servers.anthropic._context_edits import apply_edits
from fake_servers.anthropic._errors import ApiError, error_body
from fake_servers.anthropic._limits import check_max_tokens, check_prompt, limits_for
from fake_servers.anthropic._model import ScriptedModel, Selection, new_id
from fake_servers.anthropic._responses import ConnectionRegistry, DropConnection, SSEStream
from fake_servers.anthropic._sse import sse_error, sse_events
from fake_servers.anthropic._tokens import count_input_tokens
from fake_servers.anthropic._validation import ParsedRequest, validate_request
from fake_servers.anthropic.journal import Journal, JournalRecord
from fake_servers.anthropic.script import ModelScript
from harness.chaos_random import ChaosRandom
from harness.clock import Clock, LoopClock
from harness.errors import FaultError
from harness.faults.api_faults import (
    ApiFailure,
    ConnectionDrop,
    ContextEditFault,
    Fault,
    Latency,
    Overloaded,
    RateLimit,
    StreamCut,
    StreamError,
)
from harness.telemetry import semconv

if TYPE_CHECKING:
    import anthropic
    import httpx2

    from fake_servers.anthropic._serve import ConnectionGuard

__all__ = ["MAX_BODY_BYTES", "FakeAnthropic"]

MAX_BODY_BYTES = 32 * 1024 * 1024
_IN_PROCESS_BASE_URL = "http://fake-anthropic.invalid"
_DEFAULT_MODEL = "claude-sonnet-4-6"
_NO_PARENT = Context()
_LOG = logging.getLogger("fake_servers.anthropic")
_FAULT_MESSAGES = {"overloaded_error": "Overloaded", "api_error": "Internal server error"}
# The versions the real API's versioning page lists; the behaviour changes 2026-10-21 brings
# (removed sampling parameters and others) are not modelled.
_API_VERSIONS = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})
_NO_USAGE_SPLIT = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def _betas(header: str | None) -> frozenset[str]:
    if not header:
        return frozenset()
    return frozenset(part.strip() for part in header.split(",") if part.strip())


@dataclass(slots=True)
class _Injection:
    fault: Fault
    agent: str | None
    remaining: int


def _rejected_summary(data: dict[str, Any]) -> dict[str, Any]:
    """What can be said safely about a body that failed validation (no content; its messages'
    roles and block types are summarised when they have the shape of messages)."""
    summary: dict[str, Any] = {}
    if isinstance(data.get("model"), str):
        summary["model"] = data["model"]
    if isinstance(data.get("messages"), list):
        summary["message_count"] = len(data["messages"])
    if isinstance(data.get("stream"), bool):
        summary["stream"] = data["stream"]
    thinking = data.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        summary["thinking"] = thinking["type"]
    return summary


def _resolve_platform(client: anthropic.AsyncAnthropic) -> None:
    """Fill in the SDK's platform headers now instead of in a worker thread at first request.

    The SDK resolves them once per client with ``asyncify`` (a thread). Under the sim loop a
    thread answering while timers are pending lets virtual time jump past them, so an
    in-process client must not need one. Private SDK details: skipped quietly if they change.
    """
    try:
        from anthropic._base_client import get_platform

        if getattr(client, "_platform", "absent") is None:
            client._platform = get_platform()
    except (ImportError, AttributeError):
        return


class FakeAnthropic:
    """The fake Messages API: ``.app`` (ASGI), ``.journal``, ``.async_client()``, ``.serve()``.

    ``rng`` seeds request, message and tool_use ids (default ``ChaosRandom(0)``); ``clock``
    times the journal and waits scripted latency (default ``LoopClock``); ``tracer_provider``
    makes the SERVER spans (default: the global provider); ``journal`` records the requests
    (default ``Journal()``; pass ``Journal(capture_content=True)`` or one with a ``path``).
    """

    def __init__(
        self,
        script: ModelScript,
        *,
        rng: ChaosRandom | None = None,
        clock: Clock | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        journal: Journal | None = None,
    ) -> None:
        rng = (rng or ChaosRandom(0)).fork("fake-anthropic")
        self.script = script
        self.journal = journal if journal is not None else Journal()
        self._clock = clock or LoopClock()
        self._model = ScriptedModel(script, rng)
        self._request_ids = rng.fork("request-ids")
        self._tracer = trace.get_tracer("fake_servers.anthropic", tracer_provider=tracer_provider)
        self._injections: deque[_Injection] = deque()
        self._connections: ConnectionRegistry = {}
        self._cache = PromptCache()
        self.app: ASGIApp = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_exception},
        )
        self._endpoints: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            ("POST", "/v1/messages"): self._messages,
            ("POST", "/v1/messages/count_tokens"): self._count_tokens,
            ("GET", "/v1/models"): self._models,
        }

    # -- public API ------------------------------------------------------------------------

    def inject(self, fault: Fault, *, agent: str | None = None, count: int = 1) -> None:
        """Answer the next ``count`` requests (of ``agent``, or any agent) with ``fault``.

        Run-time injections are drawn before a turn's scripted failures; a failure consumes
        itself and not the turn, so the retry gets the turn.
        """
        if agent is not None and agent not in self.script.agents:
            agents = ", ".join(sorted(self.script.agents))
            raise FaultError(f"cannot inject into unknown agent {agent!r} (agents: {agents})")
        if count < 1:
            raise FaultError(f"an injected fault needs count >= 1 (got {count})")
        self._injections.append(_Injection(fault, agent, count))

    def async_client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        """A real ``anthropic.AsyncAnthropic`` wired to this app in-process (no socket).

        Keyword arguments go to ``AsyncAnthropic`` (e.g. ``max_retries``); ``api_key`` and
        ``base_url`` have defaults.
        """
        import anthropic
        import httpx2

        kwargs.setdefault("api_key", "sk-ant-fake")
        kwargs.setdefault("base_url", _IN_PROCESS_BASE_URL)
        http_client = httpx2.AsyncClient(
            transport=self.in_process_transport(), base_url=kwargs["base_url"]
        )
        client = anthropic.AsyncAnthropic(http_client=http_client, **kwargs)
        _resolve_platform(client)
        return client

    def in_process_transport(self) -> httpx2.ASGITransport:
        """The ``httpx2`` transport that reaches this app in process (no socket)."""
        import httpx2

        return httpx2.ASGITransport(app=self._in_process_app, client=("in-process", 0))

    async def _in_process_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``.app`` for an in-process client, without Starlette's layers where they do nothing.

        A request to one of the three routes with its method goes straight to the endpoint,
        as Starlette's route would send it (an ``HTTPException`` answered by the same handler
        while no response has started); anything else (404, 405) takes the whole app. Starlette's
        error middleware would only answer a 500 that the in-process transport drops while it
        re-raises the error: here the error is raised as is.
        """
        endpoint = self._endpoints.get((scope["method"], scope["path"]))
        if endpoint is None or scope["root_path"]:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        request = Request(scope, receive, send)
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            response = await endpoint(request)
            await response(scope, receive, sender)
        except HTTPException as exc:
            if started:
                raise RuntimeError("an HTTPException after the response started") from exc
            await (await self._http_exception(request, exc))(scope, receive, sender)
            exc.__traceback__ = None

    @asynccontextmanager
    async def serve(
        self, *, host: str = "127.0.0.1", port: int = 0, guard: ConnectionGuard | None = None
    ) -> AsyncIterator[str]:
        """Serve on loopback with uvicorn; yields ``http://127.0.0.1:PORT``. ``guard`` sets the
        connection limit and read timeouts (``_serve.ConnectionGuard`` defaults otherwise)."""
        from fake_servers.anthropic._serve import serve_app

        async with serve_app(self.app, self._connections, host=host, port=port, guard=guard) as url:
            yield url

    # -- request plumbing ------------------------------------------------------------------

    async def _handle(self, request: Request, route: str, body: bool) -> Response:
        record = JournalRecord(
            seq=self.journal.next_seq(),
            time=self._clock.now(),
            method=request.method,
            endpoint=route,
            request_id=f"req_{new_id(self._request_ids)}",
            traceparent=request.headers.get("traceparent"),
        )
        retry_count = request.headers.get("x-stainless-retry-count")
        if retry_count is not None:
            record.request["retry_count"] = retry_count
        self.journal.begin(record)
        # Without a traceparent there is no remote parent (a root span, never the in-process
        # caller's current span), and the propagators' header scans can be skipped.
        context = propagate.extract(request.headers) if record.traceparent else _NO_PARENT
        with self._tracer.start_as_current_span(
            f"{request.method} {route}",
            context=context,
            kind=trace.SpanKind.SERVER,
            attributes={
                semconv.HTTP_REQUEST_METHOD: request.method,
                semconv.URL_PATH: request.scope["path"],
                semconv.URL_SCHEME: request.scope["scheme"],
                semconv.HTTP_ROUTE: route,
            },
        ) as span:
            response = await self._respond(request, route, body, record)
            if record.status:  # 0: the connection is dropped, no status is ever sent
                span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, record.status)
            if record.agent is not None:
                span.set_attribute(semconv.HARNESS_FAKE_AGENT, record.agent)
            if record.turn is not None:
                span.set_attribute(semconv.HARNESS_FAKE_TURN, record.turn)
            if record.error is not None:
                span.set_attribute(semconv.ERROR_TYPE, str(record.error["type"]))
                if record.status >= 500 or record.status == 0:
                    span.set_status(trace.StatusCode.ERROR)
        self.journal.finish(record)
        return response

    async def _respond(
        self, request: Request, route: str, body: bool, record: JournalRecord
    ) -> Response:
        data: dict[str, Any] = {}
        try:
            data = await self._read(request, body, record)
            parsed = (
                self._validate(
                    data,
                    record,
                    count_tokens=route != "/v1/messages",
                    betas=_betas(request.headers.get("anthropic-beta")),
                )
                if body
                else None
            )
        except ClientDisconnect:
            # Nothing can be answered; one line, not an ASGI traceback.
            record.status = 0
            record.error = {
                "type": "client_disconnect",
                "message": f"the client disconnected after {record._size} bytes of the body",
            }
            _LOG.warning(
                "fake-api: %s %s: client disconnected after %d bytes of the request body",
                record.request_id,
                route,
                record._size,
            )
            return Response(status_code=400)
        except ApiError as error:
            record.verdict = {"type": error.error_type, "message": error.message}
            record.request.update(_rejected_summary(data))
            record.agent = self._model.claimed_agent(data)
            if isinstance(data.get("messages"), list):
                record.defer_messages(data["messages"], capture_content=False)
            return self._error(error, record)
        try:
            if parsed is None:
                return self._json(self._model_list(), record)
            if route == "/v1/messages":
                return await self._answer(parsed, record)
            apply_edits(parsed)
            counted = {"input_tokens": count_input_tokens(parsed)}
            record.response = counted
            return self._json(counted, record)
        except ApiError as error:
            return self._error(error, record)

    async def _read(self, request: Request, body: bool, record: JournalRecord) -> dict[str, Any]:
        if not body:
            self._check_auth(request)
            return {}
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise ApiError(413, "Request exceeds the maximum size")
        chunks = []
        async for chunk in request.stream():
            record._size += len(chunk)
            if record._size > MAX_BODY_BYTES:
                raise ApiError(413, "Request exceeds the maximum size")
            chunks.append(chunk)
        self._check_auth(request)
        version = request.headers.get("anthropic-version")
        if version is None:
            raise ApiError(400, "anthropic-version: header is required")
        if version not in _API_VERSIONS:
            raise ApiError(400, f'anthropic-version: "{version}" is not a valid version')
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise ApiError(
                400, f"Invalid content type: {content_type or 'none'}. Expected application/json"
            )
        try:
            data = json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "Input should be a valid dictionary")
        return data

    def _check_auth(self, request: Request) -> None:
        if request.headers.get("x-api-key"):
            return
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("Bearer ") and authorization[7:].strip():
            return
        raise ApiError(401, "x-api-key header is required")

    async def _answer(self, parsed: ParsedRequest, record: JournalRecord) -> Response:
        if self.script.models and parsed.model not in self.script.models:
            raise ApiError(404, f"model: {parsed.model}")
        limits = limits_for(parsed.model, self.script.limits)
        check_max_tokens(parsed.model, int(parsed.body["max_tokens"]), limits)
        self._model.signatures.check(parsed)
        agent = self._model.route(parsed)
        record.agent = agent
        injected = self._draw_injection(agent)
        edit_mode = None
        if isinstance(injected, ContextEditFault):
            record.fault = injected.model_dump()
            edit_mode, injected = injected.mode, None
        edits = apply_edits(parsed, edit_mode)
        if edits is not None:
            record.context_edits = {
                "applied_edits": edits.applied,
                "cleared_tool_use_ids": edits.cleared_tool_use_ids,
                "cleared_thinking_blocks": edits.cleared_thinking_blocks,
            }
        input_tokens = count_input_tokens(parsed)
        check_prompt(input_tokens, limits)
        if parsed.cache_breakpoints:
            usage = self._cache.usage(
                parsed.body,
                model=parsed.model,
                total=input_tokens,
                min_tokens=limits.cache_min_tokens if limits else 1024,
                now=self._clock.now(),
            )
        else:
            usage = {"input_tokens": input_tokens, **_NO_USAGE_SPLIT}
        try:
            selection = self._model.select(agent, parsed)
        except ApiError:
            # A run-time fault still applies when the script has nothing left for the agent.
            if injected is None or isinstance(injected, Latency | StreamCut):
                raise
            record.fault = injected.model_dump()
            return self._failure(injected, record)
        record.turn = selection.index
        fault = injected or self._model.draw_failure(selection)
        if fault is not None:
            record.fault = fault.model_dump()
        if fault is None or isinstance(fault, Latency):
            # Consumed before any wait, so a concurrent request of this agent gets the next turn.
            self._model.consume(selection)
            if fault is not None:
                await self._clock.sleep(fault.seconds)
            return await self._reply(parsed, selection, record, usage, None)
        if parsed.stream and isinstance(fault, StreamCut | StreamError):
            return await self._reply(parsed, selection, record, usage, fault)
        return self._failure(fault, record)

    def _validate(
        self,
        data: dict[str, Any],
        record: JournalRecord,
        *,
        count_tokens: bool,
        betas: frozenset[str],
    ) -> ParsedRequest:
        parsed = validate_request(data, count_tokens=count_tokens, betas=betas)
        body = parsed.body
        record.request.update(
            model=parsed.model,
            message_count=parsed.message_count,
            stream=parsed.stream,
            max_tokens=body.get("max_tokens"),
        )
        tools = body.get("tools")
        if isinstance(tools, list):
            # The names the model was offered (oracles ask whether a tool was still there).
            record.request["tools"] = [t.get("name") for t in tools if isinstance(t, dict)]
        if betas:
            record.request["betas"] = sorted(betas)
        if parsed.thinking is not None:
            record.request["thinking"] = parsed.thinking
        if self.journal.capture_content:
            record.request["system"] = body.get("system")
        record.defer_messages(body["messages"], capture_content=self.journal.capture_content)
        return parsed

    async def _reply(
        self,
        parsed: ParsedRequest,
        selection: Selection,
        record: JournalRecord,
        usage: dict[str, int],
        interruption: StreamCut | StreamError | None,
    ) -> Response:
        if selection.turn.latency:
            await self._clock.sleep(selection.turn.latency)
        message = self._model.message(selection, request=parsed, usage=usage)
        if record.context_edits is not None:
            message["context_management"] = {"applied_edits": record.context_edits["applied_edits"]}
        record.response = {
            "id": message["id"],
            "stop_reason": message["stop_reason"],
            "tool_use_ids": [b["id"] for b in message["content"] if b["type"] == "tool_use"],
            "tool_use_names": [b["name"] for b in message["content"] if b["type"] == "tool_use"],
            "block_types": [b["type"] for b in message["content"]],
            "usage": message["usage"],
        }
        if not parsed.stream:
            return self._json(message, record)
        headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "request-id": record.request_id,
        }
        events = sse_events(message)
        # Never past the last data event: the stream must stay unfinished.
        stop = min(interruption.after_events, len(events) - 1) if interruption else None
        if isinstance(interruption, StreamError):
            error_text = _FAULT_MESSAGES[interruption.error_type]
            record.error = {"type": interruption.error_type, "message": error_text}
            events = [*events[:stop], sse_error(interruption.error_type, error_text)]
            stop = None
        stream = SSEStream(events, headers, connections=self._connections, cut_after=stop)
        return stream  # type: ignore[return-value]

    def _draw_injection(self, agent: str) -> Fault | None:
        for injection in self._injections:
            if injection.agent is None or injection.agent == agent:
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
                return injection.fault
        return None

    def _failure(self, fault: Fault, record: JournalRecord) -> Response:
        if isinstance(fault, StreamError):
            status = 529 if fault.error_type == "overloaded_error" else 500
            return self._error(ApiError(status, _FAULT_MESSAGES[fault.error_type]), record)
        if isinstance(fault, ConnectionDrop | StreamCut):
            record.status = 0
            record.error = {"type": "connection_drop", "message": "connection closed by server"}
            return DropConnection(self._connections)  # type: ignore[return-value]
        assert isinstance(fault, RateLimit | ApiFailure | Overloaded)
        headers = {}
        if fault.retry_after is not None:
            seconds = fault.retry_after
            headers["retry-after"] = str(int(seconds)) if seconds.is_integer() else str(seconds)
        if isinstance(fault, RateLimit):
            message = (
                "This request would exceed the rate limit for your organization. "
                "Please try again later."
            )
            error = ApiError(429, message, headers=headers)
        elif isinstance(fault, ApiFailure):
            error = ApiError(500, _FAULT_MESSAGES["api_error"], headers=headers)
        else:
            error = ApiError(529, _FAULT_MESSAGES["overloaded_error"], headers=headers)
        return self._error(error, record)

    # -- endpoints -------------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        return await self._handle(request, "/v1/messages", True)

    async def _count_tokens(self, request: Request) -> Response:
        return await self._handle(request, "/v1/messages/count_tokens", True)

    async def _models(self, request: Request) -> Response:
        return await self._handle(request, "/v1/models", False)

    def _model_list(self) -> dict[str, Any]:
        names = self.script.models or [_DEFAULT_MODEL]
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for name in names
        ]
        return {"data": data, "has_more": False, "first_id": names[0], "last_id": names[-1]}

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        record = JournalRecord(
            seq=self.journal.next_seq(),
            time=self._clock.now(),
            method=request.method,
            endpoint=request.scope["path"],
            request_id=f"req_{new_id(self._request_ids)}",
            traceparent=request.headers.get("traceparent"),
        )
        self.journal.begin(record)
        if exc.status_code == 404:
            error = ApiError(404, "Not Found")
        else:
            error = ApiError(exc.status_code, exc.detail, error_type="invalid_request_error")
        record.verdict = {"type": error.error_type, "message": error.message}
        response = self._error(error, record)
        self.journal.finish(record)
        return response

    # -- answers ---------------------------------------------------------------------------

    def _json(self, payload: dict[str, Any], record: JournalRecord) -> Response:
        return Response(
            json.dumps(payload),
            media_type="application/json",
            headers={"request-id": record.request_id},
        )

    def _error(self, error: ApiError, record: JournalRecord) -> Response:
        record.status = error.status
        record.error = {"type": error.error_type, "message": error.message}
        return Response(
            error_body(error.error_type, error.message, record.request_id),
            status_code=error.status,
            media_type="application/json",
            headers={"request-id": record.request_id, **error.headers},
        )
