"""Model scripts: what the scripted model answers, per agent and per turn.

A script holds one or more *agents*; each agent has an ordered list of *turns*. The same script
is a YAML or JSON file (``ModelScript.load(path)``) or built in Python::

    ModelScript(agents={"parent": Agent(turns=[
        Turn(text="Checking.", tool_use=[ToolCall(name="mem_ssh", input={"host": "a"})]),
        Turn(when=Condition(tool_result_for="mem_ssh"), text="Saw: {tool_results}"),
    ])})

YAML form::

    default_agent: parent          # optional; a one-agent script defaults to its agent
    models: [claude-sonnet-4-6]    # optional; /v1/models lists them, other models get 404
    compaction_marker: "<compaction-summary>"
    limits:                        # optional; per model, over the built-in table
      claude-sonnet-4-6: {context_window: 5000, max_output_tokens: 64000}
    agents:
      parent:
        turns:
          - text: Checking.
            tool_use: [{name: mem_ssh, input: {host: a}}]
          - when: {tool_result_for: mem_ssh, tool_result_error: false}
            text: "Saw: {tool_results}"
            latency: 0.5
            fail: [{kind: rate_limit, retry_after: 1}]

**Turn selection.** Each request routed to an agent takes the first turn at or after the
agent's cursor whose ``when`` holds (a turn without ``when`` always holds); the cursor then moves
past it, so skipped conditional turns are never used. When no turn is left the request gets a
400 naming the agent and the cursor, unless the agent has ``repeat: true`` (the cursor wraps).

**The round.** A request's *round* is every ``tool_result`` since the last assistant turn,
wherever it sits: one user message or several (a runtime that sends each parallel result in its
own message), before or after text. Each result is known by the tool it answers, by its
``tool_use`` id and by the position (from 0) of that ``tool_use`` in the assistant turn.

**Conditions** (all given fields must hold): ``tool_result_for`` (some result of the round
answers that tool), ``tool_result_error`` (true: some result of the round is an error; false:
the round has results and none is), ``tool_error_for`` (some result of that tool is an error),
``tool_result_count`` (the round holds exactly that many results), ``tool_result_contains``
(some result's text contains it), ``has_compaction_summary`` (some text of the system prompt or
the messages contains ``compaction_marker``), ``contains`` (substring) and ``matches`` (regular
expression, ``re.search``) over all conversation text (system, text blocks, tool_result texts).

**Echo placeholders** in ``text``: ``{tool_results}`` (every result of the round, one per line,
in request order), ``{tool_results.TOOL}`` (the results of one tool, one per line),
``{tool_result[N]}`` (the result of the N-th call, from 0, of the turn that made them) or
``{tool_result[ID]}`` (by ``tool_use`` id, e.g. a ``ToolCall.id`` fixed in the script),
``{tool_errors}`` (the texts of the round's error results), ``{tool_names}`` (the tools the
round's results answer, comma-separated, in request order), ``{tool_result_count}``,
``{last_user_text}`` (the text blocks of the last user message), ``{message_count}`` (messages
in the request, before merging), ``{agent}``, ``{turn}``. A named result that the round lacks
renders ``(no result)``. Other braces are left as they are.

**Thinking.** ``thinking`` (text, signed by the fake unless ``thinking_signature`` is given)
and ``redacted_thinking`` (opaque data) put thinking blocks before the answer when the request
enables thinking (``thinking: {type: enabled|adaptive}``); with ``display: omitted`` the
thinking text is empty and the signature stays.

**Failures.** ``fail`` is a list of faults (see ``harness.faults.api_faults``); the first
requests that select the turn each draw one failure instead of the answer, and the cursor does
not move, so the retry after the last failure gets the turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fake_servers.anthropic._limits import ModelLimits
from harness._files import read_text
from harness._yaml import RegexText, compose, parse_yaml, validation_error
from harness.errors import ScriptError
from harness.faults.api_faults import Fault

__all__ = ["Agent", "Condition", "ModelScript", "StopReason", "ToolCall", "Turn"]

StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Described(_Strict):
    # The attribute docstrings below are the fields' descriptions in the JSON Schema.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ToolCall(_Described):
    """One tool_use block; several in a turn are parallel tool calls."""

    name: str = Field(min_length=1)
    """The tool's name."""
    input: dict[str, Any] = Field(default_factory=dict)
    """The tool's arguments (data: never read as distributions)."""
    id: str | None = None
    """Fixed ``toolu_…`` id; by default one is drawn from the seeded generator."""


class Condition(_Strict):
    """A condition on the conversation; every field that is set must hold. The ``tool_*``
    fields read the round: every tool_result since the last assistant turn."""

    tool_result_for: str | None = Field(
        default=None, description="Some result of the round answers a call of this tool."
    )
    tool_result_error: bool | None = Field(
        default=None,
        description="true: some result of the round is an error; false: the round has "
        "results and none is an error.",
    )
    tool_error_for: str | None = Field(
        default=None, description="Some result of the round answers this tool with an error."
    )
    tool_result_count: int | None = Field(
        default=None, ge=0, description="The round holds exactly this many tool results."
    )
    tool_result_contains: str | None = Field(
        default=None, min_length=1, description="Some result of the round contains this text."
    )
    has_compaction_summary: bool | None = Field(
        default=None,
        description="Whether the compaction marker appears in the system prompt or any text.",
    )
    contains: str | None = Field(
        default=None,
        description="A substring of all conversation text (system, text blocks, tool results).",
    )
    matches: RegexText | None = Field(
        default=None,
        description="A regular expression (re.search) over all conversation text.",
    )


class Turn(_Described):
    """One scripted answer of an agent."""

    when: Condition | None = None
    """The turn is taken only when this condition holds (default: always)."""
    text: str | None = None
    """The answer's text, with echo placeholders ({tool_results}, {tool_result[N]}, ...)."""
    tool_use: list[ToolCall] = Field(default_factory=list)
    """Tool calls the answer makes; several are parallel calls."""
    stop_reason: StopReason | None = None
    """Default: ``tool_use`` when the turn calls tools, else ``end_turn``."""
    latency: float = Field(default=0.0, ge=0)
    """Seconds on the injected clock before the answer."""
    fail: list[Fault] = Field(default_factory=list)
    """Failures the first requests that select the turn draw instead of the answer."""
    output_tokens: int | None = Field(default=None, ge=0)
    """The usage's output_tokens (default: counted from the answer)."""
    thinking: str | None = None
    """A thinking block before the answer (sent only when the request enables thinking)."""
    thinking_signature: str | None = None
    """The thinking block's signature; by default the fake signs its text."""
    redacted_thinking: str | None = None
    """A ``redacted_thinking`` block's opaque ``data`` (sent only with thinking enabled)."""
    verbatim: bool = False
    """Send ``text`` as it is, without echo placeholders (recorded sessions use this)."""

    @field_validator("fail", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value

    @field_validator("fail")
    @classmethod
    def _no_context_edit(cls, value: list[Fault]) -> list[Fault]:
        # Edits run before a turn is chosen (the turn's conditions see the edited prompt).
        if any(fault.kind == "context_edit" for fault in value):
            raise ValueError(
                "a context_edit fault is injected at run time (FakeAnthropic.inject or a "
                "scenario's llm fault), not in a turn's 'fail'"
            )
        return value

    @model_validator(mode="after")
    def _has_content(self) -> Turn:
        if not self.text and not self.tool_use:
            raise ValueError("a turn needs 'text' or 'tool_use'")
        return self


class Agent(_Described):
    """An agent's ordered turns."""

    turns: list[Turn] = Field(min_length=1)
    """The answers, in order: a request takes the first at or after the cursor that holds."""
    repeat: bool = False
    """When true the cursor wraps to the first turn instead of running out."""


class ModelScript(_Described):
    """A whole script: agents, routing default, model names, compaction marker."""

    agents: dict[str, Agent] = Field(min_length=1)
    """The scripted agents by name (a subagent's name, the compaction agent, ...)."""
    default_agent: str | None = None
    """Where a request that names no agent goes (default: the only agent)."""
    models: list[str] = Field(default_factory=list)
    """Model names /v1/models lists; other models get 404 (default: any)."""
    compaction_marker: str = Field(default="<compaction-summary>", min_length=1)
    """The text that marks a compaction summary (has_compaction_summary looks for it)."""
    limits: dict[str, ModelLimits] = Field(default_factory=dict)
    """Per-model ``context_window`` / ``max_output_tokens`` / ``cache_min_tokens`` overrides."""

    @model_validator(mode="after")
    def _default_agent_exists(self) -> ModelScript:
        if self.default_agent is not None and self.default_agent not in self.agents:
            raise ValueError(
                f"default_agent {self.default_agent!r} is not one of the agents "
                f"({', '.join(sorted(self.agents))})"
            )
        return self

    @property
    def fallback_agent(self) -> str | None:
        """``default_agent``, or the only agent of a one-agent script."""
        if self.default_agent is not None:
            return self.default_agent
        if len(self.agents) == 1:
            return next(iter(self.agents))
        return None

    @classmethod
    def load(cls, path: str | Path) -> ModelScript:
        """Read a YAML or JSON script; raise ``ScriptError`` naming file, field and value."""
        path = Path(path)
        # Within the bounds of every input file: regular, at most 4 MiB, aliases counted.
        text = read_text(path, what="script", error=ScriptError)
        data = parse_yaml(text, path=path, error=ScriptError)
        # The node tree keeps line numbers, so a bad field can be pointed at.
        root = compose(text)
        return cls.from_data(data, path=path, _root=root)

    @classmethod
    def from_data(
        cls, data: object, *, path: str | Path | None = None, _root: yaml.Node | None = None
    ) -> ModelScript:
        """Validate already-parsed data; raise ``ScriptError`` naming field and value."""
        if not isinstance(data, dict):
            # Not quoted: a path may name any file.
            raise ScriptError("a script must be a mapping with 'agents'", path=path)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise validation_error(
                exc, text=_root, path=path, error=ScriptError, data=data
            ) from exc

    @classmethod
    def default(cls) -> ModelScript:
        """The built-in script: one agent that always answers a short text."""
        turn = Turn(text="Hello from the fake Anthropic API.")
        return cls(agents={"default": Agent(turns=[turn], repeat=True)}, default_agent="default")
