"""Views of a saved run: the terminal waterfall (``harness trace show``) and the self-contained
HTML report (``harness trace html``, and ``report.html`` in every run directory).

Both are drawn from the run directory's files only, so they work on any saved run.
"""

from __future__ import annotations

from pathlib import Path

from harness.views.model import Interval, Lane, Marker, RunView, SpanRow, VerdictView, build_view

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


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` into ``run_dir`` (built from its files) and return its path."""
    from harness.views.html import render_html

    path = Path(run_dir) / REPORT_NAME
    path.write_text(render_html(build_view(Path(run_dir))), encoding="utf-8")
    return path
