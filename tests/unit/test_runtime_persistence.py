"""The thread store: rows as stored and reloaded, the history window's cut rules, the resume
repair and the compaction lock."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from harness.runtime.events import RuntimeEvents
from harness.runtime.persistence import INTERRUPTED_RESULT, ThreadStore


class _Clock:
    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


def _store(**knobs: Any) -> ThreadStore:
    return ThreadStore(events=RuntimeEvents(_Clock()), **knobs)


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def _call(call_id: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call_id, "name": "t", "input": {}}],
    }


def _results(*ids: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": i, "content": [{"type": "text", "text": i}]}
            for i in ids
        ],
    }


def _answer(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


# [user, call a, result a, call b, result b, answer]: six rows however results are stored.
_HISTORY = [_user("go"), _call("a"), _results("a"), _call("b"), _results("b"), _answer("done")]


async def _filled(**knobs: Any) -> ThreadStore:
    store = _store(**knobs)
    await store.append("t", _HISTORY, agent="main")
    return store


@pytest.mark.parametrize("stored", ["blocks", "text"])
async def test_a_reload_gives_back_the_messages_as_sent(stored: str) -> None:
    store = await _filled(stored_results=stored)
    roles = [r["role"] for r in store.rows("t")]
    tool_role = "tool" if stored == "text" else "user"
    assert roles == ["user", "assistant", tool_role, "assistant", tool_role, "assistant"]
    assert store.load("t", agent="main") == _HISTORY


async def test_text_rows_of_parallel_results_become_one_message_again() -> None:
    store = _store(stored_results="text")
    history = [
        _user("go"),
        {"role": "assistant", "content": [*_call("a")["content"], *_call("b")["content"]]},
        _results("a", "b"),
    ]
    await store.append("t", history, agent="main")
    assert [r["role"] for r in store.rows("t")] == ["user", "assistant", "tool", "tool"]
    assert store.load("t", agent="main") == history


def _first_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [str(b.get("type")) for b in messages[0]["content"]]


@pytest.mark.parametrize(
    ("cut", "stored", "window", "starts_with"),
    [
        # plain: the last k rows as they are.
        ("plain", "blocks", 2, "tool_result"),
        ("plain", "text", 3, "tool_use"),
        # by_content sees result blocks but not a text tool row.
        ("by_content", "blocks", 2, "text"),
        ("by_content", "text", 2, "tool_result"),
        ("by_content", "text", 4, "tool_result"),
        # pairs: back to a user turn that is no tool result, whatever the storage.
        ("pairs", "text", 2, "text"),
        ("pairs", "blocks", 4, "text"),
    ],
)
async def test_the_window_cut_rules(cut: str, stored: str, window: int, starts_with: str) -> None:
    store = await _filled(stored_results=stored, window=window, window_cut=cut)
    assert _first_ids(store.load("t", agent="main"))[0] == starts_with


async def test_a_pending_call_is_answered_in_the_thread_on_load() -> None:
    store = _store(resume_repair="answer_pending")
    await store.append("t", [_user("go"), _call("a")], agent="main")
    loaded = store.load("t", agent="resume")
    assert loaded[-1]["content"][0]["tool_use_id"] == "a"
    assert loaded[-1]["content"][0]["content"][0]["text"] == INTERRUPTED_RESULT
    # Written back: the next load finds nothing to repair.
    assert len(store.rows("t")) == 3
    assert store.load("t", agent="again") == loaded


async def test_without_repair_a_pending_call_is_loaded_as_stored() -> None:
    store = _store(resume_repair="none")
    await store.append("t", [_user("go"), _call("a")], agent="main")
    assert store.load("t", agent="resume") == [_user("go"), _call("a")]


async def test_a_partly_answered_call_set_gets_the_missing_results_only() -> None:
    store = _store(resume_repair="answer_pending")
    both = {"role": "assistant", "content": [*_call("a")["content"], *_call("b")["content"]]}
    await store.append("t", [_user("go"), both, _results("b"), _answer("limit")], agent="main")
    loaded = store.load("t", agent="resume")
    repaired = [b["tool_use_id"] for b in loaded[3]["content"]]
    assert repaired == ["a"]
    assert loaded[4] == _answer("limit")


@pytest.mark.parametrize(("lock", "lost"), [("held", False), ("released", True)])
async def test_a_write_during_compaction_survives_only_under_a_held_lock(
    lock: str, lost: bool
) -> None:
    store = await _filled(compaction_lock=lock)
    summary = _user("<compaction-summary>\nearlier")
    started = anyio.Event()

    async def compact() -> None:
        async with store.compaction("t", agent="main") as snapshot:
            started.set()
            await anyio.sleep(0.01)  # the summary request
            await snapshot.replace(summary, [_answer("done")])

    async with anyio.create_task_group() as tg:
        tg.start_soon(compact)
        await started.wait()
        await store.append("t", [_user("from another run")], agent="other")
    texts = [b.get("text") for r in store.rows("t") for b in r["content"] if isinstance(b, dict)]
    assert ("from another run" not in texts) is lost
    assert texts[0] == summary["content"][0]["text"]


async def test_an_appended_compaction_entry_is_read_back_as_summary_then_kept_log() -> None:
    store = await _filled(thread_compaction="append_entry", keep_entries=2)
    summary = _user("<compaction-summary>\nearlier")
    async with store.compaction("t", agent="main") as snapshot:
        await snapshot.replace(summary, [])
    rows = store.rows("t")
    # Nothing is removed: the entry is appended and names the first entry it keeps (the
    # call b, since the last two rows start at b's result).
    assert len(rows) == 7
    assert rows[-1]["compaction"] is True
    assert rows[-1]["first_kept"] == rows[3]["id"]
    assert store.load("t", agent="main") == [summary, _call("b"), _results("b"), _answer("done")]
