"""The pydantic-ai adapter in process, on the harness's virtual-time sim loop.

The context handed to the adapter is the one the harness will hand it: ``client`` =
``FakeAnthropic(...).async_client()`` (ASGI transport, no socket), ``servers`` = ``{name:
ServerParams(transport="memory", connect=...)}`` where ``connect()`` yields the fault-wrapped
in-memory streams of a ``fake_servers.mcp`` server. Variants (the founding bug classes):

- ``timeout``: one turn, two parallel ``mem_ssh`` calls on one server; host ``a`` takes 200 s
  against the client's 150 s timeout, host ``b`` answers at 20 s (cascade);
- ``kill``: both calls in flight when the server dies, then the model calls ``b`` again;
- ``history``: a six-call tool loop with thinking on, through a keep-the-last-3-messages
  history processor (orphaned tool block);
- ``scope`` / ``scope-fixed``: a scheduled task in the Blog tab (declared scope ``all``)
  delegates to a subagent that lists chat messages without a context (scope leak), without and
  with the declared scope applied at the call site.

Prints the answer, virtual vs wall time, the API journal, the servers' events, the fault records,
and every thread, executor job or socket the run started (which would tie it to real time)::

    python -m examples.pydantic_ai.sim_probe timeout --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mcp.client._memory import InMemoryTransport

from examples.pydantic_ai.adapter import make_factory
from examples.run_external import event_line, journal_line
from fake_servers.anthropic import FakeAnthropic, ModelScript
from fake_servers.mcp import FakeServer, ServerScript, build_server
from harness.chaos_random import ChaosRandom
from harness.clock import LoopClock
from harness.faults.inprocess import transport_wrapper
from harness.faults.plan import FaultPlan
from harness.faults.records import FaultRecorder
from harness.sim import run_sim

EXAMPLES = Path(__file__).parent.parent


@dataclass(frozen=True)
class Variant:
    model: str  # the fake API's script, relative to examples/
    servers: dict[str, str]  # name -> "kind" or "kind:script" (script relative to examples/)
    task: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    plan: str | None = None


_CASCADE_TASK = {"agent": "main", "prompt": "check hosts a and b"}
_SCOPE_TASK = {
    "agent": "review",
    "prompt": "Review today's chats for blog topics.",
    "context_id": "Blog",
    "scope": "all",
    "scheduled": True,
}
_SCOPE = {"delegate_to": "sub", "forward_context": True}
VARIANTS = {
    "timeout": Variant(
        "probes/cascade.model.yaml",
        {"ssh": "ssh:pydantic_ai/probes/sim_cascade.ssh.yaml"},
        _CASCADE_TASK,
        {"mcp_timeout": 150.0},
    ),
    "kill": Variant(
        "probes/kill.model.yaml",
        {"ssh": "ssh:pydantic_ai/probes/sim_kill.ssh.yaml"},
        _CASCADE_TASK,
        {"mcp_timeout": 150.0},
        plan="pydantic_ai/probes/sim_kill.plan.yaml",
    ),
    "history": Variant(
        "probes/history.model.yaml",
        {"ssh": "ssh"},
        {"agent": "main", "prompt": "check hosts h1 to h6"},
        {"keep_last_messages": 3, "thinking_budget": 2048},
    ),
    "scope": Variant("pydantic_ai/probes/scope.model.yaml", {"chat": "chat"}, _SCOPE_TASK, _SCOPE),
    "scope-fixed": Variant(
        "pydantic_ai/probes/scope.model.yaml",
        {"chat": "chat"},
        _SCOPE_TASK,
        {**_SCOPE, "declared_scope": True},
    ),
}


class Audit:
    """Threads, executor jobs and sockets started while the run is on the sim loop."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def note(self, what: str) -> None:
        frames = [
            f"{frame.filename.rsplit('site-packages/', 1)[-1]}:{frame.lineno} {frame.name}"
            for frame in traceback.extract_stack()[:-2]
            if "/threading.py" not in frame.filename and "examples/" not in frame.filename
        ]
        self.found.append(f"{what} <- {' <- '.join(reversed(frames[-4:]))}")

    @contextmanager
    def watching(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        thread_start = threading.Thread.start
        connect = socket.socket.connect
        run_in_executor = loop.run_in_executor

        def start(thread: threading.Thread) -> None:
            self.note(f"thread {thread.name}")
            thread_start(thread)

        def sock_connect(sock: socket.socket, address: Any) -> None:
            self.note(f"socket connect {address}")
            connect(sock, address)

        def executor(executor: Any, func: Callable[..., Any], *args: Any) -> Any:
            self.note(f"run_in_executor {getattr(func, '__qualname__', func)}")
            return run_in_executor(executor, func, *args)

        threading.Thread.start = start  # type: ignore[method-assign,assignment]
        socket.socket.connect = sock_connect  # type: ignore[method-assign,assignment]
        loop.run_in_executor = executor  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            threading.Thread.start = thread_start  # type: ignore[method-assign]
            socket.socket.connect = connect  # type: ignore[method-assign]
            loop.run_in_executor = run_in_executor  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strategy", default="fifo", choices=["fifo", "random", "pct"])
    args = parser.parse_args()
    variant = VARIANTS[args.variant]
    rng = ChaosRandom(args.seed)
    clock = LoopClock()
    fake_api = FakeAnthropic(ModelScript.load(EXAMPLES / variant.model), rng=rng, clock=clock)
    plan = FaultPlan.load(EXAMPLES / variant.plan) if variant.plan else FaultPlan([])
    recorder = FaultRecorder(clock=clock)
    fakes: dict[str, FakeServer] = {}
    servers: dict[str, Any] = {}
    for name, spec in variant.servers.items():
        kind, _, script = spec.partition(":")
        loaded = ServerScript.load(EXAMPLES / script) if script else None
        fake = fakes[name] = build_server(kind, script=loaded, clock=clock, rng=rng)
        wrap = transport_wrapper(plan, name, clock=clock, rng=rng, recorder=recorder)
        # A fresh in-memory connection per connect(), through the fault layer: what the
        # harness's ServerParams.connect() is for a memory server.
        servers[name] = SimpleNamespace(
            name=name,
            transport="memory",
            connect=lambda wrap=wrap, fake=fake: wrap(InMemoryTransport(fake.server)),
        )

    audit = Audit()

    async def run() -> str:
        ctx = SimpleNamespace(
            client=fake_api.async_client(max_retries=0),
            servers=servers,
            model="claude-sonnet-4-6",
            seed=args.seed,
            clock=clock,
        )
        task = SimpleNamespace(
            **{"context_id": None, "scope": None, "scheduled": False, "at": 0.0, **variant.task}
        )
        with audit.watching(asyncio.get_running_loop()):
            runtime = await make_factory(**variant.options)(ctx)
            try:
                return await runtime.run(task)
            finally:
                await runtime.aclose()

    try:
        result = run_sim(run, seed=args.seed, strategy=args.strategy, wall_time_limit=120)
    except Exception as error:  # the run's failure is the finding: show it with the evidence
        print(f"run failed: {type(error).__module__}.{type(error).__qualname__}: {error}")
        for note in getattr(error, "__notes__", []):
            print(f"  {note}")
    else:
        stats = result.stats
        print(f"answer: {result.value[:1200]}")
        print(
            f"virtual time {stats.virtual_elapsed:.3f} s, wall {stats.wall_elapsed:.3f} s, "
            f"{stats.steps} steps, step hash {stats.step_hash}"
        )
    print("API journal:")
    for record in fake_api.journal.records:
        print("  ", journal_line(record.to_json()))
    for name, fake in fakes.items():
        print(f"server {name} events:")
        for event in fake.events.events:
            print("  ", event_line(event.to_json()))
    print("fault records:")
    for fault in recorder.records:
        print("  ", json.dumps(fault.to_json(), default=str, sort_keys=True))
    print("threads / executor jobs / sockets started on the sim loop:")
    for line in audit.found or ["none"]:
        print("  ", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
