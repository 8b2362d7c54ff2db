"""LLM-API faults of a plan, applied to the fake Anthropic API.

Each ``type: llm`` entry becomes ``FakeAnthropic.inject(fault, agent=..., count=...)`` at its
scenario time ``at`` (0 = before the first request), so the next ``count`` requests (of
``agent``, or of any agent) draw it: 429 with ``retry-after``, 500, 529, connection drop, SSE
stream cut or error after N events, added latency. ``probability`` < 1 draws from the seeded
source; every injection is recorded (type ``llm``, ``kind`` the fake's fault kind).

The same failures can come from the fake's script (a turn's ``fail:``); ``toxic`` entries with
``target: anthropic`` belong on a TCP proxy in front of a served fake
(``plan.toxics("anthropic")``).
"""

from __future__ import annotations

from typing import Any, Protocol

from anyio.abc import TaskGroup

from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.faults.plan import FaultPlan, LlmFault
from harness.faults.records import FaultRecorder

__all__ = ["FaultInjectable", "inject_llm_faults"]


class FaultInjectable(Protocol):
    """What the plan needs of the fake API (``fake_servers.anthropic.FakeAnthropic``)."""

    def inject(self, fault: Any, *, agent: str | None = None, count: int = 1) -> None: ...


async def inject_llm_faults(
    plan: FaultPlan,
    fake: FaultInjectable,
    *,
    clock: Clock,
    rng: ChaosRandom,
    recorder: FaultRecorder,
    task_group: TaskGroup,
) -> None:
    """Inject the plan's LLM faults into ``fake``: those at time 0 (or already past) at once,
    before this returns; later ones from a task in ``task_group`` at their time. Raises
    ``FaultError`` (from the fake) for an unknown agent."""
    faults = sorted(plan.llm_faults(), key=lambda f: f.at)
    now = clock.now()
    due = [f for f in faults if f.at <= now]
    later = [f for f in faults if f.at > now]
    for fault in due:
        _inject(fault, fake, rng, recorder)
    if later:

        async def run_later() -> None:
            for fault in later:
                await clock.sleep(fault.at - clock.now())
                _inject(fault, fake, rng, recorder)

        task_group.start_soon(run_later)


def _inject(
    fault: LlmFault, fake: FaultInjectable, rng: ChaosRandom, recorder: FaultRecorder
) -> None:
    draw = round(rng.fork(f"llm-{fault.name}").random(), 6)
    if draw >= fault.probability:
        return
    built = fault.fault
    fake.inject(built, agent=fault.agent, count=fault.count)
    details = {k: v for k, v in built.model_dump().items() if v is not None}
    if fault.agent is not None:
        details["agent"] = fault.agent
    # A record's ``kind`` is what happened (injected): the API error's own kind is its ``fault``.
    if "kind" in details:
        details["fault"] = details.pop("kind")
    recorder.record(
        "injected",
        type="llm",
        target=fault.target or "anthropic",
        name=fault.name,
        trigger=f"at={fault.at:g}",
        draw=draw,
        count=fault.count,
        **details,
    )
