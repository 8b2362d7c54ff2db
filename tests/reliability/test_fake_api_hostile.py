"""Hostile clients of the fake Messages API: huge requests, slow half-open connections,
stalled bodies, clients that hang up mid-body. The server must stay bounded in memory and
descriptors, keep answering good clients, and say what happened in one line per condition,
never a traceback or a flood."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anthropic
import anyio
import httpx2
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from fake_servers.anthropic import Agent, FakeAnthropic, Journal, ModelScript, Turn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MODEL = "claude-sonnet-4-6"
HEAD = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 2023-06-01\r\n"


def script() -> ModelScript:
    return ModelScript(agents={"a": Agent(turns=[Turn(text="ok")], repeat=True)})


async def test_the_journal_spills_big_requests_instead_of_holding_them(tmp_path: Path) -> None:
    budget = 4 * 1024 * 1024
    journal = Journal(capture_content=True, path=tmp_path / "journal.jsonl", memory_budget=budget)
    fake = FakeAnthropic(script(), journal=journal)
    big = "x" * (3 * 1024 * 1024)
    transport = httpx2.ASGITransport(app=fake.app)
    tracemalloc.start()
    try:
        async with httpx2.AsyncClient(transport=transport, base_url="http://fake") as http:
            for index in range(5):
                body = {
                    "model": MODEL,
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": f"{index} {big}"}],
                }
                answer = await http.post(
                    "/v1/messages",
                    headers={
                        "x-api-key": "k",
                        "anthropic-version": "2023-06-01",
                        "content-type": "application/json",
                    },
                    content=json.dumps(body).encode(),
                )
                assert answer.status_code == 200
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Five 3 MB requests (15 MB of bodies, more as parsed JSON) against a 4 MB budget.
    assert journal.held_bytes <= budget
    assert retained < 3 * budget, retained
    records = journal.records
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert [r.request["messages"][0]["content"][:2] for r in records] == [
        "0 ",
        "1 ",
        "2 ",
        "3 ",
        "4 ",
    ]
    journal.close()


@asynccontextmanager
async def served(tmp_path: Path, *options: str) -> AsyncIterator[tuple[str, Process]]:
    """``harness fake-api serve`` with a 1,024-descriptor limit, as on a default Linux box."""
    serve = [sys.executable, "-m", "harness", "fake-api", "serve", *options]
    command = ["sh", "-c", 'ulimit -n 1024 && exec "$@"', "sh", *serve]
    async with await anyio.open_process(command, stderr=subprocess.PIPE, cwd=tmp_path) as process:
        assert process.stdout is not None
        with anyio.fail_after(30):
            line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 1000)
        yield line.decode().removeprefix("listening on "), process


async def stop(process: Process) -> list[str]:
    process.terminate()
    with anyio.fail_after(30):
        assert await process.wait() == 0
    assert process.stderr is not None
    err = b""
    with suppress(anyio.EndOfStream, anyio.ClosedResourceError):
        while True:
            err += await process.stderr.receive()
    return err.decode().splitlines()


async def good_request(url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as client:
        with anyio.fail_after(30):
            reply = await client.messages.create(
                model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
    assert reply.content[0].type == "text"


async def test_1100_half_open_connections_neither_exhaust_fds_nor_flood_the_log(
    tmp_path: Path,
) -> None:
    async with served(tmp_path, "--header-timeout", "2") as (url, process):
        port = int(url.rsplit(":", 1)[1])
        writers = []
        try:
            for _ in range(1100):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"POST /v1/messages HTTP/1.1\r\n")
                writers.append((reader, writer))
            await asyncio.gather(*(w.drain() for _, w in writers))
            # A good client is answered while the 1,100 are still open.
            await good_request(url)
            # The first half-open connection is closed by the server (header timeout or room
            # made for newer ones): its read ends.
            with anyio.fail_after(60):
                assert await writers[0][0].read() == b""
        finally:
            for _, writer in writers:
                writer.transport.abort()
        await good_request(url)
        lines = await stop(process)
    assert not any("Too many open files" in line for line in lines), lines[:5]
    assert not any("Traceback" in line for line in lines), lines[:20]
    assert len(lines) <= 6, lines


async def test_a_stalled_body_is_closed_after_the_body_timeout(tmp_path: Path) -> None:
    async with served(tmp_path, "--body-timeout", "1") as (url, process):
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(HEAD + b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n{")
            await writer.drain()
            with anyio.fail_after(30):
                assert await reader.read() == b""
        finally:
            writer.transport.abort()
        await good_request(url)
        lines = await stop(process)
    assert [line for line in lines if "stalls" in line] != []
    assert not any("Traceback" in line for line in lines), lines


async def test_a_client_hanging_up_mid_body_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    async with served(tmp_path, "--journal", str(journal)) as (url, process):
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEAD + b"content-type: application/json\r\ncontent-length: 100000\r\n\r\n")
        writer.write(b'{"model": "' + b"m" * 5000)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        del reader
        await good_request(url)
        lines = await stop(process)
    assert not any("Traceback" in line for line in lines), lines
    assert len([line for line in lines if "client disconnected" in line]) == 1, lines
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert records[0]["status"] == 0
    assert records[0]["error"]["type"] == "client_disconnect"
    assert records[-1]["status"] == 200
