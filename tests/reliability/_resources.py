"""Counters of what a run may leave behind: child processes (zombies included), open file
descriptors, sockets, threads and pending asyncio tasks.

``snapshot()`` reads them for this process; ``leaks(before, after)`` names everything in
``after`` that ``before`` did not have. Processes are read from ``/proc`` (Linux), so a
process orphaned by its parent is still seen when this process is its subreaper
(``subreaper()``).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Proc",
    "Snapshot",
    "descendants",
    "kill_and_reap",
    "leaks",
    "pending_tasks",
    "processes",
    "snapshot",
    "subreaper",
]

_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True, slots=True)
class Proc:
    """One process as ``/proc/<pid>/stat`` shows it."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    cmdline: str

    @property
    def zombie(self) -> bool:
        return self.state == "Z"

    def describe(self) -> str:
        kind = "zombie" if self.zombie else f"state {self.state}"
        return f"process {self.pid} ({kind}, group {self.pgid}): {self.cmdline[:160]}"


def _read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    rest = stat[stat.rindex(")") + 2 :].split()
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        raw = b""
    cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    if not cmdline:
        cmdline = stat[stat.index("(") + 1 : stat.rindex(")")]
    return Proc(
        pid=pid,
        ppid=int(rest[1]),
        pgid=int(rest[2]),
        sid=int(rest[3]),
        state=rest[0],
        cmdline=cmdline,
    )


def processes() -> dict[int, Proc]:
    """Every process visible in ``/proc``."""
    out: dict[int, Proc] = {}
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                proc = _read_proc(int(entry.name))
                if proc is not None:
                    out[proc.pid] = proc
    return out


def descendants(root: int | None = None, *, table: dict[int, Proc] | None = None) -> list[Proc]:
    """Every process below ``root`` (default: this process), zombies included."""
    root = os.getpid() if root is None else root
    table = processes() if table is None else table
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child.pid)
    return found


def pending_tasks() -> list[asyncio.Task[object]]:
    """asyncio tasks that exist and are not done, on any loop (closed loops included)."""
    gc.collect()
    return [t for t in asyncio.tasks._all_tasks if not t.done()]  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What this process holds at one moment."""

    processes: dict[int, Proc]
    fds: dict[int, str]
    threads: dict[int, str]
    os_threads: int
    tasks: list[str] = field(default_factory=list)

    @property
    def sockets(self) -> dict[int, str]:
        return {fd: target for fd, target in self.fds.items() if target.startswith("socket:")}

    @property
    def zombies(self) -> list[Proc]:
        return [p for p in self.processes.values() if p.zombie]


def _fds() -> dict[int, str]:
    out: dict[int, str] = {}
    with os.scandir("/proc/self/fd") as entries:
        for entry in entries:
            with suppress(OSError):
                out[int(entry.name)] = os.readlink(entry.path)
    # The directory listing itself held one descriptor while it was read.
    return {fd: target for fd, target in out.items() if not target.startswith("/proc/")}


def snapshot() -> Snapshot:
    """This process's descendants, descriptors, threads and pending asyncio tasks now."""
    return Snapshot(
        processes={p.pid: p for p in descendants()},
        fds=_fds(),
        threads={t.ident or 0: t.name for t in threading.enumerate()},
        os_threads=len(os.listdir("/proc/self/task")),
        tasks=[repr(t) for t in pending_tasks()],
    )


def leaks(before: Snapshot, after: Snapshot) -> list[str]:
    """Everything ``after`` holds that ``before`` did not, one line each (empty: no leak).
    A descriptor counts when its number is new or now points elsewhere."""
    found = [p.describe() for pid, p in after.processes.items() if pid not in before.processes]
    found += [
        f"fd {fd} -> {target}"
        for fd, target in sorted(after.fds.items())
        if before.fds.get(fd) != target
    ]
    found += [
        f"thread {name!r}" for ident, name in after.threads.items() if ident not in before.threads
    ]
    if after.os_threads > before.os_threads:
        found.append(f"{after.os_threads - before.os_threads} OS thread(s) more")
    found += [f"task {t}" for t in after.tasks if t not in before.tasks]
    return found


def kill_and_reap(procs: list[Proc]) -> None:
    """SIGKILL ``procs`` (a test's cleanup after it found them) and reap the ones that are
    this process's children."""
    for proc in procs:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, signal.SIGKILL)
    me = os.getpid()
    for proc in procs:
        if proc.ppid == me:
            with suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)


@contextmanager
def subreaper() -> Iterator[None]:
    """Make this process the subreaper of its descendants: a process orphaned by its parent
    (a server whose interposer died, a run whose harness exited) is reparented here instead
    of to init, so ``descendants()`` still finds it. On exit, zombies of such orphans (which
    nothing else would wait for) are reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    try:
        yield
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        me = os.getpid()
        for proc in descendants():
            if proc.ppid == me and proc.zombie:
                with suppress(ChildProcessError):
                    os.waitpid(proc.pid, os.WNOHANG)
