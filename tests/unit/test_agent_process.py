"""One agent process under test: what it wrote is an answer only when it is text."""

from __future__ import annotations

import sys
from typing import Any

import anyio

from harness.scenarios.agent_process import run_agent_process


def _run(code: str) -> dict[str, Any]:
    slot: dict[str, Any] = {}

    async def main() -> None:
        await run_agent_process([sys.executable, "-c", code], env={}, prompt="hello", slot=slot)

    anyio.run(main)
    return slot


def test_an_answer_on_stdout_ends_the_turn() -> None:
    slot = _run("import sys; sys.stdout.write('fine: ' + sys.stdin.read())")
    assert (slot["stop"], slot["text"], slot["exit_status"]) == ("end_turn", "fine: hello", 0)
    assert slot["error"] is None


def test_bytes_that_are_not_text_are_an_error_even_with_status_0() -> None:
    slot = _run("import sys; sys.stdout.buffer.write(b'half an answer \\xff\\xfe')")
    assert slot["exit_status"] == 0
    assert slot["stop"] == "error"
    assert slot["error"] == (
        "the agent process wrote 17 bytes on stdout that are not UTF-8 text "
        "(the first bad byte at offset 15)"
    )
    assert slot["text"].startswith("half an answer")  # kept, the bad bytes replaced


def test_a_non_zero_exit_is_an_error_named_by_its_status() -> None:
    slot = _run("import sys; print('partial'); sys.exit(4)")
    assert (slot["stop"], slot["exit_status"]) == ("error", 4)
    assert slot["error"] == "the agent process exited with status 4"
