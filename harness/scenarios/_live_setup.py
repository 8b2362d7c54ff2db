"""What live mode's two runners share (the reference runtime's and a runtime under test's):
the live transports of a scenario's config and this process's children, to find leaks."""

from __future__ import annotations

import os
from pathlib import Path

from harness.runtime.config import RuntimeConfig
from harness.scenarios.model import Policy, Scenario

__all__ = ["children", "live_config"]


def children() -> set[int]:
    """The pids of this process's children now (every thread's)."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return pids


def live_config(scenario: Scenario, policy: Policy) -> RuntimeConfig:
    """The scenario's runtime config with real transports: fake servers as stdio subprocesses
    (unless the scenario chose HTTP) and the fake API on loopback."""
    config = scenario.runtime_config(policy)
    servers = {
        name: s.model_copy(update={"transport": "stdio"}) if s.transport == "memory" else s
        for name, s in config.servers.items()
    }
    api = config.api.model_copy(update={"loopback": True})
    return config.model_copy(update={"servers": servers, "api": api})
