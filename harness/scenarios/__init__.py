"""Scenario engine: load scenario files, run them under a policy and seed, judge them.

``run_scenario(scenario, policy="buggy", seed=0)`` runs one in sim mode and returns a
``RunOutcome``; ``write_run`` stores its artifacts; ``resolve`` finds a built-in scenario by name.

The names are imported on first use: the command line imports this package's submodules for
``--help`` and ``list``, which must not pay for the runtime (the ``anthropic`` and ``mcp`` SDKs).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.scenarios.artifacts import write_run
    from harness.scenarios.model import (
        POLICY_MAP,
        Policy,
        Scenario,
        load_scenario,
        parse_scenario,
    )
    from harness.scenarios.registry import builtin_names, resolve
    from harness.scenarios.run import run_scenario
    from harness.scenarios.runner import RunOutcome

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

_WHERE = {
    "write_run": "artifacts",
    "POLICY_MAP": "model",
    "Policy": "model",
    "Scenario": "model",
    "load_scenario": "model",
    "parse_scenario": "model",
    "builtin_names": "registry",
    "resolve": "registry",
    "RunOutcome": "runner",
    "run_scenario": "run",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
