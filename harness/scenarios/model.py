"""Scenario files: one YAML file declares a whole reproducible run.

::

    name: cascade
    description: Two subagents share one ssh connection; A's call outlasts the 150 s timeout.
    start: "2026-11-27T07:00:00Z"     # the run's clock origin (trace timestamps), optional
    runtime:                          # the runtime config, minus api / servers / policies
      prompt: Check the fleet.
      agents: {main: {system: You run the house.}}
    model: {agents: {...}}            # the fake API's model script, inline
    servers:
      ssh: {fake: ssh, timeout: 150, script: {tools: {...}}}
    budget: {virtual: 3600, wall: 30}
    faults:                           # optional: a fault plan (harness.faults.plan)
      - {type: kill, target: ssh, signal: SIGKILL, match: {method: tools/call, nth: 2}}
      - {type: llm, agent: main, fault: {kind: overloaded, retry_after: 1}}
    oracles:
      - no_reconnect_while_in_flight
      - review_saw_all_contexts: {task: blog_review, contexts: [General, Blog]}
    expect:
      buggy: [no_reconnect_while_in_flight]   # these must fail: the bug reproduced
      reproduces: always               # or "sometimes": a randomized scenario (below)
    policies:                          # optional: override single runtime policies
      buggy: {scope: explicit}

The runtime under test is the reference runtime (``harness.runtime``) unless ``runtime`` names
another one (``harness.scenarios.user_runtime``)::

    runtime:
      adapter: my_pkg.harness_adapter:create   # a Python runtime in process (sim and live)
      options: {mcp_timeout: 150}              # handed to it as ctx.options
      prompt: Check hosts a and b.
    # or
    runtime:
      command: [python, agent.py, --mcp-config, "{mcp_config}"]   # any agent process (live)
      env: {AGENT_MCP_TIMEOUT: "5"}
      prompt: Check hosts a and b.
    policies:                                   # buggy and fixed: two configurations of it
      fixed: {options: {declared_scope: true}}  # (or env: for a command)

Such a runtime is a black box: it is judged from what the rig observed (the API journal, the
fake servers' records, the processes), and oracles that need the reference runtime's own events
cannot judge it.

Faults act where the mode puts each server: in sim on the in-process transport (a kill closes
the connection), in live through the stdio interposer (real signals) or, for a streamable HTTP
server with ``proxy: true``, the TCP proxy (toxics on real sockets); ``llm`` faults go into the
fake API. Every fault is a ``harness.fault`` span and a run record with ``"source": "fault"``.

``buggy`` maps to naive / eager / inherit / last_usage / drop, ``fixed`` to coordinated /
between_turns / explicit / count_tokens / keep (``harness.runtime.config.PoliciesConfig``);
``eager`` and ``between_turns`` are presets of the compaction and history knobs, and a
scenario's ``policies`` section sets any knob per policy.
Under ``fixed`` every listed oracle must hold. A bad file fails at load with the file, line and
field named.

Any number under ``runtime``, ``model`` or ``servers`` may be a distribution
(``latency: {uniform: [100, 200]}``, see ``harness.scenarios.distributions``); each run draws
its values from its seed (``Scenario.resolve(seed)``) and records them (``RunOutcome.draws``).
A randomized scenario whose bug shows only for some seeds says ``reproduces: sometimes``: under
``buggy`` a run that does not reproduce it still meets the expectation (``harness explore``
measures how often it does); under ``fixed`` every oracle must hold for every seed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from harness._yaml import LocatedError, line_of, parse_yaml, read_text, validation_error
from harness.errors import ScenarioError
from harness.faults.plan import CancelFault, FaultPlan, LlmFault
from harness.runtime.config import (
    MAX_OUTPUT_TOKENS,
    AgentConfig,
    ApprovalsConfig,
    CompactionConfig,
    InterruptConfig,
    PoliciesConfig,
    RuntimeConfig,
    ScheduledTaskConfig,
    ServerConfig,
    ThinkingConfig,
    check_server_names,
    check_thinking_budget,
)

__all__ = [
    "ENV_REDACTED",
    "POLICY_MAP",
    "SCHEMA_FILE",
    "Budget",
    "Policy",
    "Scenario",
    "json_schema",
    "load_scenario",
    "write_schema_file",
]

Policy = Literal["buggy", "fixed"]
Mode = Literal["sim", "live"]

# What a run directory keeps of a command server's env values (API keys go there).
ENV_REDACTED = "[redacted]"

POLICY_MAP: dict[str, dict[str, str]] = {
    "buggy": {
        "reconnect": "naive",
        "compaction": "eager",
        "scope": "inherit",
        "context_measure": "last_usage",
        "thinking_blocks": "drop",
    },
    "fixed": {
        "reconnect": "coordinated",
        "compaction": "between_turns",
        "scope": "explicit",
        "context_measure": "count_tokens",
        "thinking_blocks": "keep",
    },
}


# Tool calls one scripted turn may make: they start at once, and the sim loop checks the wall
# budget between rounds, so this bounds how far past its budget a run can go.
MAX_TOOL_CALLS_PER_TURN = 256

# The run's clock origin: OTLP timestamps are unsigned nanoseconds since 1970 (up to 2554).
_EARLIEST_START = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST_START = datetime(2200, 1, 1, tzinfo=UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuntimeSection(_Strict):
    adapter: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="A Python runtime under test: package.module:factory (harness.adapter).",
    )
    command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="An agent process under test (live mode); {mcp_config} and {prompt} in its "
        "arguments are replaced.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Handed to the adapter's factory as ctx.options."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Added to the agent process's environment."
    )
    model: str = Field(
        default="claude-sonnet-4-6", description="The model name every request names."
    )
    max_tokens: int = Field(
        default=1024, gt=0, le=MAX_OUTPUT_TOKENS, description="max_tokens of every request."
    )
    prompt: str | None = Field(
        default=None, description="The main agent's first user message (or scheduled tasks)."
    )
    agents: dict[str, AgentConfig] = Field(
        default_factory=lambda: {"main": AgentConfig()},
        description="The agents by name: system prompt, chat context (tab), max turns. The "
        "main agent may call spawn_subagent {task, name} to run another.",
    )
    main_agent: str = Field(default="main", description="The agent the prompt goes to.")
    compaction: CompactionConfig = Field(
        default=CompactionConfig(),
        description="When the context reaches threshold_tokens, the compaction agent "
        "summarises all but the last keep_last messages.",
    )
    thinking: ThinkingConfig | None = Field(
        default=None, description="Extended thinking on every request, with this budget."
    )
    scheduled: list[ScheduledTaskConfig] = Field(
        default_factory=list,
        description="Tasks that fire at a time on the run's clock, each in a context (tab) "
        "and with the scope it declares.",
    )
    capture_content: bool = Field(
        default=False,
        description="Record message texts in the API journal and the trace (the request_* "
        "and tool_result_* oracles need them).",
    )
    max_retries: int = Field(
        default=2, ge=0, le=10, description="The anthropic SDK's retries of a failed request."
    )
    interrupts: list[InterruptConfig] = Field(
        default_factory=list, description=RuntimeConfig.model_fields["interrupts"].description
    )
    approvals: ApprovalsConfig | None = Field(
        default=None, description=RuntimeConfig.model_fields["approvals"].description
    )

    @model_validator(mode="after")
    def _one_runtime(self) -> RuntimeSection:
        if self.adapter is not None and self.command is not None:
            raise ValueError("runtime: give adapter or command, not both")
        if self.options and self.adapter is None:
            raise ValueError("runtime.options go to an adapter's factory: name runtime.adapter")
        if self.env and self.command is None:
            raise ValueError("runtime.env goes to an agent process: name runtime.command")
        if self.interrupts and self.under_test != "reference":
            raise ValueError("runtime.interrupts act on the reference runtime only")
        if self.approvals is not None and self.under_test != "reference":
            raise ValueError("runtime.approvals act on the reference runtime only")
        return self

    @property
    def under_test(self) -> Literal["reference", "adapter", "command"]:
        """Which runtime a run puts under test."""
        if self.adapter is not None:
            return "adapter"
        return "command" if self.command is not None else "reference"


class Budget(_Strict):
    """How long a run may take; a run past its budget is judged as hung."""

    virtual: float = Field(
        default=3600.0,
        gt=0,
        le=30 * 24 * 3600,
        description="Scenario seconds the run may last (virtual time in sim, scaled in live).",
    )
    wall: float = Field(
        default=60.0, gt=0, le=3600, description="Real seconds the run may take (a watchdog)."
    )
    start_up: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Live mode: real seconds the servers may take to start before the "
        "scenario's clock starts (a loaded machine spawns slowly; not counted in wall).",
    )
    time_scale: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="Live mode: real seconds per scenario second (0.01 turns a 150 s timeout "
        "into 1.5 s). Default: 0.01, or less when the virtual budget would not fit half the "
        "wall budget; a runtime under test (adapter or command) runs at 1. --time-scale "
        "overrides it; the scenario's schedule must fit the wall budget at this scale.",
    )


class ServerOverride(_Strict):
    """One server's settings under one policy, over its entry in ``servers``. What the server
    is and how it is reached (fake, command, url, transport) stay the same under both."""

    script: dict[str, Any] | None = Field(
        default=None,
        description="Merged into the server's inline script: a mapping merges key by key "
        "(tools.NAME.default.latency), any other value replaces "
        "(cancel_after_response: crash), a distribution too.",
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="The server's call timeout under this policy.",
    )


class _PolicyExtras(_Strict):
    servers: dict[str, ServerOverride] | None = Field(
        default=None,
        description="Server settings under this policy (a bug that sits in a server: its "
        "script option differs between buggy and fixed).",
    )
    options: dict[str, Any] | None = Field(
        default=None, description="An adapter runtime's options under this policy (merged)."
    )
    env: dict[str, str] | None = Field(
        default=None, description="An agent process's environment under this policy (merged)."
    )


# Every runtime knob may be overridden per policy: the overrides are PoliciesConfig's fields,
# each optional (a knob added there is a knob here, with its description).
if TYPE_CHECKING:
    PolicyOverrides = _PolicyExtras
else:
    PolicyOverrides = create_model(
        "PolicyOverrides",
        __base__=_PolicyExtras,
        __doc__="One policy's knob settings (any of the runtime's policies) and a user "
        "runtime's options or env.",
        **{
            name: (Optional[info.annotation], Field(default=None, description=info.description))  # noqa: UP045
            for name, info in PoliciesConfig.model_fields.items()
        },
    )


class Expectation(_Strict):
    """What the run must show: the bug under buggy, every oracle holding under fixed."""

    buggy: list[str] = Field(
        min_length=1,
        description="Listed oracles (name or name#label) that must all fail under buggy: "
        "the bug reproduced.",
    )
    fixed: Literal["hold"] = Field(
        default="hold", description="Under fixed every listed oracle must hold."
    )
    reproduces: Literal["always", "sometimes"] = Field(
        default="always",
        description="always: every seed reproduces under buggy; sometimes: a randomized "
        "scenario whose bug shows for some seeds (harness explore measures how often).",
    )


class Scenario(_Strict):
    """A scenario file: one reproducible run under a buggy and a fixed policy (the guide is
    docs/scenarios.md)."""

    # The file and text it was read from: a seed's draws that do not fit are located there.
    _source: str | None = PrivateAttr(default=None)
    _text: str | None = PrivateAttr(default=None)

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_\-]*$",
        max_length=80,
        description="Lower-case letters, digits, _ and -; names the run directories.",
    )
    description: str = Field(
        min_length=1, description="What happens in the run and what goes wrong."
    )
    start: datetime = Field(
        default=datetime(2026, 11, 27, 7, 0, tzinfo=UTC),
        description="The run's clock origin (trace timestamps); UTC when no zone is given.",
    )
    runtime: RuntimeSection = Field(
        default=RuntimeSection(),
        description="The reference runtime's agents, prompt and tasks, or the runtime under "
        "test (adapter or command).",
    )
    model: dict[str, Any] = Field(
        description="The fake Messages API's model script: each agent's turns, conditions, "
        "echo placeholders and failures."
    )
    servers: dict[str, ServerConfig] = Field(
        default_factory=dict,
        description="The MCP servers by name: a fake server (with its tool script), a "
        "command or a URL.",
    )
    faults: FaultPlan = Field(
        default_factory=lambda: FaultPlan([]),
        description="The fault plan: frame faults, kills, freezes, toxics and API faults.",
    )
    budget: Budget = Field(
        default=Budget(), description="How long the run may take, and its live time scale."
    )
    modes: list[Mode] = Field(
        default_factory=lambda: list[Mode](["sim", "live"]),
        min_length=1,
        description="The modes the scenario means something in. A bug that needs real "
        "processes or sockets (an HTTP server that loses its sessions: sim serves every server "
        "in memory) says [live]; harness run and explore skip it in another mode and say so.",
    )
    oracles: list[str | dict[str, dict[str, Any]]] = Field(
        min_length=1,
        description="The invariants judged after the run: a name, or {name: {parameters}}; "
        "name#label lists one oracle more than once.",
    )
    expect: Expectation = Field(description="Which oracles must fail under buggy.")
    policies: dict[Policy, PolicyOverrides] = Field(
        default_factory=dict,
        description="Knob values under buggy and fixed, over the presets (a runtime under "
        "test: its options or env).",
    )
    distributions: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Drawn values by JSON pointer; written inline in files, gathered at load.",
    )

    @field_validator("start")
    @classmethod
    def _start_in_range(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            # A clock origin must not depend on the machine's time zone.
            value = value.replace(tzinfo=UTC)
        if not _EARLIEST_START <= value < _LATEST_START:
            raise ValueError(
                "start must be from 1970-01-01 to 2199-12-31 (trace timestamps are "
                "nanoseconds since 1970 and must fit the run after it)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _gather_distributions(cls, data: Any) -> Any:
        from harness.scenarios.distributions import extract, parse_spec, split_pointer

        if not isinstance(data, dict):
            return data
        out, specs = extract(data)
        given = out.get("distributions") or {}
        if not specs and not given:
            return data
        if not isinstance(given, dict):
            raise ValueError("distributions must be a mapping of JSON pointers to distributions")
        for ptr, spec in given.items():
            if not isinstance(spec, dict) or not str(ptr).startswith("/"):
                raise ValueError(f"distributions: {ptr!r} is not a JSON pointer to a mapping")
            parse_spec(spec, split_pointer(str(ptr)))
        out = dict(out) if out is data else out
        out["distributions"] = {**given, **{p: s.to_json() for p, s in specs.items()}}
        return out

    @field_validator("model")
    @classmethod
    def _model_script(cls, value: dict[str, Any]) -> dict[str, Any]:
        from fake_servers.anthropic import ModelScript

        script = ModelScript.model_validate(value)
        for name, agent in script.agents.items():
            for index, turn in enumerate(agent.turns):
                if len(turn.tool_use) > MAX_TOOL_CALLS_PER_TURN:
                    raise LocatedError(
                        f"{len(turn.tool_use)} tool calls in one turn; at most "
                        f"{MAX_TOOL_CALLS_PER_TURN} (each is a task the run starts at once)",
                        loc=("model", "agents", name, "turns", index, "tool_use"),
                    )
        return value

    @field_validator("servers")
    @classmethod
    def _server_scripts(cls, value: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        from fake_servers.mcp import SERVER_NAMES, ServerScript, build_server
        from harness.errors import ScriptError

        check_server_names(value)
        for name, server in value.items():
            if server.fake is not None and server.fake not in SERVER_NAMES:
                raise LocatedError(
                    f"unknown fake server {server.fake!r} (choose from {', '.join(SERVER_NAMES)})",
                    loc=("servers", name, "fake"),
                )
            if server.fake is not None and isinstance(server.script, dict):
                try:
                    # Building the server checks that the script names only its own tools.
                    build_server(server.fake, script=ServerScript.model_validate(server.script))
                except ScriptError as exc:
                    # The field is the script's own (tools.NAME, server): located in the file.
                    where = tuple(exc.field.split(".", 1)) if exc.field else ()
                    raise LocatedError(
                        exc.message, loc=("servers", name, "script", *where)
                    ) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        from harness.oracles import ORACLES, base_name
        from harness.oracles._registry import params_error

        names = self.oracle_names
        for index, label in enumerate(names):
            if base_name(label) not in ORACLES:
                close = difflib.get_close_matches(base_name(label), ORACLES, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise LocatedError(
                    f"unknown oracle {label!r}; {hint}choose from {', '.join(sorted(ORACLES))}",
                    loc=("oracles", index),
                )
        for index, label in enumerate(names):
            if label in names[:index]:
                raise LocatedError(
                    f"oracle {label!r} listed twice; tell them apart: name#label",
                    loc=("oracles", index),
                )
        for index, entry in enumerate(self.oracles):
            label = entry if isinstance(entry, str) else next(iter(entry))
            params = None if isinstance(entry, str) else entry[label]
            problem = params_error(label, params)
            if problem is not None:
                message, loc = problem
                raise LocatedError(message, loc=("oracles", index, label, *loc))
        for index, label in enumerate(self.expect.buggy):
            if label not in names:
                raise LocatedError(
                    f"oracle {label!r} is not listed in oracles (listed: {', '.join(names)})",
                    loc=("expect", "buggy", index),
                )
        self._check_runtime_under_test()
        if self.runtime.main_agent not in self.runtime.agents:
            raise ValueError(f"runtime.main_agent {self.runtime.main_agent!r} is not an agent")
        check_thinking_budget(self.runtime.thinking, self.runtime.max_tokens, loc=("runtime",))
        if self.runtime.prompt is None and not self.runtime.scheduled:
            raise ValueError("runtime needs a prompt or scheduled tasks: nothing would run")
        for task in self.runtime.scheduled:
            if task.agent not in self.runtime.agents:
                raise ValueError(f"scheduled task {task.name!r} names unknown agent {task.agent!r}")
            if task.at > self.budget.virtual:
                raise ValueError(
                    f"scheduled task {task.name!r} at {task.at} s is past the virtual budget "
                    f"({self.budget.virtual} s)"
                )
        approvals = self.runtime.approvals
        if approvals is not None and approvals.after > self.budget.virtual:
            raise LocatedError(
                f"runtime.approvals: the user answers {approvals.after:g} s after a run parks, "
                f"past the virtual budget ({self.budget.virtual:g} s): no parked call would "
                "ever be answered",
                loc=("runtime", "approvals", "after"),
            )
        self._check_faults()
        self._check_server_overrides()
        self._check_tool_names()
        return self

    def _server_tools(self) -> dict[str, frozenset[str] | None]:
        """Each server's tools under either policy (its preset's and those its inline script
        adds); None for a server whose tools are known only once it runs (a command, a url,
        a script file)."""
        import importlib

        out: dict[str, frozenset[str] | None] = {}
        for policy in ("buggy", "fixed"):
            for name, server in self.servers_under(policy).items():
                known = out.get(name, frozenset())
                if known is None or server.fake is None or isinstance(server.script, str):
                    out[name] = None
                    continue
                module = importlib.import_module(f"fake_servers.mcp.{server.fake}")
                scripted = (server.script or {}).get("tools") or {}
                out[name] = known | set(getattr(module, "PRESET", {})) | set(scripted)
        return out

    def _check_tool_names(self) -> None:
        """A tool named by a server's tool_timeouts, runtime.approvals or a fault's match is one
        the server (any server) offers, or the runtime's own spawn_subagent: a misspelt one
        never matches a call, and the timeout, approval or fault would silently never apply."""
        from harness.runtime.agent import SPAWN_TOOL

        tools = self._server_tools()

        def unknown(tool: str, servers: list[str]) -> str | None:
            known = [tools[s] for s in servers]
            if tool == SPAWN_TOOL or None in known:
                return None  # the runtime's own tool, or a server whose tools show at run time
            offered = sorted(set().union(*known))  # type: ignore[arg-type]
            if tool in offered:
                return None
            close = difflib.get_close_matches(tool, offered, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            what = f"server {servers[0]!r} has no" if len(servers) == 1 else "no server has a"
            return f"{what} tool {tool!r}; {hint}tools: {', '.join(offered) or 'none'}"

        for name, server in self.servers.items():
            for tool in server.tool_timeouts or {}:
                problem = unknown(tool, [name])
                if problem is not None:
                    raise LocatedError(problem, loc=("servers", name, "tool_timeouts", tool))
        approvals = self.runtime.approvals
        for index, tool in enumerate(approvals.tools if approvals else []):
            problem = unknown(tool, list(self.servers))
            if problem is not None:
                raise LocatedError(problem, loc=("runtime", "approvals", "tools", index))
        for index, fault in enumerate(self.faults):
            matched: str | None = getattr(getattr(fault, "match", None), "tool", None)
            if matched is None:
                continue
            servers = [fault.target] if fault.target in self.servers else list(self.servers)
            problem = unknown(matched, servers)
            if problem is not None:
                raise LocatedError(
                    f"fault {fault.label}: {problem}", loc=("faults", index, "match", "tool")
                )

    def _check_runtime_under_test(self) -> None:
        kind = self.runtime.under_test
        for policy, override in self.policies.items():
            knobs = [k for k in PoliciesConfig.model_fields if getattr(override, k) is not None]
            if kind != "reference" and knobs:
                raise LocatedError(
                    f"policies.{policy}.{knobs[0]} is a knob of the reference runtime; the "
                    f"runtime under test here is runtime.{kind} (use options or env)",
                    loc=("policies", policy, knobs[0]),
                )
            for key, wanted in (("options", "adapter"), ("env", "command")):
                if getattr(override, key) is not None and kind != wanted:
                    raise LocatedError(
                        f"policies.{policy}.{key} needs runtime.{wanted}",
                        loc=("policies", policy, key),
                    )

    def servers_under(self, policy: Policy) -> dict[str, ServerConfig]:
        """The servers under ``policy``: each entry with the policy's server settings over it."""
        override = self.policies.get(policy)
        if override is None or not override.servers:
            return dict(self.servers)
        out = dict(self.servers)
        for name, change in override.servers.items():
            server = out[name]
            update: dict[str, Any] = {}
            if change.script is not None:
                base = server.script if isinstance(server.script, dict) else {}
                update["script"] = _merged(base, change.script)
            if "timeout" in change.model_fields_set:
                update["timeout"] = change.timeout
            out[name] = server.model_copy(update=update)
        return out

    def _check_server_overrides(self) -> None:
        from fake_servers.mcp import ServerScript, build_server
        from harness.errors import ScriptError

        for policy, override in self.policies.items():
            for name, change in (override.servers or {}).items():
                loc: tuple[str | int, ...] = ("policies", policy, "servers", name)
                server = self.servers.get(name)
                if server is None:
                    known = ", ".join(sorted(self.servers)) or "none"
                    raise LocatedError(
                        f"policies.{policy}.servers names no server {name!r} (servers: {known})",
                        loc=loc,
                    )
                if change.script is None:
                    continue
                if server.fake is None or isinstance(server.script, str):
                    what = "a script file" if server.fake is not None else "no fake server"
                    raise LocatedError(
                        f"policies.{policy}.servers.{name}.script: server {name!r} is {what}; "
                        "a per-policy script merges into an inline one",
                        loc=(*loc, "script"),
                    )
                merged = self.servers_under(policy)[name]
                try:
                    script = ServerScript.from_data(merged.script)
                    build_server(merged.fake or "", script=script)
                except ScriptError as exc:
                    # The merged script's field, located in the policy's part where written.
                    where = tuple(exc.field.split(".")) if exc.field else ()
                    raise LocatedError(exc.message, loc=(*loc, "script", *where)) from None

    def user_options(self, policy: Policy) -> dict[str, Any]:
        """The adapter's ``ctx.options`` under ``policy``."""
        override = self.policies.get(policy)
        return {**self.runtime.options, **((override.options or {}) if override else {})}

    def user_env(self, policy: Policy) -> dict[str, str]:
        """The agent process's extra environment under ``policy``."""
        override = self.policies.get(policy)
        return {**self.runtime.env, **((override.env or {}) if override else {})}

    def _check_faults(self) -> None:
        from harness.runtime.config import check_fault_targets

        check_fault_targets(self.faults, servers=self.servers, api_is_fake=self.model)
        agents = set((self.model.get("agents") or {}).keys())
        for index, fault in enumerate(self.faults):
            at = getattr(fault, "at", None)
            if at is not None and at > self.budget.virtual:
                raise LocatedError(
                    f"fault {fault.label}: at {at} s is past the virtual budget "
                    f"({self.budget.virtual} s)",
                    loc=("faults", index, "at"),
                )
            if isinstance(fault, CancelFault) and self.runtime.under_test != "reference":
                raise LocatedError(
                    f"fault {fault.label}: a cancel is acted on by the runtime itself, and only "
                    f"the reference runtime can do that; runtime.{self.runtime.under_test} "
                    "cannot be told to cancel a call",
                    loc=("faults", index, "type"),
                )
            if isinstance(fault, LlmFault) and fault.agent not in (None, *agents):
                raise LocatedError(
                    f"fault {fault.label}: agent {fault.agent!r} is not in the model "
                    f"script (agents: {', '.join(sorted(agents))})",
                    loc=("faults", index, "agent"),
                )

    @property
    def oracle_names(self) -> list[str]:
        return [o if isinstance(o, str) else next(iter(o)) for o in self.oracles]

    @property
    def oracle_params(self) -> dict[str, dict[str, Any]]:
        return {next(iter(o)): next(iter(o.values())) for o in self.oracles if isinstance(o, dict)}

    def content_hash(self) -> str:
        data = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    def resolve(
        self, seed: int, *, overrides: dict[str, Any] | None = None
    ) -> tuple[Scenario, dict[str, Any]]:
        """This scenario with every distribution drawn for ``seed`` (``overrides``: draws by
        JSON pointer to use instead), and the draws. Without distributions: itself, ``{}``."""
        if not self.distributions:
            return self, {}
        from harness.scenarios.distributions import (
            DistributionError,
            parse_spec,
            resolve_data,
            split_pointer,
        )

        specs = {p: parse_spec(s, split_pointer(p)) for p, s in self.distributions.items()}
        data = self.model_dump(mode="json", exclude={"distributions"})
        try:
            resolved, draws = resolve_data(data, specs, seed=seed, overrides=overrides)
        except DistributionError as exc:
            raise ScenarioError(
                exc.message,
                path=self._source,
                line=line_of(self._text, exc.loc),
                field=".".join(map(str, exc.loc)),
            ) from None
        drawn = _validated(
            resolved,
            text=self._text,
            path=self._source,
            lead=lambda _: f"seed {seed} drew values that do not fit: ",
        )
        drawn._source, drawn._text = self._source, self._text
        return drawn, draws

    def runtime_config(self, policy: Policy) -> RuntimeConfig:
        """The runtime config of this scenario under ``policy``."""
        policies = dict(POLICY_MAP[policy])
        override = self.policies.get(policy)
        if override is not None:
            policies.update(
                override.model_dump(exclude_none=True, exclude={"options", "env", "servers"})
            )
        rt = self.runtime
        return RuntimeConfig.model_validate(
            {
                "model": rt.model,
                "max_tokens": rt.max_tokens,
                "api": {"fake_script": self.model, "max_retries": rt.max_retries},
                "policies": policies,
                "compaction": rt.compaction.model_dump(),
                "thinking": rt.thinking.model_dump() if rt.thinking else None,
                # A null timeout means "none", not "the default": kept through the dump.
                "servers": {
                    k: {
                        **v.model_dump(exclude_none=True),
                        "timeout": v.timeout,
                        "tool_timeouts": v.tool_timeouts,
                    }
                    for k, v in self.servers_under(policy).items()
                },
                "agents": {k: v.model_dump() for k, v in rt.agents.items()},
                "main_agent": rt.main_agent,
                "prompt": rt.prompt,
                "scheduled": [t.model_dump() for t in rt.scheduled],
                "capture_content": rt.capture_content,
                "faults": self.faults.model_dump(mode="json", exclude_none=True),
                "interrupts": [i.model_dump() for i in rt.interrupts],
                "approvals": rt.approvals.model_dump() if rt.approvals else None,
            }
        )


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files as written: the model's schema, where every value
    under ``runtime``, ``servers`` and ``faults`` may also be a distribution (any kind for a
    number, ``choice`` or ``chance`` for anything else), as the loader accepts."""
    from harness.scenarios.distributions import SECTIONS, json_schemas

    schema = Scenario.model_json_schema()
    defs: dict[str, Any] = schema["$defs"]
    _describe_server_scripts(defs)
    _describe_model_script(schema, defs)
    _describe_oracles(schema, defs)
    drawn: set[str] = set()
    pending = [schema["properties"][s] for s in SECTIONS if s in schema["properties"]]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            name = ref.removeprefix("#/$defs/")
            if ref and name not in drawn:
                drawn.add(name)
                pending.append(defs[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    for name in drawn:
        _drawable(defs[name])
    for section in SECTIONS:
        if section in schema["properties"]:
            _drawable_children(schema["properties"][section])
    defs.update(json_schemas())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _describe_server_scripts(defs: dict[str, Any]) -> None:
    """An inline fake-server ``script`` is a ``ServerScript`` (tools, their declarations and
    behaviours), an inline ``chat_fixture`` a ``ChatFixture``: give their schemas instead of
    "any object"."""
    from fake_servers.mcp import ServerScript
    from fake_servers.mcp.chat import ChatFixture

    for field, model in (("script", ServerScript), ("chat_fixture", ChatFixture)):
        schema = model.model_json_schema()
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        branches = defs["ServerConfig"]["properties"][field]["anyOf"]
        for index, branch in enumerate(branches):
            if branch.get("type") == "object":
                branches[index] = {"$ref": f"#/$defs/{model.__name__}"}


def _add_defs(defs: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Move ``schema``'s own ``$defs`` into ``defs`` (one class has one name in both)."""
    for name, definition in schema.pop("$defs", {}).items():
        if defs.setdefault(name, definition) != definition:
            raise ValueError(f"two schema definitions named {name}")
    return schema


def _describe_model_script(schema: dict[str, Any], defs: dict[str, Any]) -> None:
    """``model`` as the model script it is validated as (it is a plain mapping in the model
    so that the script's own errors point inside it)."""
    from fake_servers.anthropic import ModelScript

    defs["ModelScript"] = _add_defs(defs, ModelScript.model_json_schema())
    model = schema["properties"]["model"]
    schema["properties"]["model"] = {
        "description": model["description"],
        "$ref": "#/$defs/ModelScript",
    }


def _describe_oracles(schema: dict[str, Any], defs: dict[str, Any]) -> None:
    """Each oracle by name, and the parameters of those that take them."""
    from harness.oracles import ORACLES, PARAMS
    from harness.oracles._registry import ACCEPTS

    by_name: dict[str, Any] = {}
    for name, params in sorted(PARAMS.items()):
        ref = f"Oracle_{name}"
        defs[ref] = _add_defs(defs, params.model_json_schema())
        by_name[f"^{name}(#.+)?$"] = {"$ref": f"#/$defs/{ref}"}
    for name, accepts in sorted(ACCEPTS.items()):
        # Oracles that read their parameters themselves: their names, nothing else.
        by_name[f"^{name}$"] = {
            "type": "object",
            "properties": {key: {} for key in accepts},
            "additionalProperties": False,
        }
    labelled = "|".join(sorted(PARAMS))
    oracles = schema["properties"]["oracles"]
    oracles["items"] = {
        "anyOf": [
            {"type": "string", "enum": sorted(ORACLES)},
            {"type": "string", "pattern": f"^({labelled})#.+$"},
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "patternProperties": by_name,
                # Oracles that read their parameters themselves.
                "additionalProperties": {"type": "object"},
            },
        ]
    }


# ``json_schema()`` as shipped: ``harness schema`` prints this file instead of building the
# models (a second of imports); a test holds it equal to ``json_schema()``.
SCHEMA_FILE = Path(__file__).with_name("schema.json")


def write_schema_file() -> None:
    """Rewrite ``SCHEMA_FILE`` from the models (after changing a scenario model)."""
    SCHEMA_FILE.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")


def _numeric(node: dict[str, Any]) -> bool:
    branches = node.get("anyOf", [node])
    return any(b.get("type") in ("number", "integer") for b in branches if isinstance(b, dict))


def _or_drawn(node: dict[str, Any]) -> dict[str, Any]:
    kind = "Distribution" if _numeric(node) else "Pick"
    kept: dict[str, Any] = {k: node[k] for k in ("title", "description", "default") if k in node}
    inner = {k: v for k, v in node.items() if k not in kept}
    # A list's items may be drawn too (a turn's ``fail: [{chance: ..., then: ...}]``).
    for branch in [inner, *inner.get("anyOf", [])]:
        if isinstance(branch, dict) and isinstance(branch.get("items"), dict):
            branch["items"] = _or_drawn(branch["items"])
    return {**kept, "anyOf": [inner, {"$ref": f"#/$defs/{kind}"}]}


def _drawable_children(node: dict[str, Any]) -> None:
    """Let each value a schema node holds (properties, items, map values) be drawn."""
    props = node.get("properties")
    if isinstance(props, dict):
        for key, value in props.items():
            props[key] = _or_drawn(value)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _or_drawn(node[key])


def _drawable(node: dict[str, Any]) -> None:
    _drawable_children(node)
    for branch in node.get("anyOf", []):
        if isinstance(branch, dict):
            _drawable_children(branch)


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    servers = data.get("servers")
    if not isinstance(servers, dict):
        return  # validation names the field
    for server in servers.values():
        if isinstance(server, dict):
            for key in ("script", "chat_fixture"):
                value = server.get(key)
                if isinstance(value, str) and not Path(value).is_absolute():
                    server[key] = str(base / value)


def parse_scenario(text: str, *, path: str | Path = "<scenario>") -> Scenario:
    """Validate scenario YAML ``text``; errors name ``path``, line and field."""
    data = parse_yaml(text, path=path, error=ScenarioError)
    if not isinstance(data, dict):
        # What the file holds in words, not a Python type name ('NoneType' for an empty file).
        kinds = {type(None): "nothing", str: "plain text", list: "a list", bool: "true or false"}
        held = kinds.get(type(data), "a number")
        raise ScenarioError(
            f"a scenario must be a YAML mapping of its fields (name, description, ...); "
            f"this holds {held}",
            path=path,
        )
    if isinstance(path, Path) or path != "<scenario>":
        _resolve_paths(data, Path(path).parent)
    from harness.scenarios.distributions import DistributionError, extract

    try:
        # Nominal values in place of distributions, so the scripts below validate as written.
        data, specs = extract(data)
    except DistributionError as exc:
        raise ScenarioError(
            exc.message,
            path=path,
            line=line_of(text, exc.loc),
            field=".".join(str(p) for p in exc.loc),
        ) from None
    if specs:
        given = data.get("distributions")
        data["distributions"] = {
            **(given if isinstance(given, dict) else {}),
            **{p: s.to_json() for p, s in specs.items()},
        }
    scenario = _validated(data, text=text, path=path)
    if path != "<scenario>":
        scenario._source, scenario._text = str(path), text
    return scenario


def _validated(
    data: dict[str, Any],
    *,
    text: str | None,
    path: str | Path | None,
    lead: Callable[[tuple[int | str, ...]], str] | None = None,
) -> Scenario:
    """``data`` as a Scenario, or a located ScenarioError. The embedded scripts are validated
    first, so an error points inside them (servers.ssh.script.tools..., model.agents.A...)."""
    from fake_servers.anthropic import ModelScript
    from fake_servers.mcp import ServerScript
    from fake_servers.mcp.chat import ChatFixture

    nested: list[tuple[tuple[int | str, ...], type[BaseModel], Any]] = []
    if isinstance(data.get("model"), dict):
        nested.append((("model",), ModelScript, data["model"]))
    servers = data.get("servers")
    if isinstance(servers, dict):
        for name, server in servers.items():
            if isinstance(server, dict) and isinstance(server.get("script"), dict):
                nested.append((("servers", name, "script"), ServerScript, server["script"]))
            if isinstance(server, dict) and isinstance(server.get("chat_fixture"), dict):
                fixture = server["chat_fixture"]
                nested.append((("servers", name, "chat_fixture"), ChatFixture, fixture))
    try:
        for prefix, model, value in nested:
            try:
                model.model_validate(value)
            except ValidationError as exc:
                raise _Located(prefix, exc) from None
        return Scenario.model_validate(data)
    except (ValidationError, _Located) as exc:
        prefix, error_set = (exc.prefix, exc.error) if isinstance(exc, _Located) else ((), exc)
        raise validation_error(
            error_set,
            text=text,
            path=path,
            error=ScenarioError,
            prefix=prefix,
            data=data,
            lead=lead,
        ) from None


def _merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``change`` over ``base``: mappings merge key by key, any other value (a distribution
    too: ``latency: {uniform: [1, 2]}``) replaces."""
    from harness.scenarios.distributions import KINDS

    out = dict(base)
    for key, value in change.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and not set(KINDS) & set(value):
            out[key] = _merged(current, value)
        else:
            out[key] = value
    return out


class _Located(Exception):
    def __init__(self, prefix: tuple[int | str, ...], error: ValidationError) -> None:
        super().__init__(str(error))
        self.prefix = prefix
        self.error = error


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return parse_scenario(read_text(path, error=ScenarioError, what="scenario"), path=path)
