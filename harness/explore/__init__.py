"""Exploration: run many seeds of a scenario, measure how often it fails, keep and shrink failures.

- ``explore(scenario, runs=..., policy=..., strategy=..., jobs=...) -> ExploreReport``: the hit
  rate with a 95 % Wilson interval, the first failing seed, the distinct failure signatures with
  one replay command each, runs per second; failing seeds re-run once to catch nondeterminism.
- ``FailureDB``: failing seeds by scenario hash under ``.harness/failures/``, replayed first;
  ``replay_stored(scenario, policy=...)`` runs them (for ``harness run`` to call first).
- ``shrink(scenario, policy=..., seed=..., oracle=...) -> ShrinkResult``: the simplest draws
  and schedule that still fail the same oracle, as a scenario file with fixed values;
  ``shrink_run_dir(run_dir)`` does it for a saved failing run.
- ``wilson_interval(k, n)``, ``shard_seeds(runs, shard=..., first_seed=...)``.
"""

from harness.explore.engine import ExploreReport, Signature, explore
from harness.explore.seeds import parse_shard, shard_seeds
from harness.explore.shrink import ShrinkResult, shrink, shrink_run_dir
from harness.explore.stats import wilson_interval
from harness.explore.worker import SeedResult
from harness.scenarios.failure_db import FailureDB, FailureEntry, replay_stored

__all__ = [
    "ExploreReport",
    "FailureDB",
    "FailureEntry",
    "SeedResult",
    "ShrinkResult",
    "Signature",
    "explore",
    "parse_shard",
    "replay_stored",
    "shard_seeds",
    "shrink",
    "shrink_run_dir",
    "wilson_interval",
]
