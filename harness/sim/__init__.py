"""Sim mode's deterministic event loop: virtual time, seeded scheduling, deadlock detection.

- ``run_sim(main, seed=..., strategy=...)`` runs a coroutine on a fresh ``VirtualTimeLoop`` and
  returns ``SimResult(value, stats)``; call it from sync code (a plain ``def`` pytest test).
- ``VirtualTimeLoop`` is the loop itself (``harness.sim.loop``, the only module that touches
  asyncio internals).
- ``StrategyConfig`` records the scheduling strategy (``fifo`` / ``random`` / ``pct``), its
  params and seed.
- ``SimDeadlock`` / ``SimBudgetExceeded`` (both ``SimStalled``, a ``RuntimeFailure``: the
  system under test hung) say why a run could not go on and list the pending tasks.
"""

from harness.sim.errors import PendingTask, SimBudgetExceeded, SimDeadlock, SimStalled
from harness.sim.loop import VirtualTimeLoop, check_internals
from harness.sim.runner import SimResult, SimStats, run_sim
from harness.sim.strategies import STRATEGIES, StrategyConfig

__all__ = [
    "STRATEGIES",
    "PendingTask",
    "SimBudgetExceeded",
    "SimDeadlock",
    "SimResult",
    "SimStalled",
    "SimStats",
    "StrategyConfig",
    "VirtualTimeLoop",
    "check_internals",
    "run_sim",
]
