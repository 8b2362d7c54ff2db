"""The foundation: error rendering, the seeded random source, the loop clock, the CLI shell."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
from click.testing import CliRunner

from harness import __version__
from harness.chaos_random import ChaosRandom
from harness.cli import cli
from harness.clock import Clock, LoopClock
from harness.errors import ConfigError, HarnessError, ScriptError


def test_config_error_names_file_line_field_and_value() -> None:
    err = ScriptError(
        "must be a number", path="s.yaml", line=7, field="turns[2].latency", value="x"
    )
    assert str(err) == "s.yaml:7, field 'turns[2].latency': must be a number (got 'x')"
    assert isinstance(err, ConfigError)
    assert isinstance(err, HarnessError)
    assert err.exit_code == 2


def test_config_error_without_location_is_just_the_message() -> None:
    assert str(ConfigError("nothing to run")) == "nothing to run"


def test_config_error_truncates_huge_values() -> None:
    text = str(ConfigError("too long", value="a" * 500))
    assert len(text) < 120
    assert text.endswith("...)")


def test_chaos_random_same_seed_same_draws() -> None:
    a, b = ChaosRandom(17), ChaosRandom(17)
    assert [a.token() for _ in range(5)] == [b.token() for _ in range(5)]
    assert ChaosRandom(17).token() != ChaosRandom(18).token()


def test_chaos_random_forks_are_independent_of_parent_draws() -> None:
    a = ChaosRandom(3)
    first = a.fork("ids").token()
    a.random()
    a.random()
    assert a.fork("ids").token() == first
    assert a.fork("ids").token() != a.fork("jitter").token()


def test_chaos_random_chance_extremes_do_not_draw() -> None:
    rng = ChaosRandom(1)
    reference = ChaosRandom(1).random()
    assert rng.chance(1.0) is True
    assert rng.chance(0.0) is False
    assert rng.random() == reference


async def test_loop_clock_starts_near_zero_and_advances() -> None:
    clock = LoopClock()
    assert isinstance(clock, Clock)
    start = clock.now()
    assert 0.0 <= start < 0.01
    await clock.sleep(0.02)
    assert clock.now() - start >= 0.015


def test_cli_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"harness, version {__version__}"


def test_cli_help_lists_commands_without_importing_them() -> None:
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('mcp', 'anthropic', 'httpx2', 'opentelemetry.sdk')\n"
        "         if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "fake-api" in out
    assert "fake-mcp" in out
    assert "HEAVY []" in out


def test_cli_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


@pytest.mark.parametrize("seconds", [0, -1])
async def test_loop_clock_nonpositive_sleep_is_a_checkpoint(seconds: float) -> None:
    clock = LoopClock()
    # A cancellation point: a cancelled scope stops there (a sleep that returned at once
    # without awaiting would run on to the line after it).
    reached = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await clock.sleep(seconds)
        reached = True
    assert scope.cancelled_caught
    assert not reached
    # A scheduling point: a task started just before runs before the sleep returns.
    ran: list[bool] = []

    async def other() -> None:
        ran.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await clock.sleep(seconds)
        assert ran == [True]
