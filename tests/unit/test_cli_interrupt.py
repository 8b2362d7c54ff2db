"""A stop signal decides how ``harness`` ends even when the code it landed in turned the
``KeyboardInterrupt`` into an error of its own (pydantic does, when Ctrl-C lands while it builds
a validator during the imports of a command): "interrupted", 128 + the signal, no traceback."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import click
import pytest

from harness.cli import cli, main
from harness.errors import ScenarioError

_NAME = "interrupted-inside-a-library"


@pytest.fixture
def wrapping_command(request: pytest.FixtureRequest) -> Iterator[None]:
    """A command whose work is cut by a signal that the library it runs wraps (as
    ``ErrorType``)."""
    signum, error_type = request.param

    @click.command(_NAME)
    def command() -> None:
        try:
            signal.raise_signal(signum)
        except KeyboardInterrupt:
            raise error_type('Error building "url" validator: KeyboardInterrupt') from None

    cli.add_command(command)
    try:
        yield
    finally:
        cli.commands.pop(_NAME)


@pytest.mark.parametrize(
    ("wrapping_command", "status"),
    [
        ((signal.SIGINT, RuntimeError), 130),
        ((signal.SIGTERM, RuntimeError), 143),
        ((signal.SIGINT, ScenarioError), 130),
    ],
    indirect=["wrapping_command"],
    ids=["sigint", "sigterm", "sigint-as-harness-error"],
)
def test_a_wrapped_interrupt_still_stops_with_its_signal_status(
    wrapping_command: None, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([_NAME])
    err = capsys.readouterr().err
    assert exited.value.code == status, err
    assert err.strip() == "interrupted"


def test_an_error_without_a_signal_is_still_raised() -> None:
    @click.command(_NAME)
    def command() -> None:
        raise RuntimeError("a real crash")

    cli.add_command(command)
    try:
        with pytest.raises(RuntimeError, match="a real crash"):
            main([_NAME])
    finally:
        cli.commands.pop(_NAME)
