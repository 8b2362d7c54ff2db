"""The runtime's configuration: one YAML file (or the same model built in Python).

Example::

    model: claude-sonnet-4-6
    api:
      fake_script: model-script.yaml     # in-process fake Messages API; or base_url + api_key_env
    policies: {reconnect: coordinated, compaction: between_turns, scope: explicit,
               context_measure: count_tokens, thinking_blocks: keep}
    compaction: {threshold_tokens: 150000, keep_last: 4}
    thinking: {budget_tokens: 2048}                  # extended thinking on every request
    servers:
      ssh: {fake: ssh, timeout: 150}                  # in-memory fake server
      chat: {command: [python, -m, my_chat_server]}   # any stdio MCP server
      web: {url: "http://127.0.0.1:8931/mcp", proxy: true}  # streamable HTTP, via the TCP proxy
    agents:
      main: {system: "You are the house assistant.", context_id: General}
    scheduled:
      - {name: blog_review, at: 3600, agent: main, context_id: Blog, scope: all,
         prompt: "Review today's chats for blog material."}
    faults:                                           # a fault plan (harness.faults.plan)
      - {type: kill, target: chat, signal: SIGKILL, match: {method: tools/call, nth: 3}}
      - {type: toxic, target: web, toxic: {type: latency, attributes: {latency: 200}}}

Errors name the file, line and field (``servers.ssh.timeout``) and the bad value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from harness._yaml import LocatedError, parse_yaml, read_text, validation_error
from harness.errors import ConfigError
from harness.faults.plan import ANTHROPIC_TARGET, FaultPlan, LlmFault

__all__ = [
    "COMPACTION_PRESETS",
    "RECONNECT_PRESETS",
    "AgentConfig",
    "ApiConfig",
    "ApprovalsConfig",
    "CompactionConfig",
    "InterruptConfig",
    "PoliciesConfig",
    "RuntimeConfig",
    "ScheduledTaskConfig",
    "ServerConfig",
    "ThinkingConfig",
    "load_runtime_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(_Strict):
    """Where the Messages API is: the in-process fake (``fake_script``) or a base URL."""

    fake_script: str | dict[str, Any] | None = None  # a file, or the script inline
    base_url: str | None = None
    api_key_env: str = "ANTHROPIC_API_KEY"
    max_retries: int = Field(default=2, ge=0, le=10)
    # Seconds one request may take. Always given to the SDK: without it the SDK refuses a
    # non-streaming request whose max_tokens could outlast its 10-minute default.
    timeout: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    loopback: bool = False  # serve the fake on a loopback port instead of in-process

    @model_validator(mode="after")
    def _one_target(self) -> ApiConfig:
        if self.fake_script is not None and self.base_url is not None:
            raise ValueError("give fake_script or base_url, not both")
        return self


# What each ``reconnect`` preset sets, for the knobs a policy does not set itself.
RECONNECT_PRESETS: dict[str, dict[str, Any]] = {
    "naive": {"reconnect_when": "at_once", "reconnect_coordination": "none", "call_retries": 0},
    "coordinated": {
        "reconnect_when": "when_idle",
        "reconnect_coordination": "per_generation",
        "call_retries": 1,
    },
}


# What the ``compaction`` preset stands for, knob by knob (a knob given beside it wins).
COMPACTION_PRESETS: dict[str, dict[str, str]] = {
    "eager": {
        "compaction_trigger": "after_response",
        "compaction_cut": "slide_to_user",
        "compaction_errors": "fail_run",
        "history_checks": "off",
    },
    "between_turns": {
        "compaction_trigger": "between_turns",
        "compaction_cut": "keep_pairs",
        "compaction_errors": "keep_history",
        "history_checks": "strict",
    },
}


# The founding ``scope`` values, as presets of the scope knobs.
_SCOPE_PRESETS = {"inherit": "thread", "explicit": "declared"}


class PoliciesConfig(_Strict):
    reconnect: Literal["naive", "coordinated"] = Field(
        default="coordinated",
        description="Preset of the reconnect knobs below (a knob set explicitly wins): naive = "
        "reconnect_when at_once, reconnect_coordination none, call_retries 0 (the founding "
        "cascade bug); coordinated = when_idle, per_generation, 1 (its fix).",
    )
    compaction: Literal["eager", "between_turns"] | None = Field(
        default=None,
        description="A preset of the compaction knobs: eager = compaction_trigger "
        "after_response, compaction_cut slide_to_user, compaction_errors fail_run, "
        "history_checks off (the founding orphaned-tool-block bug); between_turns = "
        "between_turns, keep_pairs, keep_history, strict. A knob given beside it wins.",
    )
    scope: Literal["inherit", "explicit"] | None = Field(
        default=None,
        description="Preset of the scope knobs (the founding scope_leak bug): inherit = "
        "default_query_scope thread; explicit = default_query_scope declared. A knob set "
        "explicitly wins over the preset.",
    )
    context_measure: Literal["last_usage", "count_tokens"] = Field(
        default="count_tokens",
        description="What the check before a request compares with "
        "compaction.threshold_tokens. buggy: last_usage (the last response's usage, blind to "
        "the tool results appended since, so the next request can outgrow the window); fixed: "
        "count_tokens (the API's count of the request about to be sent).",
    )
    thinking_blocks: Literal["keep", "drop"] = Field(
        default="keep",
        description="What becomes of a response's thinking blocks in the history sent back. "
        "buggy: drop (the next tool-loop request is refused: a final assistant message must "
        "start with a thinking block); fixed: keep (every block sent back as returned).",
    )

    # MCP connection knobs
    reconnect_on: Literal["timeout_or_close", "close"] = Field(
        default="timeout_or_close",
        description="What makes the runtime replace a server's connection: a call that timed "
        "out or found the connection closed (timeout_or_close), or only a closed connection "
        "(close: a timed-out call returns its timeout error and the session stays, as the MCP "
        "SDK clients do by default). Neither is a bug by itself; timeout_or_close is what the "
        "reconnect knobs below act on in the founding cascade scenarios.",
    )
    reconnect_when: Literal["at_once", "when_idle"] = Field(
        default="when_idle",
        description="When a failed call's reconnect tears the connection down. buggy: at_once "
        "(the failing caller closes it under every other call in flight on it, which die with "
        "'Connection closed'; the founding cascade bug), fixed: when_idle (new calls wait, the "
        "teardown waits until the in-flight count is zero).",
    )
    reconnect_coordination: Literal["none", "per_generation"] = Field(
        default="per_generation",
        description="Who reconnects. buggy: none (every failed caller reconnects on its own, so "
        "reconnects race and spawned connections are orphaned; the founding cascade bug), "
        "fixed: per_generation (one reconnect per connection generation under a per-server "
        "lock, later callers skip it).",
    )
    call_retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Times a call that failed by timeout, closed connection or a lost session "
        "is retried on the restored connection. buggy: 0 (the failure reaches the model), "
        "fixed: 1.",
    )
    call_timeout: Literal["configured", "none"] = Field(
        default="configured",
        description="Whether tool calls get a timeout at all. configured: each server's "
        "timeout and tool_timeouts; buggy: none (the call is awaited bare, so a server that "
        "never answers freezes the agent; HKUDS/nanobot PR #950, strands-agents #4403).",
    )
    session_open: Literal["eager", "lazy", "per_call"] = Field(
        default="eager",
        description="When a server's session opens. eager: at agent start, when the tool "
        "catalogue is listed (a first call never races it); lazy: the catalogue is listed on a "
        "short-lived session and the shared session opens on the first call (concurrent first "
        "calls race its creation, see session_lock); per_call: every call opens and closes a "
        "session of its own (nothing shared, no reconnect).",
    )
    session_lock: bool = Field(
        default=True,
        description="Whether opening a shared session (lazily or on reconnect) is serialised per "
        "server. buggy: false (concurrent first calls each open a session; all but the last "
        "are orphaned), fixed: true.",
    )
    tools_refresh_after_timeout: bool = Field(
        default=False,
        description="Whether a timed-out tools/call is followed by a tools/list refresh on the "
        "same session. buggy: true (the refresh queues behind the abandoned work on a serial "
        "server and times out too; seen in github/copilot-cli #4731), fixed: false.",
    )
    tools_on_failed_refresh: Literal["evict", "keep"] = Field(
        default="keep",
        description="What a failed tools/list refresh does to the server's tool catalogue. "
        "buggy: evict (its tools leave the catalogue the model is offered, every later call "
        "is an unknown tool while the server is healthy; github/copilot-cli #4731), "
        "fixed: keep.",
    )
    session_not_found: Literal["terminal", "reinitialize"] = Field(
        default="reinitialize",
        description="What an HTTP 404 'Session not found' (the server lost its session table) "
        "does. buggy: terminal (the call and every later call on the session fail with "
        "'Session terminated'; modelcontextprotocol/python-sdk #3556), fixed: reinitialize "
        "(a new session without Mcp-Session-Id, and the call is retried once on it, as the "
        "spec requires).",
    )
    late_reply: Literal["ignore", "close_session"] = Field(
        default="ignore",
        description="What a response with an unknown or already-abandoned request id does to "
        "the transport. buggy: close_session (the session dies and every call in flight on it "
        "fails, like mcp 1.x's BrokenResourceError on a reply to a timed-out request), "
        "fixed: ignore (dropped, as mcp 2.x does).",
    )
    cancel_effect: Literal["notify", "abort_transport", "abort_disconnect"] = Field(
        default="notify",
        description="What a client-side cancel of a tool call (a user's cancel, a cancel "
        "fault) does besides ending the call. notify (fixed): notifications/cancelled only, "
        "the session stays. abort_transport: the abort closes the server's transport as well "
        "(a stdio server's process is ended) and every other call in flight on it fails with "
        "'Connection closed'; the next call opens a new session (qwen-code PR #11466 re-arms "
        "the connection this way). abort_disconnect (buggy, qwen-code #11272): the transport "
        "is closed and the server is left disconnected: every later call to it fails at once, "
        "it is never reconnected.",
    )
    stderr: Literal["inherit", "drain", "pipe_unread"] = Field(
        default="inherit",
        description="A stdio server's stderr (live mode; in-memory servers have none). inherit: "
        "the runtime's own stderr; drain: a pipe the runtime reads and discards; buggy: "
        "pipe_unread (a pipe never read: a server that logs more than the pipe buffer, 64 KiB "
        "on Linux, blocks on its next write and stops answering).",
    )

    # History knobs
    compaction_trigger: Literal["between_turns", "after_response", "during_tools"] = Field(
        default="between_turns",
        description="When the compaction check runs. between_turns (fixed): before a request, "
        "only while no tool call is open. after_response (buggy, the founding "
        "orphaned-tool-block bug): after every response, also one that opens tool calls. "
        "during_tools (buggy, seen in pi #8667): while the response's tool calls are in flight.",
    )
    compaction_cut: Literal["slide_to_user", "keep_pairs"] = Field(
        default="keep_pairs",
        description="Where compaction cuts (keeping compaction.keep_last messages). "
        "slide_to_user (buggy, founding bug; claude-code #56515): the cut slides forward until "
        "the kept part starts with a user message, so a tool_use can be summarized away while "
        "its tool_result is kept or still to come. keep_pairs (fixed): the cut moves back until "
        "the kept part does not start with a tool_result.",
    )
    compaction_errors: Literal["fail_run", "keep_history"] = Field(
        default="keep_history",
        description="A failed summary request: fail_run (buggy) ends the agent with the error; "
        "keep_history (fixed) leaves the history as it was and goes on.",
    )
    history_checks: Literal["strict", "off"] = Field(
        default="strict",
        description="strict (fixed): the history is a state machine that refuses a tool_result "
        "without its open tool_use, a request while tool calls are open and compaction while "
        "they are open (the run fails with conversation_state). off (buggy): a plain list, so "
        "a broken history reaches the API and its 400 is what happens.",
    )
    compaction_lock: Literal["held", "released"] = Field(
        default="held",
        description="Compaction of a persisted thread: held (fixed, openai-agents-python PR "
        "#4736) keeps the thread's lock from the snapshot to the replacement, so a concurrent "
        "run's write waits; released (buggy, openai-agents-python #4679) lets go while the "
        "summary is awaited, and the clear-and-replace overwrites what was written meanwhile.",
    )
    history_window: int | None = Field(
        default=None,
        ge=1,
        description="Messages of a persisted thread a run loads (the last k; none: all). "
        "Seen as agno num_history_messages, openai-agents SessionSettings.limit, "
        "semantic-kernel ChatHistoryTruncationReducer.target_count.",
    )
    window_cut: Literal["plain", "by_content", "pairs"] = Field(
        default="pairs",
        description="How the history window cuts. plain (buggy, agno #9372, "
        "openai-agents-python #4322, autogen PR #3178): the last k messages as they are, a "
        "tool result whose call fell outside included. by_content (buggy, semantic-kernel "
        "#12708): the cut moves back over a message holding tool_result blocks, but a result "
        "stored as plain text (stored_results: text) is not recognised. pairs (fixed, "
        "semantic-kernel PR #13608): any tool result, by role or by block, moves the cut back.",
    )
    stored_results: Literal["blocks", "text"] = Field(
        default="blocks",
        description="How the thread store keeps tool results: blocks (one user message of "
        "tool_result blocks, as sent) or text (one tool-role message of plain text per result, "
        "as chat stores of OpenAI-style runtimes do); a reload turns either back into "
        "tool_result blocks. Not a bug by itself: it is what window_cut: by_content misses.",
    )
    thread_compaction: Literal["replace", "append_entry"] = Field(
        default="replace",
        description="How compaction is recorded in a persisted thread: replace (the summarized "
        "messages give way to the summary: clear-and-replace session stores) or append_entry "
        "(a session log, as pi keeps it: a compaction entry is appended naming the first entry "
        "it keeps, counted compaction.keep_last entries back over the log, and a reload reads "
        "that summary and the log from there). Not a bug by itself: compacting during tool "
        "calls puts the entry inside a pair, and a later compaction that keeps from it "
        "orphans the result (pi #8667).",
    )
    resume_repair: Literal["none", "answer_pending"] = Field(
        default="answer_pending",
        description="A thread loaded with tool calls that never got results (a run killed or "
        "interrupted mid-call, a run ended by the tool budget): none (buggy, claude-code "
        "#3003, copilot-cli #3183) sends it as stored and the API answers 400; answer_pending "
        '(fixed) gives each such call an error result ("interrupted") before the new turn.',
    )
    tool_budget: int | None = Field(
        default=None,
        ge=0,
        description="Tool calls one run (invocation) may make; none: no limit. A response "
        "whose calls would pass it runs none of them and ends the run (tool_budget_end).",
    )
    approval_resume: Literal["write_turn", "write_results_only"] = Field(
        default="write_turn",
        description="What a run that parked for a tool approval (runtime approvals) writes to "
        "its persisted thread when it resumes; the parked turn is not written while the run "
        "waits. write_turn (fixed): the parked response with its tool calls, then their "
        "results. write_results_only (buggy, openai-agents-python #4827: the deferred "
        "interrupted-turn items were never persisted on a resume that runs the model again): "
        "only the results, so the thread holds a tool result without its call and every later "
        "run on it is refused.",
    )
    tool_budget_end: Literal["answer_over_limit", "answer_all"] = Field(
        default="answer_all",
        description="How a run ended by the tool budget leaves its history. answer_over_limit "
        "(buggy, langchain ToolCallLimitMiddleware exit_behavior=end before PR #39258): only "
        "the calls over the limit get an error result, the others stay pending in the thread "
        "and the next invocation on it is refused. answer_all (fixed, langchain PR #39258): "
        "every pending call gets an error result, none runs.",
    )

    # Scope knobs
    default_query_scope: Literal["thread", "resource", "declared"] = Field(
        default="declared",
        description="What a query to a scoped server (chat, memory) reads when the model gave "
        "no context_id or scope. thread: the caller's own context (the interactive default; "
        "buggy for scheduled tasks: the founding scope_leak, where the blog review read only "
        "its tab; buggy for memory shared per channel: getsentry/junior #652). resource: every "
        "context of the caller's resource or channel (the server's grouping), sent as "
        "scope=resource to tools that take a scope (buggy: mastra #15426, the recall tool "
        "defaulted to resource and users of one default resource read each other's chats; "
        "anything-llm #1349). declared: a scheduled task's declared scope, and an automated "
        "query without one is refused; interactive queries read the caller's context (fixed "
        "for scheduled tasks). mastra's fix was thread (PR #16583).",
    )
    subagent_context: Literal["inherit", "fresh"] = Field(
        default="fresh",
        description="The session a subagent runs in. inherit: its parent's: it starts from a "
        "copy of the parent's settled history, tool calls included (buggy: mastra PR #13927, "
        "subagents got the parent's tool-call parts), and its compaction summary is written "
        "into the parent's history, replacing the parent's earlier turns (buggy: Kiro #10482, "
        "sub-agent compaction truncates the parent session). fresh: a session of its own that "
        "starts from its task (fixed). Its chat context and the task's declared scope are "
        "passed down either way.",
    )

    background_subagents: Literal["isolated", "visible"] = Field(
        default="isolated",
        description="A subagent spawned with background: true runs while its parent goes on. "
        "visible: each of its tool rounds (calls and results) is written into the parent's "
        "history, so the parent's next requests carry tool calls it never made (buggy: "
        "claude-code #14118, a background subagent's tool calls shown in the parent's "
        "context). isolated: the parent sees only that it started (fixed).",
    )

    @model_validator(mode="before")
    @classmethod
    def _expand_presets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            preset = RECONNECT_PRESETS.get(data.get("reconnect", "coordinated"))
            if preset is not None:
                data = {**preset, **data}
            if data.get("compaction") in COMPACTION_PRESETS:
                data = {**COMPACTION_PRESETS[data["compaction"]], **data}
            if data.get("default_query_scope") is None:
                scope = _SCOPE_PRESETS.get(data.get("scope"))
                if scope is not None:
                    data = {**data, "default_query_scope": scope}
        return data


class ThinkingConfig(_Strict):
    """Extended thinking: ``thinking: {type: enabled, budget_tokens: N}`` on every request."""

    budget_tokens: int = Field(ge=1024)


class CompactionConfig(_Strict):
    threshold_tokens: int = Field(default=150_000, gt=0)
    keep_last: int = Field(default=4, ge=0)
    agent: str = "compactor"


class ServerConfig(_Strict):
    """One MCP server: ``fake`` (in-memory fake server), ``command`` (stdio) or ``url``."""

    fake: str | None = Field(
        default=None,
        description="A fake MCP server of the harness: ssh, vault, traffic, cameras, chat, or "
        "declared (no built-in tools: every tool, its description, input schema and behaviour "
        "is declared in script.tools).",
    )
    # How a fake server is reached: in memory (sim), a stdio subprocess, or streamable HTTP.
    transport: Literal["memory", "stdio", "http"] = "memory"
    command: list[str] | None = None
    env: dict[str, str] | None = None
    url: str | None = None
    timeout: float | None = Field(
        default=150.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a tools/call may take before the runtime gives up on it; null: "
        "no timeout (the call waits for as long as the server and the transport let it).",
    )
    tool_timeouts: dict[str, float | None] = Field(
        default_factory=dict,
        description="Per-tool call timeouts in seconds (null: none), over the server's timeout.",
    )
    script: str | dict[str, Any] | None = Field(
        default=None,
        description="A fake server's script, inline or a YAML/JSON file: tools (declared "
        "tools: description, input_schema, store) with their behaviour by call index, by "
        "arguments or by default (latency, result, error, hang, crash, stderr_bytes, "
        "ignore_cancel, late_response, unknown_id_response, forget_sessions), and server "
        "options (sdk, requests, cancel_after_response, slow_start, crash_after_calls).",
    )
    chat_fixture: str | dict[str, Any] | None = Field(
        default=None,
        description="The chat server's history, inline or a YAML/JSON file: default_context, "
        "contexts (name: messages with at, author, text) and resources (default: a built-in "
        "day).",
    )
    scoped: bool = False
    # Reach the server through the harness's TCP proxy (streamable HTTP only): the fault plan's
    # toxics for this server then act on real sockets. In sim mode, where servers are in
    # memory, the same toxics act on the in-process transport.
    proxy: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> ServerConfig:
        given = [k for k in ("fake", "command", "url") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of fake, command or url")
        if self.command is not None and not self.command:
            raise ValueError("command must not be empty")
        if self.fake is None and self.transport != "memory":
            raise ValueError("transport applies to fake servers only")
        if self.env is not None and self.command is None:
            # A fake server's process is the harness's own: its environment is not scenario data.
            raise ValueError("env applies to command servers only")
        if self.proxy and not (self.url is not None or self.transport == "http"):
            raise ValueError("proxy needs a streamable HTTP server (url, or transport: http)")
        for tool, seconds in self.tool_timeouts.items():
            if seconds is not None and not (0 < seconds < float("inf")):
                raise ValueError(
                    f"tool_timeouts.{tool} must be a positive number of seconds or null"
                )
        return self


# The largest output budget any current model accepts (the API answers 400 above a model's own).
MAX_OUTPUT_TOKENS = 128_000

# A server's name becomes part of file names (live mode's per-server script, events and spans
# files), tool span attributes and service names: letters, digits, ``_`` and ``-`` only.
SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_server_names(names: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first server name that is not a plain word."""
    for name in names:
        if not SERVER_NAME.fullmatch(str(name)):
            raise ValueError(
                f"server name {str(name)[:80]!r} is not allowed: use letters, digits, '_' and '-' "
                "(at most 64, starting with a letter or digit)"
            )


# A thread's name: part of events and records, like a server's name.
THREAD_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class AgentConfig(_Strict):
    system: str = "You are a helpful assistant."
    context_id: str = "General"
    max_turns: int = Field(default=20, gt=0, le=1000)
    thread: str | None = Field(
        default=None,
        pattern=THREAD_NAME,
        description="A persisted thread the agent's run loads its history from and writes "
        "every message to (none: a fresh history per run). Runs naming the same thread share "
        "it, one after another (a second invocation) or at once (two runs on one session).",
    )


class ScheduledTaskConfig(_Strict):
    name: str
    at: float = Field(ge=0, description="seconds after the run starts, on the runtime's clock")
    agent: str
    prompt: str = Field(min_length=1)
    context_id: str
    scope: str | None = None
    thread: str | None = Field(
        default=None,
        pattern=THREAD_NAME,
        description="The persisted thread this task's run continues (see agents.*.thread); "
        "none: the agent's own thread setting.",
    )


class ApprovalsConfig(_Strict):
    """Tools whose calls need a user's approval (human in the loop)."""

    tools: list[str] = Field(
        min_length=1,
        description="Tool names whose calls need approval: a response that calls one parks "
        "the run before any of its calls runs, until the user answers.",
    )
    after: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds on the run's clock between the run parking and the user's answer.",
    )
    decision: Literal["approve", "reject"] = Field(
        default="approve",
        description="The user's answer: approve (the parked calls run) or reject (each gets "
        "an error result, 'The user rejected this tool call.').",
    )


class InterruptConfig(_Strict):
    """The run is stopped from outside: a user's interrupt (Esc) or the runtime killed."""

    at: float = Field(ge=0, description="seconds after the run starts, on the runtime's clock")


class RuntimeConfig(_Strict):
    model: str = "claude-sonnet-4-6"
    max_tokens: int = Field(default=1024, gt=0, le=MAX_OUTPUT_TOKENS)
    api: ApiConfig = ApiConfig()
    policies: PoliciesConfig = PoliciesConfig()
    compaction: CompactionConfig = CompactionConfig()
    thinking: ThinkingConfig | None = None
    servers: dict[str, ServerConfig] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=lambda: {"main": AgentConfig()})
    main_agent: str = "main"
    prompt: str | None = None
    scheduled: list[ScheduledTaskConfig] = Field(default_factory=list)
    capture_content: bool = False
    faults: FaultPlan = Field(default_factory=lambda: FaultPlan([]))
    approvals: ApprovalsConfig | None = Field(
        default=None,
        description="Tools whose calls wait for a user's approval, and the user's answer "
        "(none: every call runs at once).",
    )
    interrupts: list[InterruptConfig] = Field(
        default_factory=list,
        description="Times at which every agent run in progress is ended at once, as a user's "
        "interrupt or a killed runtime ends it: nothing more is written to its thread. Tasks "
        "scheduled later resume from the persisted threads.",
    )

    @field_validator("servers")
    @classmethod
    def _server_names(cls, value: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        check_server_names(value)
        return value

    @model_validator(mode="after")
    def _references(self) -> RuntimeConfig:
        check_thinking_budget(self.thinking, self.max_tokens)
        if self.main_agent not in self.agents:
            raise ValueError(f"main_agent {self.main_agent!r} is not one of agents")
        for task in self.scheduled:
            if task.agent not in self.agents:
                raise ValueError(f"scheduled task {task.name!r} names unknown agent {task.agent!r}")
        check_fault_targets(self.faults, servers=self.servers, api_is_fake=self.api.fake_script)
        return self


def check_thinking_budget(
    thinking: ThinkingConfig | None, max_tokens: int, *, loc: tuple[str, ...] = ()
) -> None:
    """The API refuses a thinking budget that leaves no room for the answer: say so at load."""
    if thinking is not None and thinking.budget_tokens >= max_tokens:
        raise LocatedError(
            f"thinking.budget_tokens ({thinking.budget_tokens}) must be below max_tokens "
            f"({max_tokens})",
            loc=(*loc, "thinking", "budget_tokens"),
        )


def check_fault_targets(plan: FaultPlan, *, servers: dict[str, Any], api_is_fake: Any) -> None:
    """Every fault names a configured server or the model API; model-API faults need the fake
    API (they are injected into it) and are ``llm`` entries, not toxics."""
    for index, fault in enumerate(plan):
        target = fault.target
        where = f"fault {fault.label}"
        if target == ANTHROPIC_TARGET or isinstance(fault, LlmFault):
            if not isinstance(fault, LlmFault):
                raise LocatedError(
                    f"{where}: only 'llm' faults apply to the model API; "
                    "toxics on it are not supported",
                    loc=("faults", index, "type"),
                )
            if api_is_fake is None:
                raise LocatedError(
                    f"{where}: llm faults need the fake API (api.fake_script)",
                    loc=("faults", index),
                )
        elif target is not None and target not in servers:
            known = ", ".join(sorted(servers)) or "none"
            raise LocatedError(
                f"{where}: target {target!r} is not a configured server ({known})",
                loc=("faults", index, "target"),
            )


def load_runtime_config(path: str | Path) -> RuntimeConfig:
    """Load and validate a runtime config; raise ``ConfigError`` naming file, line and field."""
    path = Path(path)
    text = read_text(path, error=ConfigError, what="config")
    data = parse_yaml(text, path=path, error=ConfigError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping", path=path, value=type(data).__name__)
    try:
        config = RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, text=text, path=path, error=ConfigError, data=data) from None
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: RuntimeConfig, base: Path) -> RuntimeConfig:
    """Relative script and fixture paths are relative to the config file."""

    def rel(value: Any) -> Any:
        if not isinstance(value, str) or Path(value).is_absolute():
            return value
        return str(base / value)

    servers = {
        name: s.model_copy(
            update={
                "script": rel(s.script),
                "chat_fixture": rel(s.chat_fixture),
            }
        )
        for name, s in config.servers.items()
    }
    api = config.api
    if api.fake_script is not None:
        api = api.model_copy(update={"fake_script": rel(api.fake_script)})
    return config.model_copy(update={"servers": servers, "api": api})
