"""Views of a saved run: the terminal waterfall (``harness trace show``) and the self-contained
HTML report (``harness trace html``, and ``report.html`` in every run directory).

Both are drawn from the run directory's files only, so they work on any saved run. The view
model is imported on first use: ``harness trace --help`` must not pay for reading traces.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.views.model import (
        Interval,
        Lane,
        Marker,
        RunView,
        SpanRow,
        VerdictView,
        build_view,
    )

__all__ = [
    "REPORT_NAME",
    "Interval",
    "Lane",
    "Marker",
    "RunView",
    "SpanRow",
    "VerdictView",
    "build_view",
    "write_report",
]

REPORT_NAME = "report.html"
_MODEL_NAMES = frozenset(__all__) - {"REPORT_NAME", "write_report"}


def __getattr__(name: str) -> Any:
    if name not in _MODEL_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("harness.views.model"), name)
    globals()[name] = value
    return value


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` into ``run_dir`` (built from its files) and return its path."""
    from harness.views.html import render_html
    from harness.views.model import build_view

    path = Path(run_dir) / REPORT_NAME
    path.write_text(render_html(build_view(Path(run_dir))), encoding="utf-8")
    return path
