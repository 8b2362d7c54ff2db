"""Stopping a ``harness`` command with a signal, as a user, a terminal or a service manager does.

``Command`` starts ``python -m harness ARGS`` in its own session, either with pipes (a CI job,
a background process; optionally with SIGINT ignored, as a non-interactive shell starts a
background job) or on a pseudo-terminal that is its controlling terminal, so Ctrl-C is the
real thing: the byte ``\\x03`` typed on the terminal, turned into SIGINT for the whole
foreground process group by the kernel. ``stop()`` sends the signal and times the exit against
``EXIT_BOUND_S`` stretched by the machine's load, measured just before the signal and again
just after the exit (the larger counts: load that rose meanwhile slowed the exit too), plus a
fixed ``grace`` the caller names (a wait that load does not stretch). A command that does not
exit at all fails after the bound and 30 s more.

Waiting for a command to be under way is waiting on events: a child process appearing, or the
command's process tree having spent a given CPU time (load-independent, unlike wall time).
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcp.client.stdio import PROCESS_TERMINATION_TIMEOUT

from tests._load import scaled
from tests.reliability._resources import descendants, processes

__all__ = [
    "CTRL_C",
    "EXIT_BOUND_S",
    "STDIO_SERVER_GRACE_S",
    "Command",
    "Stopped",
    "assert_nothing_left",
    "import_cpu",
]

# The user-facing requirement: one signal stops any command within 3 s (on an idle machine).
EXIT_BOUND_S = 3.0
# A live run's stdio servers get the MCP SDK's grace to exit at the end of their input before
# they are terminated; a server still importing (seconds on a loaded machine) uses all of it.
STDIO_SERVER_GRACE_S = PROCESS_TERMINATION_TIMEOUT
# How long a command may take to get going on a loaded machine (imports, first subprocess).
START_BOUND_S = 120.0
CTRL_C = "ctrl-c"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Stopped:
    pid: int
    returncode: int
    exit_after_s: float
    bound_s: float
    stdout: str
    stderr: str
    running_at_signal: list[str]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def assert_quick(self) -> None:
        assert self.exit_after_s <= self.bound_s, (
            f"exit {self.exit_after_s:.2f} s after the signal (bound {self.bound_s:.2f} s: "
            f"{EXIT_BOUND_S} s at this machine's load, plus any fixed grace)"
        )


def _cpu_of(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def import_cpu() -> float:
    """CPU seconds a fresh interpreter spends importing what a run needs (the baseline a
    command's CPU time is measured against to know it is past its imports)."""
    code = (
        "import harness.cli, harness.scenarios, harness.explore.engine, harness.scenarios.live, "
        "fake_servers.anthropic, fake_servers.mcp, harness.runtime.runtime"
    )
    before = os.times()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=START_BOUND_S)
    after = os.times()
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


class Command:
    """``python -m harness ARGS`` in a session of its own."""

    def __init__(
        self,
        args: list[str],
        *,
        cwd: Path,
        tty: bool = False,
        sigint_ignored: bool = False,
        stdin_open: bool = False,
    ) -> None:
        env = dict(os.environ, TMPDIR=str(cwd), COLUMNS="100", LINES="30", TERM="xterm")
        env.pop("NO_COLOR", None)
        argv = [sys.executable, "-m", "harness", *args]
        self._chunks: list[bytes] = []
        self._master: int | None = None
        self._reader: threading.Thread | None = None

        def prepare() -> None:
            if sigint_ignored:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            if tty:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        if tty:
            master, slave = pty.openpty()
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=prepare,
            )
            os.close(slave)
            self._master = master
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()
        else:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                # Held open for a stdio server (at end of input it stops on its own).
                stdin=subprocess.PIPE if stdin_open else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=prepare if sigint_ignored else None,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        assert self._master is not None
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return  # EIO: every process on the terminal is gone
            if not data:
                return
            self._chunks.append(data)

    def cpu_seconds(self) -> float:
        """CPU time of the command and every process below it, now."""
        return _cpu_of(self.pid) + sum(_cpu_of(p.pid) for p in descendants(self.pid))

    def wait_for(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_BOUND_S
        while not ready():
            if self.proc.poll() is not None:
                out, err = self._collect()
                raise AssertionError(f"exited ({self.proc.returncode}) before {what}: {out}{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {START_BOUND_S} s")
            time.sleep(0.02)

    def wait_cpu(self, seconds: float) -> None:
        self.wait_for(lambda: self.cpu_seconds() >= seconds, f"{seconds:.1f} CPU seconds in")

    def workers(self) -> list[int]:
        """Processes two levels down: the workers a fork server (a child) forked."""
        children = {p.pid for p in descendants(self.pid) if p.ppid == self.pid}
        return [p.pid for p in descendants(self.pid) if p.ppid in children]

    def wait_workers_cpu(self, count: int, seconds: float) -> None:
        """Until ``count`` workers have each spent ``seconds`` of CPU (they are running)."""

        def busy() -> bool:
            return sum(_cpu_of(pid) >= seconds for pid in self.workers()) >= count

        self.wait_for(busy, f"{count} workers {seconds:.1f} CPU seconds in")

    def stop(self, how: int | str, *, to_group: bool, grace: float = 0.0) -> Stopped:
        """Send ``how`` (a signal, or ``CTRL_C`` typed on the terminal) and wait for the exit,
        bounded by ``EXIT_BOUND_S`` at the machine's load plus ``grace``."""
        running = [p.cmdline for p in descendants(self.pid)]
        bound = grace + scaled(EXIT_BOUND_S)
        if how == CTRL_C:
            assert self._master is not None, "Ctrl-C needs the terminal"
            os.write(self._master, b"\x03")
        elif to_group:
            os.killpg(self.pid, int(how))
        else:
            os.kill(self.pid, int(how))
        sent = time.monotonic()
        try:
            self.proc.wait(timeout=bound + 30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"no exit {bound + 30:.0f} s after {how}") from None
        exit_after = time.monotonic() - sent
        bound = max(bound, grace + scaled(EXIT_BOUND_S))
        # What the command left running is the test's to see: only its own terminal goes.
        out, err = self._collect()
        return Stopped(self.pid, self.proc.returncode, exit_after, bound, out, err, running)

    def _collect(self) -> tuple[str, str]:
        if self._master is None:
            out, err = self.proc.communicate()
            return out.decode(errors="replace"), err.decode(errors="replace")
        assert self._reader is not None
        self._reader.join(timeout=5)
        text = b"".join(self._chunks).decode(errors="replace").replace("\r\n", "\n")
        return text, ""

    def kill(self) -> None:
        """SIGKILL whatever of the command's session is still running (test cleanup)."""
        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        if self._master is not None and self._reader is not None:
            self._reader.join(timeout=5)
            os.close(self._master)
            self._master = None


def assert_nothing_left(group: int, tmpdir: Path) -> None:
    """No process below this test process or in the command's group; no temporary
    directory of a live run (``harness-live-*``) or a worker pool (``pymp-*``) in ``tmpdir``."""
    # A process killed on the way out may still be tearing down for a moment: it gets that
    # moment, not more.
    deadline = time.monotonic() + scaled(1.0)
    while any(not p.zombie for p in descendants()) and time.monotonic() < deadline:
        time.sleep(0.01)
    alive = [p.describe() for p in descendants() if not p.zombie]
    assert alive == [], "processes outlived the stopped command"
    in_group = [p.describe() for p in processes().values() if p.pgid == group and not p.zombie]
    assert in_group == [], "processes of the command's group still run"
    left = sorted(p.name for p in tmpdir.iterdir() if p.name.startswith(("harness-live-", "pymp-")))
    assert left == [], "temporary directories left behind"
