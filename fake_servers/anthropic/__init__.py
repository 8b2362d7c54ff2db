"""A fake Anthropic Messages API that rejects what the real one rejects and answers from a script.

Serve it in-process or on loopback::

    fake = FakeAnthropic(ModelScript.load("script.yaml"), rng=ChaosRandom(7))
    client = fake.async_client(max_retries=0)          # real SDK, httpx2.ASGITransport
    async with fake.serve(host="127.0.0.1", port=0) as base_url:
        ...                                             # any client, ANTHROPIC_BASE_URL=base_url

Endpoints: ``POST /v1/messages`` (JSON or SSE with ``"stream": true``), ``POST
/v1/messages/count_tokens``, ``GET /v1/models``. Errors use the real envelope with a
``request-id`` header and ``request_id`` field; validation reproduces the real API's texts.

**Routing a request to an agent** (first rule that applies):

1. a tag ``[agent:NAME]`` anywhere in the ``system`` prompt (a string or text blocks); an unknown
   NAME is a 400 naming the available agents;
2. ``metadata.user_id`` equal to ``NAME`` or ``agent:NAME`` for a scripted agent;
3. the script's ``default_agent`` (a one-agent script defaults to its agent);
4. otherwise a 400 ``invalid_request_error`` naming the available agents.

Each agent has its own cursor over its turns, advanced once per request routed to it that gets
the turn's answer (it moves before any scripted latency, so a concurrent request of the same
agent gets the next turn). A request that draws an injected failure (429, 500, 529, connection
drop, stream cut, stream error) does not advance the cursor: the SDK's retry gets the turn.
Several agents (a parent and concurrent subagents) therefore follow their own scripts without
interfering.

**Tokens.** ``usage.input_tokens`` and ``count_tokens`` both use ``ceil(chars / 4)`` where
``chars`` counts the system text, 8 per message, the text / tool input JSON / tool_result text of
every block and the JSON of ``tools`` (see ``_tokens``).

**Journal.** ``fake.journal.records`` lists every request in arrival order (see ``journal``).
"""

from fake_servers.anthropic.app import MAX_BODY_BYTES, FakeAnthropic
from fake_servers.anthropic.journal import Journal, JournalRecord
from fake_servers.anthropic.script import Agent, Condition, ModelScript, ToolCall, Turn
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

__all__ = [
    "MAX_BODY_BYTES",
    "Agent",
    "ApiFailure",
    "Condition",
    "ConnectionDrop",
    "ContextEditFault",
    "FakeAnthropic",
    "Fault",
    "Journal",
    "JournalRecord",
    "Latency",
    "ModelScript",
    "Overloaded",
    "RateLimit",
    "StreamCut",
    "StreamError",
    "ToolCall",
    "Turn",
]
