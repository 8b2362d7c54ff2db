"""``harness ARGS`` run in this process, as the reliability tests call it."""

from __future__ import annotations

from click.testing import CliRunner

from harness.cli import cli
from harness.errors import HarnessError

__all__ = ["invoke"]


def invoke(args: list[str]) -> tuple[int, str]:
    """``harness ARGS`` in process, as ``harness.cli.main`` runs it: a ``HarnessError`` is an
    ``error:`` line and its exit code; any other exception is a crash and fails the test."""
    result = CliRunner().invoke(cli, args)
    exc = result.exception
    if isinstance(exc, HarnessError):
        return exc.exit_code, f"{result.output}error: {exc}\n"
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return result.exit_code, result.output
