"""``harness trace``: inspect a saved run's trace (terminal waterfall, HTML report).

The group is a plain click group: another module's command joins it with one line,
``trace.add_command(command)``, at the end of this module (keep that module's top-level imports
light: heavy ones go inside its command function, as here).
"""

from __future__ import annotations

from pathlib import Path

import click

from harness.telemetry.cli_push import push

__all__ = ["trace"]

_RUN_DIR = click.Path(path_type=Path, file_okay=False, dir_okay=True)


@click.group("trace")
def trace() -> None:
    """Inspect a run's trace: terminal waterfall, HTML report."""


@trace.command("show", short_help="Terminal waterfall of a saved run.")
@click.argument("run_dir", type=_RUN_DIR)
@click.option(
    "--focus",
    type=click.Choice(["agent", "server", "fault"]),
    default=None,
    help="Show only agents, only MCP servers, or only faults, errors and evidence.",
)
@click.option(
    "--width",
    type=click.IntRange(min=60, max=1000),
    default=None,
    help="Columns to lay out for (default: the terminal's width).",
)
def show_cmd(run_dir: Path, focus: str | None, width: int | None) -> None:
    """Print RUN_DIR's trace as a waterfall on the run's clock (virtual time in sim mode)."""
    from rich.console import Console

    from harness.views.model import build_view
    from harness.views.terminal import render

    view = build_view(run_dir)
    console = Console(width=width) if width else Console()
    if not width and console.width < 60:
        console = Console(width=80)
    render(view, console, focus=focus)  # type: ignore[arg-type]


@trace.command("html", short_help="Self-contained HTML report of a saved run.")
@click.argument("run_dir", type=_RUN_DIR)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the self-contained HTML report.",
)
def html_cmd(run_dir: Path, output: Path) -> None:
    """Write RUN_DIR's report as one self-contained HTML file (no network needed to view it)."""
    from harness.errors import ConfigError
    from harness.views.html import render_html
    from harness.views.model import build_view

    page = render_html(build_view(run_dir))
    try:
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report: {exc.strerror}", path=output) from None
    click.echo(str(output))


trace.add_command(push)
