"""Scenario engine: load scenario files, run them under a policy and seed, judge them.

``run_scenario(scenario, policy="buggy", seed=0)`` runs one in sim mode and returns a
``RunOutcome``; ``write_run`` stores its artifacts; ``resolve`` finds a built-in scenario by name.
"""

from harness.scenarios.artifacts import write_run
from harness.scenarios.model import POLICY_MAP, Policy, Scenario, load_scenario, parse_scenario
from harness.scenarios.registry import builtin_names, resolve
from harness.scenarios.runner import RunOutcome, run_scenario

__all__ = [
    "POLICY_MAP",
    "Policy",
    "RunOutcome",
    "Scenario",
    "builtin_names",
    "load_scenario",
    "parse_scenario",
    "resolve",
    "run_scenario",
    "write_run",
]
