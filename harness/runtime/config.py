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
    "AgentConfig",
    "ApiConfig",
    "CompactionConfig",
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


# The founding ``scope`` values, as presets of the scope knobs.
_SCOPE_PRESETS = {"inherit": "thread", "explicit": "declared"}


class PoliciesConfig(_Strict):
    reconnect: Literal["naive", "coordinated"] = "coordinated"
    compaction: Literal["eager", "between_turns"] = "between_turns"
    scope: Literal["inherit", "explicit"] | None = Field(
        default=None,
        description="Preset of the scope knobs (the founding scope_leak bug): inherit = "
        "default_query_scope thread; explicit = default_query_scope declared. A knob set "
        "explicitly wins over the preset.",
    )
    # What the check before a request compares with compaction.threshold_tokens: the last
    # response's usage (blind to the tool results appended since) or the request's count.
    context_measure: Literal["last_usage", "count_tokens"] = "count_tokens"
    # What becomes of a response's thinking blocks in the history sent back.
    thinking_blocks: Literal["keep", "drop"] = "keep"

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
    def _scope_preset(cls, data: Any) -> Any:
        # The founding bundled value expands to its knob unless the knob is set itself.
        if isinstance(data, dict) and data.get("default_query_scope") is None:
            preset = _SCOPE_PRESETS.get(data.get("scope"))  # type: ignore[arg-type]
            if preset is not None:
                data = {**data, "default_query_scope": preset}
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

    fake: str | None = None
    # How a fake server is reached: in memory (sim), a stdio subprocess, or streamable HTTP.
    transport: Literal["memory", "stdio", "http"] = "memory"
    command: list[str] | None = None
    env: dict[str, str] | None = None
    url: str | None = None
    timeout: float = Field(default=150.0, gt=0, allow_inf_nan=False)
    script: str | dict[str, Any] | None = None  # a file, or the script inline
    chat_fixture: str | None = None
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


class AgentConfig(_Strict):
    system: str = "You are a helpful assistant."
    context_id: str = "General"
    max_turns: int = Field(default=20, gt=0, le=1000)


class ScheduledTaskConfig(_Strict):
    name: str
    at: float = Field(ge=0, description="seconds after the run starts, on the runtime's clock")
    agent: str
    prompt: str = Field(min_length=1)
    context_id: str
    scope: str | None = None


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
