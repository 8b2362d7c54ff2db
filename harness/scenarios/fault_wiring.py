"""The rig's fault wiring: a run's fault plan, applied where each fault can act.

``RuntimeFaults`` takes the ``faults:`` plan of a runtime config and puts every entry on the
path to its target (``harness.scenarios.rig`` asks it, server by server):

- an in-memory server (sim mode) or a streamable HTTP server: the in-process transport wrapper
  (``harness.faults.inprocess``) wraps the client transport, so frame faults, kills (closing the
  connection), freezes and toxics act on real JSON-RPC framing;
- a stdio server (live mode): the stdio interposer (``harness interpose``) runs in front of the
  command, so kills and freezes are real signals to the real process;
- an HTTP server marked ``proxy: true``: a TCP proxy on 127.0.0.1 carries the connection and
  the plan's toxics for that server act on the real socket (frame faults stay in process);
- ``llm`` entries: injected into the fake Anthropic API at their scenario times;
- ``cancel`` entries: acted on by the runtime itself, which cancels the calls in flight (the
  SDK then sends ``notifications/cancelled``), as a user's interrupt would.

Every fault decision is a ``harness.fault`` span and a fault event (``events()``), in process
or read back from the interposer's files.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
from anyio.abc import TaskGroup
from opentelemetry import trace

from harness._run_clock import on_run_clock
from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.faults.inprocess import transport_wrapper
from harness.faults.plan import CancelFault, FaultPlan, ToxicFault
from harness.faults.records import FaultRecorder

__all__ = ["RuntimeFaults"]

_STOP_GRACE = 5.0
"""Real seconds a proxy may take to close its connections on the way out."""


class RuntimeFaults:
    """One run's fault plan, its seeded source and its recorder."""

    def __init__(
        self,
        plan: FaultPlan,
        *,
        clock: Clock,
        rng: ChaosRandom,
        time_scale: float = 1.0,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.plan = plan
        self._clock = clock
        self._rng = rng
        self._time_scale = time_scale
        self.recorder = FaultRecorder(clock=clock, tracer_provider=tracer_provider)
        self._files: dict[str, Path] = {}
        self.spans_files: dict[str, Path] = {}

    def __bool__(self) -> bool:
        return len(self.plan) > 0

    # -- per server --------------------------------------------------------------------------
    def wrap(self, server: str, *, skip_toxics: bool = False) -> Any:
        """A ``ServerSpec.wrap`` applying the plan's faults for ``server`` in process, or
        ``None`` when there are none (``skip_toxics``: the toxics act on a proxy instead)."""
        selected = self.plan.for_target(server)
        if skip_toxics:
            selected = FaultPlan.model_construct(
                [f for f in selected.faults if not isinstance(f, ToxicFault)]
            )
        if not selected.frame_faults() and not selected.toxics(server):
            return None
        return transport_wrapper(
            selected,
            server,
            clock=self._clock,
            rng=self._rng.fork(f"mcp-{server}"),
            recorder=self.recorder,
        )

    def interposed(self, params: Any, server: str, *, workdir: Path) -> Any:
        """Stdio server ``params`` behind the interposer when the plan has faults for it."""
        from harness.faults.live import interposed

        events = workdir / f"{server}.faults.jsonl"
        # One file of fault counts per server: a respawned interposer goes on counting.
        counts = workdir / f"{server}.fault-counts.json"
        spans = workdir / f"{server}.fault-spans.jsonl"
        wrapped = interposed(
            params,
            self.plan,
            name=server,
            workdir=workdir,
            seed=self._rng.fork(f"mcp-{server}").getrandbits(31),
            time_scale=self._time_scale,
            events=events,
            spans=spans,
            counts=counts,
        )
        if wrapped is not params:
            self._files[server] = events
            self.spans_files[f"{server}-faults"] = spans
        return wrapped

    async def proxied(self, url: str, server: str, *, stack: AsyncExitStack) -> str:
        """``url`` through a TCP proxy on 127.0.0.1 carrying the plan's toxics for ``server``;
        the proxy runs until ``stack`` closes. Returns the URL to connect to."""
        from harness.faults.proxy.proxy import Proxy

        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            from harness.errors import ConfigError

            raise ConfigError(
                "a proxied server needs a URL with host and port", field=server, value=url
            )
        proxy = Proxy(
            name=server,
            listen=("127.0.0.1", 0),
            upstream=(parts.hostname, parts.port),
            clock=self._clock,
            rng=self._rng.fork(f"proxy-{server}"),
            recorder=self.recorder,
        )
        task_group: TaskGroup = await stack.enter_async_context(anyio.create_task_group())

        async def stop() -> None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_STOP_GRACE):
                await proxy.stop()
            task_group.cancel_scope.cancel()

        stack.push_async_callback(stop)
        await proxy.start(task_group)
        for spec in self.plan.toxics(server):
            proxy.add_toxic(spec)
        host, port = proxy.listen
        return urlunsplit(parts._replace(netloc=f"{host}:{port}"))

    # -- the model API -------------------------------------------------------------------------
    async def inject_llm(self, fake: Any, task_group: TaskGroup) -> None:
        """Inject the plan's ``llm`` entries into the fake API (later ones from ``task_group``)."""
        if not self.plan.llm_faults():
            return
        from harness.faults.llm import inject_llm_faults

        await inject_llm_faults(
            FaultPlan.model_construct(list[Any](self.plan.llm_faults())),
            fake,
            clock=self._clock,
            rng=self._rng.fork("llm"),
            recorder=self.recorder,
            task_group=task_group,
        )

    # -- client-side cancels ------------------------------------------------------------------
    async def inject_cancels(self, calls: Any, task_group: TaskGroup) -> None:
        """Act on the plan's ``cancel`` entries against ``calls`` (the host's ``CallRegistry``):
        timed ones from ``task_group``, matched ones as each matching call starts."""
        cancels = self.plan.cancels()
        if not cancels:
            return
        rng = self._rng.fork("cancel")
        seen: dict[str, int] = {}

        def hit(fault: CancelFault, call: Any, trigger: str) -> None:
            draw = None
            if fault.probability < 1:
                draw = rng.random()
                if draw >= fault.probability:
                    return
            call.scope.cancel()
            self.recorder.record(
                "cancel",
                type=fault.type,
                target=call.server,
                name=fault.name,
                trigger=trigger,
                draw=draw,
                tool=call.tool,
                call=call.nth,
            )

        async def later(fault: CancelFault, call: Any) -> None:
            await self._clock.sleep(fault.after)
            if call in calls.in_flight(call.server):
                hit(fault, call, fault.trigger())

        def started(call: Any) -> None:
            for fault in cancels:
                match = fault.match
                if match is None or not fault.applies_to(call.server):
                    continue
                if match.tool is not None and match.tool != call.tool:
                    continue
                key = f"{fault.name}/{call.server}"
                seen[key] = count = seen.get(key, 0) + 1
                if match.nth is None or match.nth == count:
                    task_group.start_soon(later, fault, call)

        async def at(fault: CancelFault) -> None:
            assert fault.at is not None
            await self._clock.sleep(fault.at - self._clock.now())
            for call in list(calls.in_flight()):
                if fault.applies_to(call.server):
                    hit(fault, call, fault.trigger())

        calls.on_start(started)
        for fault in cancels:
            if fault.at is not None:
                task_group.start_soon(at, fault)

    # -- records ---------------------------------------------------------------------------------
    def events(self, *, origin: float | None = None) -> list[dict[str, Any]]:
        """Every fault record of the run: in process, then each interposer's (by server).
        With ``origin`` (live: the Unix time of the run clock's zero) every record is on the
        run's clock: the in-process ones are already, the interposers' are moved there from
        their own (``process_time`` keeps it)."""
        run = {"clock": "run"} if origin is not None else {}
        rows = [r.to_json() | run for r in self.recorder.records]
        for path in self._files.values():
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed interposer
                rows.append(on_run_clock(row, origin=origin, scale=self._time_scale))
        return rows
