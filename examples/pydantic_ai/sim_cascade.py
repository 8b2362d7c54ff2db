"""The pydantic-ai adapter in process, on the harness's virtual-time sim loop: the cascade setup.

One agent turn makes two parallel ``mem_ssh`` calls on one in-memory fake ssh server through the
harness's fault layer: host ``a`` takes longer than the MCP client's timeout, host ``b`` answers
well before it (``--variant timeout``), or the server is killed while both calls are in flight
(``--variant kill``). The context handed to the adapter is the one the harness will hand it:
``client`` = ``FakeAnthropic(...).async_client()`` (ASGI transport, no socket), ``servers`` =
``{"ssh": ServerParams(transport="memory", connect=...)}`` where ``connect()`` yields the
fault-wrapped in-memory streams. Prints the answer, virtual vs wall time, the API journal, the
server's events, the fault records, and every thread, executor job or socket the run started
(which would make the run depend on real time)::

    python -m examples.pydantic_ai.sim_cascade --seed 7
    python -m examples.pydantic_ai.sim_cascade --variant kill
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
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mcp.client._memory import InMemoryTransport

from examples.pydantic_ai.adapter import make_factory
from examples.run_external import event_line, journal_line
from fake_servers.anthropic import FakeAnthropic, ModelScript
from fake_servers.mcp import ServerScript, build_server
from harness.chaos_random import ChaosRandom
from harness.clock import LoopClock
from harness.faults.inprocess import transport_wrapper
from harness.faults.plan import FaultPlan
from harness.faults.records import FaultRecorder
from harness.sim import run_sim

PROBES = Path(__file__).parent / "probes"

VARIANTS = {
    # a: 200 s against a 150 s client timeout; b: 20 s.
    "timeout": ("cascade.model.yaml", "sim_cascade.ssh.yaml", None),
    # both calls in flight (b has 20 s, a hangs), then the server dies; the model then calls b
    # again, which shows whether the runtime reaches the server after it died.
    "kill": ("kill.model.yaml", "sim_kill.ssh.yaml", "sim_kill.plan.yaml"),
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

        threading.Thread.start = start  # type: ignore[method-assign]
        socket.socket.connect = sock_connect  # type: ignore[method-assign]
        loop.run_in_executor = executor  # type: ignore[method-assign]
        try:
            yield
        finally:
            threading.Thread.start = thread_start  # type: ignore[method-assign]
            socket.socket.connect = connect  # type: ignore[method-assign]
            loop.run_in_executor = run_in_executor  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="timeout")
    parser.add_argument("--mcp-timeout", type=float, default=150.0)
    parser.add_argument("--strategy", default="fifo", choices=["fifo", "random", "pct"])
    args = parser.parse_args()
    model_script, ssh_script, plan_file = VARIANTS[args.variant]
    rng = ChaosRandom(args.seed)
    clock = LoopClock()
    fake_api = FakeAnthropic(ModelScript.load(PROBES / model_script), rng=rng, clock=clock)
    ssh = build_server("ssh", script=ServerScript.load(PROBES / ssh_script), clock=clock, rng=rng)
    plan = FaultPlan.load(PROBES / plan_file) if plan_file else FaultPlan([])
    recorder = FaultRecorder(clock=clock)
    wrap = transport_wrapper(plan, "ssh", clock=clock, rng=rng, recorder=recorder)

    def connect() -> Any:
        # One fresh in-memory connection per call, through the fault layer: what the harness's
        # ServerParams.connect() will be for a memory server.
        return wrap(InMemoryTransport(ssh.server))

    audit = Audit()

    async def run() -> str:
        ctx = SimpleNamespace(
            client=fake_api.async_client(max_retries=0),
            servers={"ssh": SimpleNamespace(name="ssh", transport="memory", connect=connect)},
            model="claude-sonnet-4-6",
            seed=args.seed,
            clock=clock,
        )
        task = SimpleNamespace(
            agent="main",
            prompt="check hosts a and b",
            context_id=None,
            scope=None,
            scheduled=False,
            at=0.0,
        )
        with audit.watching(asyncio.get_running_loop()):
            runtime = await make_factory(mcp_timeout=args.mcp_timeout)(ctx)
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
        print(f"answer: {result.value}")
        print(
            f"virtual time {stats.virtual_elapsed:.3f} s, wall {stats.wall_elapsed:.3f} s, "
            f"{stats.steps} steps, step hash {stats.step_hash}"
        )
    print("API journal:")
    for record in fake_api.journal.records:
        print("  ", journal_line(record.to_dict()))
    print("ssh server events:")
    for event in ssh.events.events:
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
