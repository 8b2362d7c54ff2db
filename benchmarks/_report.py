"""One benchmark report: run every module's ``figures()`` in this process, print one table.

Used by ``python -m benchmarks`` and ``harness bench``. A module that raises becomes a row with
the error text and the others still run; a module without ``figures()`` is a "not reported" row.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmarks._figures import Figure, note_row

__all__ = ["MODULES", "collect", "render_table", "run", "select", "to_json"]

# In report order; each is ``benchmarks.<name>``.
MODULES: tuple[str, ...] = (
    "fake_api",
    "fake_mcp",
    "runtime",
    "adapter",
    "proxy",
    "interposer",
    "sim_loop",
    "scenarios",
    "explore",
    "pythons",
    "export",
    "views",
    "startup",
)

_KEYS = ("figure", "value", "unit", "baseline", "ratio", "target", "met")


def select(only: Iterable[str]) -> list[str]:
    """The modules to run, in report order: all of them, or those named (comma lists allowed).
    Raises ``ValueError`` naming an unknown module."""
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        raise ValueError(
            f"unknown benchmark {', '.join(map(repr, unknown))}; choose from {', '.join(MODULES)}"
        )
    return [m for m in MODULES if not names or m in names]


def _number(row: Mapping[str, object], key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key} is {value!r}, not a number")
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _coerce(row: Mapping[str, object]) -> Figure:
    """A module's row as a ``Figure``; raises ``TypeError`` naming what is wrong."""
    missing = [k for k in _KEYS if k not in row]
    if missing:
        raise TypeError(f"figure {row.get('figure')!r} lacks {', '.join(missing)}")
    met = row["met"]
    if met is not None and not isinstance(met, bool):
        raise TypeError(f"met is {met!r}, not a bool or None")
    figure = Figure(
        figure=str(row["figure"]),
        value=_number(row, "value"),
        unit=str(row["unit"]),
        baseline=_number(row, "baseline"),
        ratio=_number(row, "ratio"),
        target=str(row["target"] or ""),
        met=met,
    )
    if "note" in row:
        figure["note"] = str(row["note"])
    return figure


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame else ""
    return f"error: {type(exc).__name__}: {text}{where}"


def collect(
    names: Sequence[str],
    *,
    quick: bool,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Figure]:
    """Run ``benchmarks.<name>.figures(quick=quick)`` for each name, in this process.

    Whatever a module prints goes to stderr, so stdout holds only the report."""
    rows: list[Figure] = []
    for name in names:
        started = time.perf_counter()
        progress(f"benchmarks.{name} ...")
        try:
            with contextlib.redirect_stdout(sys.stderr):
                module = importlib.import_module(f"benchmarks.{name}")
                figures = getattr(module, "figures", None)
                if figures is None:
                    rows.append(note_row(name, "not reported (no figures() yet)"))
                    progress(f"benchmarks.{name}: not reported")
                    continue
                got: Any = figures(quick=quick)
                module_rows = [_coerce(row) for row in got]
        except (Exception, SystemExit) as exc:
            rows.append(note_row(name, _one_line(exc), met=False))
            progress(f"benchmarks.{name}: {_one_line(exc)}")
            continue
        rows.extend(module_rows)
        progress(f"benchmarks.{name}: {len(module_rows)} figures in {_elapsed(started)}")
    return rows


def _elapsed(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def _num(value: float) -> str:
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _with_unit(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{_num(value)} {unit}".rstrip()


def _met(met: bool | None) -> Text:
    if met is None:
        return Text("")
    return Text("yes", style="green") if met else Text("NO", style="bold red")


def render_table(rows: Sequence[Figure], console: Console) -> None:
    """Print the rows as one table (Markdown-shaped, so it pastes into a README)."""
    table = Table(box=box.MARKDOWN, show_edge=True, pad_edge=True)
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("baseline", justify="right", no_wrap=True)
    table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("met", no_wrap=True)
    for row in rows:
        if "note" in row:
            style = "red" if row["met"] is False else "dim"
            label = Text(f"{row['figure']}: {row['note']}", style=style)
            table.add_row(label, "", "", "", "", _met(row["met"]))
            continue
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        table.add_row(
            row["figure"],
            _with_unit(row["value"], row["unit"]),
            _with_unit(row["baseline"], row["unit"]),
            ratio,
            row["target"],
            _met(row["met"]),
        )
    with console.capture() as captured:
        console.print(table)
    # The Markdown box draws its outer edges as blank lines: leave them out.
    lines = [line for line in captured.get().splitlines() if line.strip()]
    console.file.write("\n".join(lines) + "\n")


def to_json(rows: Sequence[Figure]) -> str:
    """The rows as a JSON list of objects with the keys figure, value, unit, baseline, ratio,
    target, met (and note, on rows without a measurement)."""
    return json.dumps([dict(row) for row in rows], indent=2)


def run(*, quick: bool, as_json: bool, only: Iterable[str]) -> int:
    """Run the selected benchmarks and print the report; exit status 1 when a module failed.

    Raises ``ValueError`` for an unknown module name."""
    names = select(only)
    err = Console(stderr=True)
    started = time.perf_counter()
    rows = collect(names, quick=quick, progress=lambda line: err.print(line, highlight=False))
    err.print(f"{len(names)} benchmark modules in {_elapsed(started)}", highlight=False)
    if as_json:
        sys.stdout.write(to_json(rows) + "\n")
    else:
        out = Console(width=None if sys.stdout.isatty() else 240)
        render_table(rows, out)
    failed = any("note" in row and row["met"] is False for row in rows)
    return 1 if failed else 0
