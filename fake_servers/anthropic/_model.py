"""The scripted model: routes a request to an agent, picks its turn, builds the answer.

Everything here is synchronous: selecting a turn and moving an agent's cursor happen without an
``await`` in between, so concurrent requests of several agents never interleave inside it.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from fake_servers.anthropic._conversation import ConversationView
from fake_servers.anthropic._errors import ApiError
from fake_servers.anthropic._thinking import SignatureBook, sign
from fake_servers.anthropic._tokens import count_output_tokens
from fake_servers.anthropic._validation import ParsedRequest
from fake_servers.anthropic.script import ModelScript, Turn
from harness.chaos_random import ChaosRandom
from harness.faults.api_faults import Fault

__all__ = ["ScriptedModel", "Selection", "new_id"]

_AGENT_TAG = re.compile(r"\[agent:([^\]\s]+)\]")
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ID_BITS = 143  # 62**24 > 2**143: 24 base62 characters, like the real ids' tails


# Two base62 digits per division (least significant first), the same ids as one at a time.
_PAIRS = [_BASE62[p % 62] + _BASE62[p // 62] for p in range(62 * 62)]


def new_id(rng: ChaosRandom) -> str:
    """24 base62 characters from one draw of ``rng`` (cheaper than a draw per character)."""
    value = rng.getrandbits(_ID_BITS)
    chars = []
    for _ in range(12):
        value, pair = divmod(value, 3844)
        chars.append(_PAIRS[pair])
    return "".join(chars)


@dataclass(slots=True)
class Selection:
    """The turn chosen for a request (not yet consumed)."""

    agent: str
    index: int
    turn: Turn
    view: ConversationView


class ScriptedModel:
    """Per-agent cursors and failure counters over a ``ModelScript``."""

    def __init__(self, script: ModelScript, rng: ChaosRandom) -> None:
        self.script = script
        self._cursor = dict.fromkeys(script.agents, 0)
        self._failures_drawn: dict[tuple[str, int], int] = {}
        # One id stream per agent: concurrent agents get the same ids whatever their order.
        self._ids = {name: rng.fork(f"agent/{name}") for name in script.agents}
        turns = [turn for agent in script.agents.values() for turn in agent.turns]
        self.signatures = SignatureBook(
            signed=[
                (t.thinking_signature, t.thinking)
                for t in turns
                if t.thinking is not None and t.thinking_signature is not None
            ],
            redacted=[t.redacted_thinking for t in turns if t.redacted_thinking is not None],
        )

    def _available(self) -> str:
        return ", ".join(sorted(self.script.agents))

    def claimed_agent(self, body: dict[str, Any]) -> str | None:
        """The script agent a request that failed validation names, if it names one plainly
        (the journal's attribution; nothing is routed or consumed)."""
        system = body.get("system")
        match = _AGENT_TAG.search(system) if isinstance(system, str) else None
        metadata = body.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        for name in (
            match.group(1) if match else None,
            user_id.removeprefix("agent:") if isinstance(user_id, str) else None,
        ):
            if name is not None and name in self.script.agents:
                return name
        return None

    def route(self, request: ParsedRequest) -> str:
        """The agent a request belongs to (see the package docstring for the convention)."""
        match = _AGENT_TAG.search(request.system_text)
        if match is not None:
            name = match.group(1)
            if name not in self.script.agents:
                raise ApiError(
                    400,
                    f"fake-anthropic: the system prompt names agent '{name}', which the script "
                    f"does not define; available agents: {self._available()}",
                )
            return name
        metadata = request.body.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        if isinstance(user_id, str):
            name = user_id.removeprefix("agent:")
            if name in self.script.agents:
                return name
        fallback = self.script.fallback_agent
        if fallback is not None:
            return fallback
        raise ApiError(
            400,
            "fake-anthropic: no agent matches this request (put [agent:NAME] in the system "
            f"prompt or set metadata.user_id to NAME); available agents: {self._available()}",
        )

    def select(self, agent: str, request: ParsedRequest) -> Selection:
        """The first turn at or after the agent's cursor whose condition holds."""
        spec = self.script.agents[agent]
        view = ConversationView(request, compaction_marker=self.script.compaction_marker)
        cursor = self._cursor[agent]
        starts = [cursor]
        if spec.repeat and cursor > 0:
            starts.append(0)
        for start in starts:
            for index in range(start, len(spec.turns)):
                turn = spec.turns[index]
                if turn.when is None or view.holds(turn.when):
                    return Selection(agent, index, turn, view)
        raise ApiError(
            400,
            f"fake-anthropic: agent '{agent}' has no scripted turn left at turn {cursor} "
            f"({len(spec.turns)} turns scripted, none at or after {cursor} matches)",
        )

    def draw_failure(self, selection: Selection) -> Fault | None:
        """The turn's next unconsumed scripted failure, consuming it."""
        faults = selection.turn.fail
        if not faults:
            return None
        key = (selection.agent, selection.index)
        drawn = self._failures_drawn.get(key, 0)
        if drawn >= len(faults):
            return None
        self._failures_drawn[key] = drawn + 1
        return faults[drawn]

    def consume(self, selection: Selection) -> None:
        """Move the agent's cursor past the selected turn."""
        spec = self.script.agents[selection.agent]
        following = selection.index + 1
        self._cursor[selection.agent] = following % len(spec.turns) if spec.repeat else following
        self._failures_drawn.pop((selection.agent, selection.index), None)

    def message(
        self,
        selection: Selection,
        *,
        request: ParsedRequest,
        usage: dict[str, int],
    ) -> dict[str, Any]:
        """The Messages API response body of the selected turn; ``usage`` holds the input
        side (input, cache creation and cache read tokens)."""
        ids = self._ids[selection.agent]
        turn = selection.turn
        content: list[dict[str, Any]] = []
        if request.thinking is not None:
            content.extend(_thinking_blocks(turn, omitted=request.thinking_display == "omitted"))
        if turn.text:
            text = turn.text
            if not turn.verbatim:
                text = selection.view.render(text, agent=selection.agent, turn=selection.index)
            content.append({"type": "text", "text": text})
        for call in turn.tool_use:
            content.append(
                {
                    "type": "tool_use",
                    "id": call.id or f"toolu_{new_id(ids)}",
                    "name": call.name,
                    "input": call.input,
                }
            )
        stop_reason = turn.stop_reason or ("tool_use" if turn.tool_use else "end_turn")
        output_tokens = (
            turn.output_tokens if turn.output_tokens is not None else count_output_tokens(content)
        )
        return {
            "id": f"msg_{new_id(ids)}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage["input_tokens"],
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                "cache_read_input_tokens": usage["cache_read_input_tokens"],
            },
        }


def _thinking_blocks(turn: Turn, *, omitted: bool) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if turn.thinking is not None:
        signature = turn.thinking_signature or sign(turn.thinking)
        # ``display: omitted`` keeps the signature (multi-turn continuity) and drops the text;
        # such a block is sent back with empty text, so its signature covers the empty text.
        if omitted and turn.thinking_signature is None:
            signature = sign("")
        text = "" if omitted else turn.thinking
        blocks.append({"type": "thinking", "thinking": text, "signature": signature})
    if turn.redacted_thinking is not None:
        blocks.append({"type": "redacted_thinking", "data": turn.redacted_thinking})
    return blocks
