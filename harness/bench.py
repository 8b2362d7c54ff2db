"""``harness bench``: the benchmark report (the same as ``python -m benchmarks``).

The benchmarks are not installed with the package; they live in the ``benchmarks/`` directory
of a source checkout. This command finds them next to the ``harness`` package (an editable
install from a checkout) and otherwise says so and exits 2.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import click

__all__ = ["bench"]


def _report_module() -> ModuleType | None:
    loaded = sys.modules.get("benchmarks")
    if loaded is None:
        checkout = Path(__file__).resolve().parent.parent
        if not (checkout / "benchmarks" / "_report.py").is_file():
            return None
        # The checkout's root: harness and fake_servers resolve to the same files through it.
        if str(checkout) not in sys.path:
            sys.path.insert(0, str(checkout))
    return importlib.import_module("benchmarks._report")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quick", is_flag=True, help="Fewer iterations (a few minutes in all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of figure objects.")
@click.option(
    "--only",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="Run only these benchmark modules (repeatable), e.g. --only fake_api,proxy.",
)
@click.pass_context
def bench(ctx: click.Context, quick: bool, as_json: bool, only: tuple[str, ...]) -> None:
    """Run every benchmark and print one table: figure, value, baseline, ratio, target, met.

    Each baseline is measured in the same run. Exit status 1 when a benchmark module failed
    (its row says why), 2 when the benchmarks are not available (not a source checkout).
    """
    report = _report_module()
    if report is None:
        click.echo(
            "error: harness bench runs from a source checkout: the benchmarks/ directory is not "
            "installed with the package (clone the repository, install it with "
            "`pip install -e .` and run `harness bench` or `python -m benchmarks`)",
            err=True,
        )
        ctx.exit(2)
    try:
        status = report.run(quick=quick, as_json=as_json, only=only)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--only") from None
    ctx.exit(status)
