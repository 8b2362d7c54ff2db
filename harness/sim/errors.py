"""Why a sim run could not go on, with the tasks that were still waiting and on what.

``SimStalled`` is a ``RuntimeFailure``: the system under test can never progress (a deadlock)
or overran the budget it was given; that is its failure, not the harness's. The scenario engine
reports it as a hung run, listing ``pending``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from harness.errors import RuntimeFailure

if TYPE_CHECKING:
    from harness.sim.runner import SimStats

__all__ = ["PendingTask", "SimBudgetExceeded", "SimDeadlock", "SimStalled", "pending_tasks"]

_MAX_LISTED = 20


@dataclass(frozen=True)
class PendingTask:
    """A task that had not finished: its name, its coroutine and the await chain it sits in."""

    name: str
    coroutine: str
    awaiting: tuple[str, ...]

    def describe(self) -> str:
        chain = " -> ".join(self.awaiting) if self.awaiting else "not started"
        return f"{self.name} ({self.coroutine}): {chain}"


class SimStalled(RuntimeFailure):
    """A sim run stopped before its main coroutine finished."""

    def __init__(self, reason: str, *, virtual_time: float, pending: Iterable[PendingTask]) -> None:
        self.reason = reason
        self.virtual_time = virtual_time
        self.pending = tuple(pending)
        # Set by run_sim when the run stops.
        self.stats: SimStats | None = None
        lines = [f"{reason} (at virtual time {virtual_time:.6f} s)"]
        if self.pending:
            lines.append(f"{len(self.pending)} pending task(s):")
            lines.extend(f"  {task.describe()}" for task in self.pending[:_MAX_LISTED])
            if len(self.pending) > _MAX_LISTED:
                lines.append(f"  ... and {len(self.pending) - _MAX_LISTED} more")
        else:
            lines.append("no pending task")
        super().__init__("\n".join(lines))


class SimDeadlock(SimStalled):
    """Nothing is ready, no timer is scheduled and no I/O can arrive: the run can never go on."""


class SimBudgetExceeded(SimStalled):
    """The run overran its virtual-time or wall-time budget."""

    def __init__(
        self,
        reason: str,
        *,
        budget: str,
        virtual_time: float,
        pending: Iterable[PendingTask],
    ) -> None:
        self.budget = budget
        super().__init__(reason, virtual_time=virtual_time, pending=pending)


def pending_tasks(loop: asyncio.AbstractEventLoop) -> list[PendingTask]:
    """The unfinished tasks of ``loop``, sorted by name then coroutine (sets have no order)."""
    found = [_describe(task) for task in asyncio.all_tasks(loop) if not task.done()]
    return sorted(found, key=lambda t: (t.name, t.coroutine, t.awaiting))


def _describe(task: asyncio.Task[Any]) -> PendingTask:
    coro = task.get_coro()
    chain: list[str] = []
    current: Any = coro
    # Walk the await chain: coroutine -> awaited coroutine/generator -> ... -> a future.
    for _ in range(64):
        frame: FrameType | None = (
            getattr(current, "cr_frame", None)
            or getattr(current, "gi_frame", None)
            or getattr(current, "ag_frame", None)
        )
        if frame is None:
            break
        code = frame.f_code
        chain.append(f"{code.co_qualname} ({_short(code.co_filename)}:{frame.f_lineno})")
        nxt = (
            getattr(current, "cr_await", None)
            or getattr(current, "gi_yieldfrom", None)
            or getattr(current, "ag_await", None)
        )
        if nxt is None:
            break
        current = nxt
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is not None:
        chain.append(f"waiting on {type(waiter).__name__}")
    name = getattr(coro, "__qualname__", type(coro).__name__)
    return PendingTask(name=task.get_name(), coroutine=name, awaiting=tuple(chain))


def _short(path: str) -> str:
    marker = "site-packages/"
    if marker in path:
        return path.split(marker, 1)[1]
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])
