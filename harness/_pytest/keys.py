"""Stash keys shared by the plugin's hooks and items (kept free of heavy imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness._pytest.runs import RunSettings
    from harness.scenarios import RunOutcome

__all__ = ["RUNS_KEY", "SETTINGS_KEY", "worker_id"]

SETTINGS_KEY: pytest.StashKey[RunSettings] = pytest.StashKey()
# The runs a test item made (harness_run calls or a scenario item's seeds), for its report.
RUNS_KEY: pytest.StashKey[list[RunOutcome]] = pytest.StashKey()


def worker_id(config: pytest.Config) -> str | None:
    """The pytest-xdist worker this process is (``gw0``...), or ``None``."""
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict):
        value = workerinput.get("workerid")
        return str(value) if value else None
    return None
