"""Live mode: put a stdio MCP server command behind ``harness interpose`` with a plan.

``interposed(params, plan, name=..., workdir=...)`` writes the plan's entries for ``name`` to a
JSON file in ``workdir`` and returns ``StdioServerParameters`` that run the interposer (this
Python, ``-m harness interpose``) in front of the original command, with the same environment
and working directory. Plan times are scenario seconds: pass the run's ``time_scale``. With
``counts``, every interposer started from these parameters (a respawned server's too) shares
the plan's counts through that file, so a one-shot fault fires once per server.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.faults.plan import FaultPlan

__all__ = ["interposed"]


def interposed(
    params: Any,
    plan: FaultPlan,
    *,
    name: str,
    workdir: str | Path,
    seed: int = 0,
    time_scale: float = 1.0,
    events: str | Path | None = None,
    spans: str | Path | None = None,
    counts: str | Path | None = None,
) -> Any:
    """``params`` (``mcp.StdioServerParameters``) wrapped by the interposer for server
    ``name``; returns ``params`` unchanged when the plan has nothing for ``name``."""
    selected = plan.for_target(name)
    if not selected.frame_faults() and not selected.toxics():
        return params
    plan_path = Path(workdir) / f"faults-{name}.json"
    plan_path.write_text(selected.model_dump_json(exclude_none=True), encoding="utf-8")
    args = ["-m", "harness", "interpose", "--plan", str(plan_path), "--name", name]
    args += ["--seed", str(seed), "--time-scale", repr(time_scale)]
    if events is not None:
        args += ["--events", str(events)]
    if spans is not None:
        args += ["--spans", str(spans)]
    if counts is not None:
        args += ["--counts", str(counts)]
    args += ["--", params.command, *params.args]
    return params.model_copy(update={"command": sys.executable, "args": args})
