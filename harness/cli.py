"""The ``harness`` command.

Subcommands live in their own modules and are imported only when invoked, so ``harness --help``
does not pay for importing ``mcp`` or ``anthropic`` (seconds on a small machine). Errors from
the ``HarnessError`` tree are printed as one clear line and mapped to their exit code; no
traceback reaches the user.
"""

from __future__ import annotations

import atexit
import importlib
import io
import os
import sys
import threading
from contextlib import suppress
from typing import NoReturn

import click

from harness import __version__
from harness._signals import INTERRUPTED, signalled, stop_signals
from harness._text import printable
from harness.errors import HarnessError

__all__ = ["main"]

# name -> ("module", "attribute", "short help"); the help text is here so listing commands
# imports nothing.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "bench": ("harness.bench", "bench", "Run every benchmark and print one table of figures."),
    "agent": (
        "harness.scenarios.agent_cli",
        "agent",
        "Run the agent runtime under test from a config file.",
    ),
    "check": (
        "harness.scenarios.cli",
        "check_cmd",
        "Run oracles on a saved run directory or a bare trace.",
    ),
    "list": ("harness.scenarios.cli", "list_cmd", "List the built-in scenarios."),
    "new": (
        "harness.scenarios.cli",
        "new_cmd",
        "Copy a built-in scenario as the start of your own.",
    ),
    "replay": (
        "harness.scenarios.cli",
        "replay_cmd",
        "Re-run a saved run and say whether outcome and trace are identical.",
    ),
    "run": (
        "harness.scenarios.cli",
        "run_cmd",
        "Run scenarios under the buggy and fixed policies and judge them.",
    ),
    "schema": (
        "harness.scenarios.cli",
        "schema_cmd",
        "Print the JSON Schema of scenario files.",
    ),
    "trace": (
        "harness.views.cli",
        "trace",
        "Inspect a run's trace: terminal waterfall, HTML report.",
    ),
    "explore": (
        "harness.explore.cli",
        "explore",
        "Run many seeds, report the hit rate, store and shrink failures.",
    ),
    "fake-api": (
        "fake_servers.anthropic.cli",
        "fake_api",
        "Fake Anthropic Messages API (serve it on loopback).",
    ),
    "proxy": (
        "harness.faults.cli",
        "proxy",
        "Toxiproxy-compatible TCP proxy with toxics (serve it on loopback).",
    ),
    "interpose": (
        "harness.faults.interposer_cli",
        "interpose",
        "Run an MCP server command behind a fault-injecting stdio relay.",
    ),
    "fake-mcp": (
        "fake_servers.mcp.cli",
        "fake_mcp",
        "Run a scripted fake MCP server (stdio or streamable HTTP).",
    ),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module_name, attr, _ = _COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module_name}.{attr} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in sorted(_COMMANDS)]
        rows += [
            (name, cmd.get_short_help_str())
            for name, cmd in sorted(self.commands.items())
            if not cmd.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="harness")
def cli() -> None:
    """Heisenharness: reproduce agent-runtime concurrency bugs on demand, and see why."""


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``harness`` console script (``argv``: the arguments, for a caller
    that embeds the command; default: the process's). SIGTERM and SIGHUP stop a command as
    Ctrl-C does; the exit status is then 128 + the signal (130, 143, 129)."""
    with stop_signals() as stop:
        status = stop.exit_status(_invoke(argv))
    if argv is None:
        _end_process(status)
    sys.exit(status)


def _end_process(status: int) -> None:
    """End the process now that the command is done, without the interpreter's teardown of
    every module and object (over a second of CPU once the SDKs are imported: it would
    delay every exit, a stopped command's past its 3 s). Only when nothing else runs; the
    atexit handlers (exporters flushing, pools joining) run first and output is flushed."""
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None or threading.active_count() > 1:
        return
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(status)


def _invoke(argv: list[str] | None) -> int:
    try:
        return _command_status(argv)
    except Exception:
        # The signal's KeyboardInterrupt became another error in the code it landed in.
        if not signalled():
            raise
        click.echo("interrupted", err=True)
        return INTERRUPTED


def _command_status(argv: list[str] | None) -> int:
    try:
        result = cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except click.exceptions.Abort:
        # Ctrl-C (or SIGTERM / SIGHUP) in a command without a handler of its own.
        click.echo("interrupted", err=True)
        return INTERRUPTED
    except click.ClickException as exc:
        # A usage error quotes what the command line named (a path may hold control characters).
        shown = io.StringIO()
        exc.show(file=shown)
        click.echo(printable(shown.getvalue(), keep_newlines=True), err=True, nl=False)
        return exc.exit_code
    except HarnessError as exc:
        if signalled():
            raise  # an interrupt wrapped on its way up: _invoke says so
        # Messages quote files and values from anywhere: control characters are escaped.
        click.echo(f"error: {printable(str(exc))}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        click.echo(printable(str(exc.code), keep_newlines=True), err=True)
        return 1
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
