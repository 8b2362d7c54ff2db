"""The agent loop, subagents and the tool dispatch of the runtime under test.

An agent sends its conversation with ``messages.create`` on the real ``anthropic`` SDK. On
``stop_reason == "tool_use"`` it runs every ``tool_use`` block of the response concurrently
(MCP tools through the shared ``MCPHostManager``, plus the built-in ``spawn_subagent``), appends
one user message with all the ``tool_result`` blocks (failures as ``is_error`` results) and asks
again, until ``end_turn`` or the turn budget. An API error ends the agent with its cause recorded:
never a silent death, never a hang.

The runner owns the API retries (``harness.runtime.retry``): its client is built with
``max_retries=0`` and a retryable error is retried after a wait drawn from the run's seed and
taken on the run's clock, each retry recorded as an ``llm_retry`` event and a span event.

Requests are routed in the fake API by ``metadata.user_id = "agent:<name>"`` (harmless against
the real API), so a parent and its concurrent subagents each follow their own script.

With a thinking budget every request enables extended thinking; the ``thinking_blocks`` policy
says whether a response's thinking blocks stay in the history sent back (``keep``, verbatim, as
the API requires in a tool loop) or are stripped from it (``drop``, the bug of runtimes that
rebuild history from text and tool calls). Before each request the ``between_turns`` compaction
check measures the conversation by the ``context_measure`` policy: the last response's usage
(``last_usage``, blind to the tool results appended since) or the API's ``count_tokens`` of the
request about to be sent (``count_tokens``).

History knobs act here too: when compaction runs (``compaction_trigger``: before a request,
after a response, or while the response's tool calls run); a run on a persisted thread
(``AgentSpec.thread``) loads its history from the ``ThreadStore`` and writes each message as it
adds it; a tool budget per run (``tool_budget``) ends the run when a response's calls would pass
it, answering the calls it will not run as ``tool_budget_end`` says. A response that calls a
tool needing approval (``Approvals``) parks the run before any of its calls runs: the parked
turn is not written meanwhile, and when the user answers the run resumes, runs the approved
calls and writes the turn with its results, or (``approval_resume: write_results_only``) the
results alone. A run cancelled from outside (an interrupt, a killed runtime) records
``agent_finished`` with stop ``interrupted``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import anyio
from mcp.types import CallToolResult, ImageContent, TextContent
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.runtime.compaction import SUMMARY_MARKER, Compactor
from harness.runtime.conversation import Conversation, ConversationStateError
from harness.runtime.events import RuntimeEvents
from harness.runtime.host import MCPHostManager, ToolCallOutcome
from harness.runtime.persistence import ThreadStore
from harness.runtime.retry import RetryPolicy
from harness.runtime.scope import ScopePolicy, ScopeRefused
from harness.telemetry import semconv as sc
from harness.telemetry.current_span import CurrentSpan
from harness.telemetry.redact import Redactor

__all__ = ["SPAWN_TOOL", "AgentResult", "AgentRunner", "AgentSpec", "Approvals"]

SPAWN_TOOL = "spawn_subagent"

_SPAWN_TOOL_PARAM: dict[str, Any] = {
    "name": SPAWN_TOOL,
    "description": (
        "Start a subagent on a task. It runs concurrently with other subagents, shares this "
        "agent's tools and chat context (unless context_id is given) and returns its final answer."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "task": {"type": "string", "description": "What the subagent must do."},
            "name": {"type": "string", "description": "A name for the subagent."},
            "context_id": {"type": "string", "description": "Chat context to run in."},
            "background": {
                "type": "boolean",
                "description": "Run it in the background: this call returns at once.",
            },
        },
        "required": ["task"],
    },
}

Stop = Literal["end_turn", "max_turns", "error", "interrupted"]
ContextMeasure = Literal["last_usage", "count_tokens"]
ThinkingBlocks = Literal["keep", "drop"]
ToolBudgetEnd = Literal["answer_over_limit", "answer_all"]

# The result a call the tool budget stopped gets, and the run's last words.
BUDGET_RESULT = "Tool call limit exceeded: this call was not run ({budget} tool calls per run)."
BUDGET_ANSWER = "Tool call limit reached ({budget} tool calls per run); stopping here."
SubagentContext = Literal["inherit", "fresh"]
BackgroundSubagents = Literal["isolated", "visible"]
ApprovalResume = Literal["write_turn", "write_results_only"]

# The result a call the user rejected gets.
REJECTED_RESULT = "The user rejected this tool call."

_THINKING_TYPES = ("thinking", "redacted_thinking")


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Who an agent is and where it runs."""

    name: str
    system: str = "You are a helpful assistant."
    context_id: str = "General"
    scope: str | None = None  # the declared query scope of a scheduled task
    automated: bool = False  # a scheduled task or a subagent of one
    max_turns: int = 20
    parent: str | None = None
    thread: str | None = None  # the persisted thread the run continues
    # The agent id whose session a subagent shares (subagent_context: inherit), if any.
    session_of: str | None = None
    # The agent id whose history sees this background subagent's tool calls (visible), if any.
    calls_visible_to: str | None = None


@dataclass(frozen=True, slots=True)
class Approvals:
    """Tools whose calls wait for a user's approval, and the user's answer."""

    tools: frozenset[str]
    after: float = 60.0
    """Seconds on the run's clock between the run parking and the user's answer."""
    decision: Literal["approve", "reject"] = "approve"
    resume: ApprovalResume = "write_turn"
    """What the resumed run writes of the parked turn (``PoliciesConfig.approval_resume``)."""


@dataclass(slots=True)
class AgentResult:
    name: str
    agent_id: str
    stop: Stop
    text: str = ""
    error: str | None = None
    error_type: str | None = None
    turns: int = 0
    children: list[AgentResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "agent_id": self.agent_id,
            "stop": self.stop,
            "text": self.text,
            "error": self.error,
            "error_type": self.error_type,
            "turns": self.turns,
            "children": [c.to_dict() for c in self.children],
        }


@dataclass(frozen=True, slots=True)
class _Settings:
    model: str
    max_tokens: int
    strict_conversation: bool
    capture_content: bool
    compactor_agent: str
    context_measure: ContextMeasure
    thinking: dict[str, Any] | None
    thinking_blocks: ThinkingBlocks
    tool_budget: int | None
    tool_budget_end: ToolBudgetEnd


class AgentRunner:
    """Runs agents (and their subagents) against one API client and one MCP host."""

    def __init__(
        self,
        *,
        client: anthropic.AsyncAnthropic,
        host: MCPHostManager,
        compactor: Compactor,
        scope: ScopePolicy,
        clock: Clock,
        rng: ChaosRandom,
        events: RuntimeEvents,
        model: str = "claude-sonnet-4-6",
        max_tokens: int = 1024,
        max_retries: int = 2,
        strict_conversation: bool = True,
        capture_content: bool = False,
        redact: Callable[[str], str] | None = None,
        compactor_agent: str = "compactor",
        context_measure: ContextMeasure = "count_tokens",
        thinking_budget: int | None = None,
        thinking_blocks: ThinkingBlocks = "keep",
        store: ThreadStore | None = None,
        tool_budget: int | None = None,
        tool_budget_end: ToolBudgetEnd = "answer_all",
        subagent_context: SubagentContext = "fresh",
        background_subagents: BackgroundSubagents = "isolated",
        approvals: Approvals | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        """``client`` must be built with ``max_retries=0``: the runner retries API requests
        itself, up to ``max_retries`` times, so that their timing is seeded."""
        if client.max_retries:
            raise ValueError(
                f"the API client retries on its own (max_retries={client.max_retries}); "
                "build it with max_retries=0 and give the budget to AgentRunner"
            )
        self._client = client
        self._host = host
        self._compactor = compactor
        self._scope = scope
        self._clock = clock
        self._rng = rng.fork("runtime.agents")
        self._retry = RetryPolicy(max_retries, rng=rng.fork("runtime.api-retries"))
        self.events = events
        thinking = None
        if thinking_budget is not None:
            thinking = {"type": "enabled", "budget_tokens": thinking_budget}
        self._settings = _Settings(
            model,
            max_tokens,
            strict_conversation,
            capture_content,
            compactor_agent,
            context_measure,
            thinking,
            thinking_blocks,
            tool_budget,
            tool_budget_end,
        )
        self._store = store
        self._approvals = approvals
        # Captured content passes through it: secrets never reach a span attribute.
        self._redact = redact if redact is not None else Redactor()
        self._tracer = trace.get_tracer("harness.runtime", tracer_provider=tracer_provider)
        meter = metrics.get_meter("harness.runtime", meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, unit="s", description="GenAI operation"
        )
        self._tokens = meter.create_histogram(
            sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}", description="GenAI token usage"
        )
        self._tool_params: list[dict[str, Any]] | None = None
        self._tools_version = 0
        self._subagent_context = subagent_context
        self._background_subagents = background_subagents
        # Each running agent's task group, where its background subagents run.
        self._groups: dict[str, anyio.abc.TaskGroup] = {}
        self._tool_properties: dict[str, frozenset[str]] = {}
        # Each running agent's conversation by agent id: the session a subagent may share.
        self._sessions: dict[str, Conversation] = {}

    # -- agents ----------------------------------------------------------------------------
    async def run(self, spec: AgentSpec, prompt: str) -> AgentResult:
        """Run one agent to completion. Never raises for API or tool failures."""
        agent_id = f"agent_{self._rng.token(12)}"
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: "invoke_agent",
            sc.GEN_AI_PROVIDER_NAME: sc.GEN_AI_PROVIDER_ANTHROPIC,
            sc.GEN_AI_AGENT_NAME: spec.name,
            sc.GEN_AI_AGENT_ID: agent_id,
            sc.GEN_AI_CONVERSATION_ID: agent_id,
            sc.HARNESS_CONTEXT_ID: spec.context_id,
            sc.HARNESS_AGENT_AUTOMATED: spec.automated,
        }
        if spec.parent:
            attributes[sc.HARNESS_AGENT_PARENT] = spec.parent
        self.events.record(
            "agent_started",
            agent=spec.name,
            agent_id=agent_id,
            parent=spec.parent,
            context_id=spec.context_id,
            scope=spec.scope,
            automated=spec.automated,
        )
        with self._tracer.start_as_current_span(
            f"invoke_agent {spec.name}", kind=SpanKind.INTERNAL, attributes=attributes
        ) as span:
            try:
                # The agent ends when its background subagents have ended too.
                async with anyio.create_task_group() as self._groups[agent_id]:
                    result = await self._loop(spec, agent_id, prompt)
            except anyio.get_cancelled_exc_class():
                # Ended from outside (an interrupt, a killed runtime): say so, then go.
                span.set_attribute("harness.agent.stop", "interrupted")
                self.events.record(
                    "agent_finished", agent=spec.name, agent_id=agent_id, stop="interrupted"
                )
                raise
            finally:
                self._sessions.pop(agent_id, None)
                self._groups.pop(agent_id, None)
            span.set_attribute("harness.agent.stop", result.stop)
            if result.stop == "error":
                span.set_status(Status(StatusCode.ERROR, result.error or "agent failed"))
                span.set_attribute(sc.ERROR_TYPE, result.error_type or "error")
        self.events.record(
            "agent_finished",
            agent=spec.name,
            agent_id=agent_id,
            stop=result.stop,
            error=result.error,
            error_type=result.error_type,
            turns=result.turns,
        )
        return result

    async def _loop(self, spec: AgentSpec, agent_id: str, prompt: str) -> AgentResult:
        result = AgentResult(spec.name, agent_id, "max_turns")
        conv = self._new_conversation(spec, agent_id)
        history = _History(self._store, spec, conv)
        if history.thread is not None:
            conv.load(history.load())
            history.saved = len(conv)
        conv.add_user_text(prompt)
        await history.save()
        try:
            tools = await self._tools()
        except Exception as exc:
            return self._fail(result, f"could not list tools: {exc}", "tools_unavailable")
        compactor = self._compactor
        trigger = compactor.settings.trigger

        async def compact(size: int, stop_reason: str | None) -> None:
            outcome = await compactor.compact(
                conv,
                agent=spec.name,
                context_tokens=size,
                stop_reason=stop_reason,
                summarize=lambda msgs: self._summarize(spec, msgs),
                thread=history.handle,
            )
            if outcome.outcome == "compacted":
                history.saved = len(conv)

        # The last response's usage (its input and output tokens: the conversation up to and
        # including it) and how many messages that covers.
        context_tokens = covered = used = 0
        for turn in range(spec.max_turns):
            result.turns = turn + 1
            if self._tools_version != self._host.catalogue_version:
                tools = await self._tools()  # refreshed or evicted since the last request
            # between_turns compacts here: no tool call is open, every pair is complete.
            if trigger == "between_turns":
                size = await self._context_size(spec, conv, tools, context_tokens, covered)
                if compactor.due(size, conv):
                    try:
                        await compact(size, None)
                    except anthropic.APIError as exc:  # compaction_errors: fail_run
                        return self._fail(result, _api_error_text(exc), "compaction_failed")
            try:
                messages = conv.begin_request()
            except ConversationStateError as exc:
                return self._fail(result, str(exc), "conversation_state")
            try:
                response = await self._create(spec, agent_id, messages, tools)
            except anthropic.APIError as exc:
                conv.abort_request()
                return self._fail(result, _api_error_text(exc), _api_error_type(exc))
            content = [
                block.model_dump(mode="json", exclude_none=True) for block in response.content
            ]
            kept = content
            if self._settings.thinking_blocks == "drop":
                kept = [b for b in content if b["type"] not in _THINKING_TYPES]
                if len(kept) < len(content):
                    self.events.record(
                        "thinking_dropped",
                        agent=spec.name,
                        response_id=response.id,
                        blocks=len(content) - len(kept),
                    )
            conv.add_response(kept, response.stop_reason)
            uses = [b for b in content if b["type"] == "tool_use"]
            parked = self._needing_approval(uses) if response.stop_reason == "tool_use" else []
            if not parked:
                await history.save()  # a parked turn is written when the run resumes
            usage = response.usage
            context_tokens = _input_tokens(usage) + usage.output_tokens
            covered = len(conv)
            if trigger == "after_response" and compactor.due(context_tokens, conv):
                try:
                    await compact(context_tokens, response.stop_reason)
                except anthropic.APIError as exc:
                    return self._fail(result, _api_error_text(exc), "compaction_failed")
            if response.stop_reason != "tool_use":
                result.stop = "end_turn"
                result.text = "".join(b.get("text", "") for b in content if b["type"] == "text")
                return result
            budget = self._settings.tool_budget
            if budget is not None and used + len(uses) > budget:
                return await self._end_by_budget(spec, conv, history, uses, budget - used, result)
            used += len(uses)
            during = None
            if trigger == "during_tools" and compactor.due(context_tokens, conv):
                during = functools.partial(compact, context_tokens, response.stop_reason)
            rejected = await self._park(spec, parked) if parked else frozenset()
            try:
                results = await self._run_tools(spec, uses, result, during, rejected=rejected)
            except anthropic.APIError as exc:
                return self._fail(result, _api_error_text(exc), "compaction_failed")
            try:
                conv.add_tool_results(results)
            except ConversationStateError as exc:
                return self._fail(result, str(exc), "conversation_state")
            if parked and self._approvals and self._approvals.resume == "write_results_only":
                history.saved = len(conv) - 1  # the parked turn is never written
            await history.save()
        return result

    def _needing_approval(self, uses: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._approvals is None:
            return []
        return [u for u in uses if u.get("name") in self._approvals.tools]

    async def _park(self, spec: AgentSpec, parked: list[dict[str, Any]]) -> frozenset[str]:
        """Wait for the user's answer to the calls that need approval; the ids rejected."""
        approvals = self._approvals
        assert approvals is not None
        ids = [str(u["id"]) for u in parked]
        self.events.record(
            "approval_requested",
            agent=spec.name,
            calls=ids,
            tools=[str(u.get("name")) for u in parked],
        )
        await self._clock.sleep(approvals.after)
        self.events.record(
            "approval_resumed",
            agent=spec.name,
            calls=ids,
            decision=approvals.decision,
            writes="results" if approvals.resume == "write_results_only" else "turn",
        )
        return frozenset(ids) if approvals.decision == "reject" else frozenset()

    async def _end_by_budget(
        self,
        spec: AgentSpec,
        conv: Conversation,
        history: _History,
        uses: list[dict[str, Any]],
        left: int,
        result: AgentResult,
    ) -> AgentResult:
        """The response's calls would pass the tool budget: none runs, and the run ends. Which
        calls get an error result is ``tool_budget_end``'s choice (all of them, or only those
        over the limit, leaving the others pending in the history)."""
        budget = self._settings.tool_budget
        over = uses[max(left, 0) :]
        answered = uses if self._settings.tool_budget_end == "answer_all" else over
        self.events.record(
            "tool_budget_reached",
            agent=spec.name,
            budget=budget,
            calls=[str(u["id"]) for u in uses],
            answered=[str(u["id"]) for u in answered],
        )
        text = BUDGET_RESULT.format(budget=budget)
        try:
            conv.add_tool_results([_error_result(str(u["id"]), text) for u in answered])
            conv.add_assistant_text(BUDGET_ANSWER.format(budget=budget))
        except ConversationStateError as exc:
            return self._fail(result, str(exc), "conversation_state")
        await history.save()
        result.stop = "end_turn"
        result.text = BUDGET_ANSWER.format(budget=budget)
        return result

    async def _context_size(
        self,
        spec: AgentSpec,
        conv: Conversation,
        tools: list[dict[str, Any]],
        last_usage: int,
        covered: int,
    ) -> int:
        """The size in tokens of the next request, as the ``context_measure`` policy sees it.

        ``count_tokens`` asks the API only when the size could reach the compaction threshold:
        a token is at least one character, so the last usage plus the characters appended
        since (the whole request before any usage) bounds it. Below the threshold that bound is
        returned; when the count fails, the bound stands in for it."""
        if self._settings.context_measure == "last_usage":
            return last_usage
        if last_usage:
            bound = last_usage + conv.json_chars(covered)
        else:
            bound = len(spec.system) + len(json.dumps(tools)) + conv.json_chars()
        if bound < self._compactor.settings.threshold_tokens:
            return bound
        params: dict[str, Any] = {
            "model": self._settings.model,
            "system": spec.system,
            "messages": conv.messages,
        }
        if tools:
            params["tools"] = tools
        if self._settings.thinking is not None:
            params["thinking"] = self._settings.thinking
        headers: dict[str, str] = {}
        propagate.inject(headers)
        try:
            counted = await self._client.messages.count_tokens(**params, extra_headers=headers)
        except anthropic.APIError as exc:
            self.events.record(
                "context_measured",
                agent=spec.name,
                tokens=bound,
                counted=False,
                error=_api_error_text(exc),
            )
            return bound
        self.events.record(
            "context_measured", agent=spec.name, tokens=counted.input_tokens, counted=True
        )
        return counted.input_tokens

    def _new_conversation(self, spec: AgentSpec, agent_id: str) -> Conversation:
        """The agent's history, registered as its session; a subagent that shares its parent's
        session starts from the parent's settled history (every turn but the open one)."""
        conv = Conversation(strict=self._settings.strict_conversation)
        parent = self._sessions.get(spec.session_of) if spec.session_of else None
        if parent is not None:
            inherited = parent.messages
            if parent.open_tool_ids:
                inherited = inherited[:-1]
            conv.adopt(inherited)
            self.events.record(
                "session_inherited", agent=spec.name, parent=spec.parent, messages=len(inherited)
            )
        self._sessions[agent_id] = conv
        return conv

    def _fail(self, result: AgentResult, error: str, error_type: str) -> AgentResult:
        result.stop, result.error, result.error_type = "error", error, error_type
        return result

    # -- the model -------------------------------------------------------------------------
    async def _create(
        self,
        spec: AgentSpec,
        agent_id: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> anthropic.types.Message:
        model = self._settings.model
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.GEN_AI_OPERATION_CHAT,
            sc.GEN_AI_PROVIDER_NAME: sc.GEN_AI_PROVIDER_ANTHROPIC,
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.GEN_AI_REQUEST_MAX_TOKENS: self._settings.max_tokens,
            sc.GEN_AI_CONVERSATION_ID: agent_id,
            sc.GEN_AI_AGENT_NAME: spec.name,
        }
        metric_attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.GEN_AI_OPERATION_CHAT,
            sc.GEN_AI_PROVIDER_NAME: sc.GEN_AI_PROVIDER_ANTHROPIC,
            sc.GEN_AI_REQUEST_MODEL: model,
        }
        started = self._clock.now()
        with self._tracer.start_as_current_span(
            f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            headers: dict[str, str] = {}
            propagate.inject(headers)
            params: dict[str, Any] = {
                "model": model,
                "max_tokens": self._settings.max_tokens,
                "system": spec.system,
                "messages": messages,
                "metadata": {"user_id": f"agent:{spec.name}"},
            }
            if tools:
                params["tools"] = tools
            if self._settings.thinking is not None:
                params["thinking"] = self._settings.thinking
            try:
                response = await self._send(spec, params, headers, span)
            except anthropic.APIError as exc:
                error_type = _api_error_type(exc)
                span.set_status(Status(StatusCode.ERROR, _api_error_text(exc)))
                span.set_attribute(sc.ERROR_TYPE, error_type)
                self._duration.record(
                    self._clock.now() - started, {**metric_attrs, sc.ERROR_TYPE: error_type}
                )
                self.events.record(
                    "llm_error", agent=spec.name, error_type=error_type, error=_api_error_text(exc)
                )
                raise
            usage = response.usage
            input_tokens = _input_tokens(usage)
            span.set_attributes(
                {
                    sc.GEN_AI_RESPONSE_ID: response.id,
                    sc.GEN_AI_RESPONSE_MODEL: response.model,
                    sc.GEN_AI_RESPONSE_FINISH_REASONS: [response.stop_reason or ""],
                    sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
                }
            )
        metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = response.model
        self._duration.record(self._clock.now() - started, metric_attrs)
        self._tokens.record(input_tokens, {**metric_attrs, sc.GEN_AI_TOKEN_TYPE: "input"})
        self._tokens.record(usage.output_tokens, {**metric_attrs, sc.GEN_AI_TOKEN_TYPE: "output"})
        self.events.record(
            "llm_response",
            agent=spec.name,
            response_id=response.id,
            stop_reason=response.stop_reason,
            tool_use_ids=[b.id for b in response.content if b.type == "tool_use"],
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )
        return response

    async def _send(
        self, spec: AgentSpec, params: dict[str, Any], headers: dict[str, str], span: trace.Span
    ) -> anthropic.types.Message:
        """``messages.create`` with the runner's retries; the last error propagates."""
        retries_taken = 0
        while True:
            # The SDK's own retry counter header, which the fake API journals.
            attempt_headers = {**headers, "x-stainless-retry-count": str(retries_taken)}
            try:
                response: anthropic.types.Message = await self._client.messages.create(
                    **params, extra_headers=attempt_headers
                )
                return response
            except anthropic.APIError as exc:
                retry = self._retry.next(retries_taken, exc)
                if retry is None:
                    raise
                error_type, error = _api_error_type(exc), _api_error_text(exc)
            event: dict[str, Any] = {
                sc.HARNESS_LLM_RETRY_ATTEMPT: retry.attempt,
                sc.HARNESS_LLM_RETRY_DELAY: retry.delay,
                sc.ERROR_TYPE: error_type,
            }
            if retry.retry_after is not None:
                event[sc.HARNESS_LLM_RETRY_AFTER] = retry.retry_after
            span.add_event(sc.HARNESS_LLM_RETRY, event)
            span.set_attribute(sc.HARNESS_LLM_RETRIES, retry.attempt)
            self.events.record(
                "llm_retry",
                agent=spec.name,
                attempt=retry.attempt,
                delay=retry.delay,
                retry_after=retry.retry_after,
                error_type=error_type,
                error=error,
            )
            await self._clock.sleep(retry.delay)
            retries_taken = retry.attempt

    async def _summarize(self, spec: AgentSpec, messages: list[dict[str, Any]]) -> str:
        """Ask the model (the compactor agent of the script) for a summary of ``messages``."""
        summarizer = AgentSpec(
            name=self._settings.compactor_agent,
            system="Summarize the conversation below for the assistant that will continue it.",
            context_id=spec.context_id,
            parent=spec.name,
        )
        transcript = json.dumps(messages, ensure_ascii=False)
        response = await self._create(
            summarizer,
            f"compaction_{spec.name}",
            [{"role": "user", "content": [{"type": "text", "text": transcript}]}],
            [],
        )
        text = "".join(b.text for b in response.content if b.type == "text") or "(empty summary)"
        parent = self._sessions.get(spec.session_of) if spec.session_of else None
        if parent is not None:
            # The session is the parent's: the summary is persisted into its history.
            summary = {
                "role": "user",
                "content": [{"type": "text", "text": f"{SUMMARY_MARKER}\n{text}"}],
            }
            replaced = parent.replace_settled(summary)
            self.events.record(
                "session_written", agent=spec.name, into=spec.parent, messages_replaced=replaced
            )
        return text

    # -- tools -----------------------------------------------------------------------------
    async def _tools(self) -> list[dict[str, Any]]:
        # The host's catalogue can change under a run (a refresh, an eviction): re-read it then.
        if self._tool_params is None or self._tools_version != self._host.catalogue_version:
            self._tools_version = self._host.catalogue_version
            listed = await self._host.list_tools()
            params = [
                {
                    "name": tool.name,
                    "description": tool.description or tool.name,
                    "input_schema": tool.input_schema,
                }
                for server in sorted(listed)
                for tool in listed[server]
            ]
            self._tool_params = [*params, _SPAWN_TOOL_PARAM]
            self._tool_properties = {
                tool.name: frozenset((tool.input_schema or {}).get("properties") or ())
                for tools in listed.values()
                for tool in tools
            }
        return self._tool_params

    async def _run_tools(
        self,
        spec: AgentSpec,
        uses: Sequence[dict[str, Any]],
        result: AgentResult,
        during: Callable[[], Awaitable[None]] | None = None,
        *,
        rejected: frozenset[str] = frozenset(),
    ) -> list[dict[str, Any]]:
        """Run every tool_use block concurrently (and ``during``, a compaction while they are
        in flight), but those the user ``rejected``; results keep the blocks' order."""
        results: list[dict[str, Any] | None] = [None] * len(uses)

        async def one(index: int, use: dict[str, Any]) -> None:
            if str(use["id"]) in rejected:
                results[index] = _error_result(str(use["id"]), REJECTED_RESULT)
                return
            try:
                results[index] = await self._run_tool(spec, use, result)
            except Exception as exc:
                # Whatever breaks inside one tool call (recorded on its span) is that call's
                # error result: the model sees it, the sibling calls and the agent go on.
                self.events.record(
                    "tool_crashed", agent=spec.name, tool=str(use.get("name")), error=repr(exc)
                )
                results[index] = _error_result(str(use["id"]), f"the tool call failed: {exc}")

        failed: list[anthropic.APIError] = []

        async def compaction(during: Callable[[], Awaitable[None]]) -> None:
            try:
                await during()
            except anthropic.APIError as exc:
                failed.append(exc)  # raised below, out of the task group

        async with anyio.create_task_group() as tg:
            for index, use in enumerate(uses):
                tg.start_soon(one, index, use)
            if during is not None:
                tg.start_soon(compaction, during)
        if failed:
            raise failed[0]
        done = [r for r in results if r is not None]
        self._show_calls(spec, uses, done)
        return done

    def _show_calls(
        self, spec: AgentSpec, uses: Sequence[dict[str, Any]], results: list[dict[str, Any]]
    ) -> None:
        """A background subagent whose calls are visible writes each tool round into its
        parent's history, ahead of the parent's open turn."""
        parent = self._sessions.get(spec.calls_visible_to) if spec.calls_visible_to else None
        if parent is None:
            return
        parent.insert_settled(
            [{"role": "assistant", "content": list(uses)}, {"role": "user", "content": results}]
        )
        self.events.record(
            "calls_shown", agent=spec.name, into=spec.parent, tool_use_ids=[u["id"] for u in uses]
        )

    async def execute_tool(
        self, spec: AgentSpec, name: str, arguments: dict[str, Any], *, call_id: str
    ) -> dict[str, Any]:
        """Run one tool call as agent ``spec`` would (scope policy, shared host, spans,
        metrics) and return its ``tool_result`` block."""
        return await self._call(spec, name, call_id, arguments, None)

    async def _run_tool(
        self, spec: AgentSpec, use: dict[str, Any], parent_result: AgentResult
    ) -> dict[str, Any]:
        arguments = use.get("input") or {}
        return await self._call(spec, str(use["name"]), str(use["id"]), arguments, parent_result)

    async def _call(
        self,
        spec: AgentSpec,
        name: str,
        call_id: str,
        arguments: dict[str, Any],
        parent_result: AgentResult | None,
    ) -> dict[str, Any]:
        server = self._host.server_of(name)
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: "execute_tool",
            sc.GEN_AI_TOOL_NAME: name,
            sc.GEN_AI_TOOL_CALL_ID: call_id,
            sc.GEN_AI_TOOL_TYPE: "function" if name == SPAWN_TOOL else "extension",
        }
        if server:
            attributes["harness.mcp.server"] = server
        capture = self._settings.capture_content
        if capture:
            attributes["gen_ai.tool.call.arguments"] = self._redact(
                json.dumps(arguments, ensure_ascii=False)
            )
        with CurrentSpan(self._tracer, f"execute_tool {name}", attributes) as span:
            if name == SPAWN_TOOL:
                if parent_result is None:
                    parent_result = AgentResult(spec.name, spec.name, "end_turn")
                block = await self._spawn(spec, call_id, arguments, parent_result)
            elif server is None:
                block = _error_result(call_id, f"unknown tool {name!r}")
                span.set_attribute(sc.ERROR_TYPE, "unknown_tool")
            elif server in self._scope.scoped_servers:
                block = await self._call_scoped(spec, server, name, call_id, arguments, span)
            else:
                # Only scoped servers read the caller's context: nothing to decide or record.
                # Awaited here, not in a helper: one coroutine less on every tool call.
                outcome = await self._host.call_tool(server, name, arguments)
                block = self._tool_block(call_id, outcome, span)
            if block.get("is_error"):
                span.set_status(Status(StatusCode.ERROR, "tool call failed"))
            if capture:
                span.set_attribute(
                    "gen_ai.tool.call.result",
                    self._redact(json.dumps(block["content"], ensure_ascii=False)),
                )
        return block

    async def _call_scoped(
        self,
        spec: AgentSpec,
        server: str,
        tool: str,
        call_id: str,
        arguments: dict[str, Any],
        span: trace.Span,
    ) -> dict[str, Any]:
        """A call to a scoped server: the scope policy decides its arguments and ``_meta``."""
        if self._tool_params is None:
            await self._tools()  # the tools' input properties say where a scope fits
        try:
            decision = self._scope.apply(
                server=server,
                tool=tool,
                arguments=arguments,
                context_id=spec.context_id,
                declared_scope=spec.scope,
                automated=spec.automated,
                accepts=self._tool_properties.get(tool, ()),
            )
        except ScopeRefused as exc:
            span.set_attribute(sc.ERROR_TYPE, "scope_refused")
            self.events.record("scope_refused", agent=spec.name, tool=tool, reason=str(exc))
            return _error_result(call_id, str(exc))
        if decision.effective_scope is not None:
            explicit = self._scope.argument in decision.arguments
            span.set_attributes(
                {
                    sc.HARNESS_CONTEXT_ID: decision.effective_scope,
                    sc.HARNESS_SCOPE_EXPLICIT: explicit,
                    sc.HARNESS_AGENT_AUTOMATED: spec.automated,
                }
            )
            self.events.record(
                "scoped_query",
                agent=spec.name,
                tool=tool,
                context_id=spec.context_id,
                scope=decision.effective_scope,
                explicit=explicit,
                automated=spec.automated,
            )
        outcome = await self._host.call_tool(
            server, tool, decision.arguments, meta=decision.meta or None
        )
        return self._tool_block(call_id, outcome, span)

    def _tool_block(
        self, call_id: str, outcome: ToolCallOutcome, span: trace.Span
    ) -> dict[str, Any]:
        if outcome.result is None:
            span.set_attribute(sc.ERROR_TYPE, outcome.error_type or "error")
            return _error_result(call_id, outcome.error or "tool call failed")
        if outcome.result.is_error:
            span.set_attribute(sc.ERROR_TYPE, "tool_error")
        return _mcp_result_block(call_id, outcome.result)

    async def _spawn(
        self,
        spec: AgentSpec,
        call_id: str,
        arguments: dict[str, Any],
        parent_result: AgentResult,
    ) -> dict[str, Any]:
        task = arguments.get("task")
        if not isinstance(task, str) or not task.strip():
            return _error_result(call_id, "spawn_subagent needs a non-empty 'task' string")
        name = str(arguments.get("name") or f"{spec.name}.sub{len(parent_result.children) + 1}")
        child = AgentSpec(
            name=name,
            system=spec.system,
            context_id=str(arguments.get("context_id") or spec.context_id),
            scope=spec.scope,
            automated=spec.automated,
            max_turns=spec.max_turns,
            parent=spec.name,
            session_of=parent_result.agent_id if self._subagent_context == "inherit" else None,
        )
        if arguments.get("background") is True:
            group = self._groups.get(parent_result.agent_id)
            if group is not None:
                if self._background_subagents == "visible":
                    child = dataclasses.replace(child, calls_visible_to=parent_result.agent_id)
                group.start_soon(self._run_background, child, task, parent_result)
                return {
                    "type": "tool_result",
                    "tool_use_id": call_id,
                    "content": [
                        {"type": "text", "text": f"subagent {name} started in the background"}
                    ],
                }
        child_result = await self.run(child, task)
        parent_result.children.append(child_result)
        if child_result.stop == "error":
            trace.get_current_span().set_attribute(sc.ERROR_TYPE, "subagent_failed")
            return _error_result(call_id, f"subagent {name} failed: {child_result.error}")
        return {
            "type": "tool_result",
            "tool_use_id": call_id,
            "content": [{"type": "text", "text": child_result.text or "(no answer)"}],
        }

    async def _run_background(
        self, child: AgentSpec, task: str, parent_result: AgentResult
    ) -> None:
        parent_result.children.append(await self.run(child, task))


class _History:
    """A run's link to its persisted thread (none: nothing is persisted)."""

    def __init__(self, store: ThreadStore | None, spec: AgentSpec, conv: Conversation) -> None:
        self.thread = spec.thread if store is not None else None
        self._store = store
        self._agent = spec.name
        self._conv = conv
        self.saved = 0  # messages of the conversation already in the thread

    @property
    def handle(self) -> tuple[ThreadStore, str, str] | None:
        if self._store is None or self.thread is None:
            return None
        return self._store, self.thread, self._agent

    def load(self) -> list[dict[str, Any]]:
        assert self._store is not None
        assert self.thread is not None
        return self._store.load(self.thread, agent=self._agent)

    async def save(self) -> None:
        """Write what the conversation added since the last save."""
        if self._store is None or self.thread is None:
            return
        new = self._conv.messages[self.saved :]
        self.saved = len(self._conv)
        await self._store.append(self.thread, new, agent=self._agent)


def _error_result(call_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": call_id,
        "is_error": True,
        "content": [{"type": "text", "text": text}],
    }


def _mcp_result_block(call_id: str, result: CallToolResult) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for item in result.content:
        if isinstance(item, TextContent):
            if item.text.strip():
                content.append({"type": "text", "text": item.text})
        elif isinstance(item, ImageContent):
            content.append(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": item.mime_type, "data": item.data},
                }
            )
        else:
            content.append({"type": "text", "text": item.model_dump_json(exclude_none=True)})
    if not content and result.structured_content is not None:
        content.append({"type": "text", "text": json.dumps(result.structured_content)})
    if not content:
        content.append({"type": "text", "text": "(empty result)"})
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id, "content": content}
    if result.is_error:
        block["is_error"] = True
    return block


def _input_tokens(usage: anthropic.types.Usage) -> int:
    """All input tokens of a request: cached ones are part of its context too."""
    return (
        usage.input_tokens
        + (usage.cache_read_input_tokens or 0)
        + (usage.cache_creation_input_tokens or 0)
    )


def _api_error_type(exc: anthropic.APIError) -> str:
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict) and isinstance(error.get("type"), str):
                return str(error["type"])
        return f"http_{exc.status_code}"
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(exc, anthropic.APIConnectionError):
        return "connection_error"
    return type(exc).__name__


def _api_error_text(exc: anthropic.APIError) -> str:
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return f"{exc.status_code} {error.get('type')}: {error['message']}"
        return f"{exc.status_code}: {exc.message}"
    return str(exc)
