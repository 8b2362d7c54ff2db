"""One agent process under test: started, fed, read, ended, and what it left behind.

The rig (``harness.scenarios.user_runtime``) runs ``runtime.command`` once per task through
``run_agent_process``: the prompt on stdin, stdout kept as the answer (bounded), the tail of
stderr, the exit status; cancelled (the wall budget, Ctrl-C) the process is ended with its whole
process group and recorded as hung. Server processes it started are tagged through their
``mcpServers`` environment (``TAG``); ``orphans`` finds the ones still alive after the run,
ends them and names them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

import anyio

from harness.errors import RuntimeFailure
from harness.process_tree import with_env

__all__ = ["TAG", "orphans", "run_agent_process"]

# What an agent process may write before the rest is dropped (the answer is its stdout).
OUTPUT_LIMIT = 1 << 20
STDERR_TAIL_LINES = 20
# Real seconds an agent process gets between SIGTERM and SIGKILL when it must stop.
_TERM_GRACE = 2.0
# Real seconds to read an exited process's pipes that something it left behind holds open.
_PIPE_GRACE = 1.0
# Real seconds the servers an agent started get to exit after it did (stdin EOF) before they
# count as left behind.
_ORPHAN_GRACE = 3.0
TAG = "HARNESS_RUN_TAG"


async def run_agent_process(
    argv: list[str], *, env: dict[str, str], prompt: str, slot: dict[str, Any]
) -> None:
    """Run one agent process: the prompt on stdin, its stdout the answer, written to ``slot``.
    Cancelled (the watchdog, Ctrl-C), it is ended with its whole process group and recorded as
    hung."""
    started = time.perf_counter()
    try:
        process = await anyio.open_process(argv, env=env, start_new_session=True)
    except OSError as exc:
        raise RuntimeFailure(f"runtime.command could not start {argv[0]!r}: {exc}") from exc
    stdout, stderr = bytearray(), bytearray()

    async def drain(stream: Any, into: bytearray) -> None:
        async for chunk in stream:
            if len(into) < OUTPUT_LIMIT:
                into.extend(chunk[: OUTPUT_LIMIT - len(into)])
            elif into is stderr:
                del into[: len(chunk)]  # stderr keeps its tail
                into.extend(chunk)

    async def feed() -> None:
        assert process.stdin is not None
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdin.send(prompt.encode())
            await process.stdin.aclose()

    hung = True
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, process.stdout, stdout)
            tg.start_soon(drain, process.stderr, stderr)
            tg.start_soon(feed)
            await process.wait()
            hung = False
            # A process it left behind may hold the pipes open: read what is there, then stop.
            tg.cancel_scope.deadline = anyio.current_time() + _PIPE_GRACE
    finally:
        with anyio.CancelScope(shield=True):
            await _end_group(process)
            with anyio.move_on_after(_TERM_GRACE):
                await process.aclose()  # its pipes and transport, before the loop closes
        status = process.returncode
        garbled = _not_text(bytes(stdout))
        failed = status != 0 or hung or garbled is not None
        slot.update(
            text=stdout.decode("utf-8", errors="replace").strip(),
            stop="error" if failed else "end_turn",
            error=(_why(status, hung) if status != 0 or hung else garbled) if failed else None,
            exit_status=None if hung else status,
            stderr_tail=stderr.decode("utf-8", errors="replace").splitlines()[-STDERR_TAIL_LINES:],
            hung=hung,
            wall_s=round(time.perf_counter() - started, 3),
        )


def _not_text(output: bytes) -> str | None:
    """Why ``output`` is not an answer (bytes that are not UTF-8 text), or None."""
    try:
        output.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"the agent process wrote {len(output)} bytes on stdout that are not UTF-8 text "
            f"(the first bad byte at offset {exc.start})"
        )
    return None


def _why(status: int | None, hung: bool) -> str:
    if hung:
        return "the agent process did not finish within the wall budget (ended)"
    if status is not None and status < 0:
        return f"the agent process was killed by signal {-status}"
    return f"the agent process exited with status {status}"


async def _end_group(process: Any) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after a grace period."""
    for sig, grace in ((signal.SIGTERM, _TERM_GRACE), (signal.SIGKILL, _TERM_GRACE)):
        if process.returncode is not None and not _group_alive(process.pid):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        with anyio.move_on_after(grace):
            await process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def orphans(tag: str) -> list[int]:
    """Server processes this run's agents started that are still alive after a grace period:
    recorded, then ended."""
    with anyio.move_on_after(_ORPHAN_GRACE):
        while with_env(TAG, tag):  # noqa: ASYNC110 (another process's exit has no event to wait on)
            await anyio.sleep(0.05)
    found = with_env(TAG, tag)
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return found
