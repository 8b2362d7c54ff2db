"""Signals to a server's whole process tree, not one pid.

A server command is often a wrapper (``sh -c``, ``npx``, ``uv run``) or forks workers: a kill
or freeze sent to its pid alone leaves the real server running (still answering, or holding
the output pipe open so the relay never sees the end). The tree here is the process and every
descendant, read from ``/proc`` (where there is no ``/proc``, the process alone).

The tree is stopped first (``SIGSTOP``, walked again until no new member appears), so nothing
forks past the snapshot, and continued after the signal (a frozen server must also see a
SIGTERM). A process group would be simpler to signal but cannot be used here: the relay shares
its group with the server, so that the MCP client's own group kill reaches both.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

__all__ = ["members", "signal_tree", "with_env"]

_PROC = Path("/proc")


def members(pid: int) -> list[int]:
    """``pid`` and its descendants, parents first."""
    if not (_PROC / "self").is_dir():
        return [pid]
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found = [pid]
    for member in found:  # grows while it is read: breadth first
        found.extend(children.get(member, ()))
    return found


def signal_tree(pid: int, sig: int) -> None:
    """Send ``sig`` to ``pid`` and all its descendants (stopped first, continued after,
    except for ``SIGSTOP`` itself; ``SIGCONT`` continues them as they are)."""
    if sig == signal.SIGCONT:
        _send(members(pid), sig)
        return
    tree: list[int] = []
    while new := [p for p in members(pid) if p not in tree]:
        _send(new, signal.SIGSTOP)
        tree.extend(new)
    if sig == signal.SIGSTOP:
        return
    _send(tree, sig)
    _send(tree, signal.SIGCONT)


def with_env(name: str, value: str) -> list[int]:
    """Processes other than this one whose environment holds ``name=value`` (a tag the harness
    gave the processes it started, which their children inherit), by pid."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)


def _send(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
