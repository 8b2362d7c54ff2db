"""A stop signal cannot cut a run directory in half: while it is created and its files renamed
into place, Ctrl-C (and SIGTERM / SIGHUP, forwarded as SIGINT) waits for the end of the step."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness._signals import deferred_interrupts
from harness.scenarios import artifacts, resolve, run_scenario


@pytest.fixture
def python_sigint() -> Iterator[None]:
    # A test worker may run with SIGINT ignored; the command line has Python's own handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("python_sigint")
def test_a_signal_inside_the_block_is_raised_when_it_ends() -> None:
    steps: list[str] = []

    def interrupted_step() -> None:
        with deferred_interrupts():
            signal.raise_signal(signal.SIGINT)
            steps.append("went on after the signal")

    with pytest.raises(KeyboardInterrupt):
        interrupted_step()
    assert steps == ["went on after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with deferred_interrupts():
        steps.append("no signal, nothing raised")
    assert len(steps) == 2


@pytest.mark.usefixtures("python_sigint")
def test_a_signal_while_the_files_are_renamed_leaves_a_whole_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, _ = resolve("cascade")
    outcome = run_scenario(scenario, policy="buggy")
    real_replace = os.replace
    renamed: list[str] = []

    def replace_after_a_signal(src: str | Path, dst: str | Path) -> None:
        if not renamed:
            signal.raise_signal(signal.SIGINT)  # lands before the first rename
        renamed.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", replace_after_a_signal)
    with pytest.raises(KeyboardInterrupt):
        artifacts.write_run(outcome, scenario, tmp_path)
    (run_dir,) = list(tmp_path.iterdir())
    assert (run_dir / "run.json").exists()
    assert renamed[-1] == "run.json"
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]
