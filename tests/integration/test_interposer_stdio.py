"""``harness interpose`` in front of real stdio processes: our fake MCP server through the real
``mcp`` client, and plain commands (``cat``, ``sleep``) for byte-exact relaying, exit status,
signals and cleanup."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.errors import FaultConfigError
from harness.faults.client import ToxiproxyClient
from harness.telemetry.otlp_json import read_trace_file

pytestmark = pytest.mark.integration

HARNESS = [sys.executable, "-m", "harness", "interpose"]
ARGS = {"host": "db1", "command": "uptime"}

SSH_SCRIPT = """
tools:
  mem_ssh:
    calls:
      5: {latency: 30}
"""

PLAN = """
faults:
  - {type: delay, seconds: 0.3, match: {method: tools/call, direction: downstream, nth: 1}}
  - {type: drop, match: {method: tools/call, direction: upstream, nth: 2}}
  - {type: late_response, match: {method: tools/call, nth: 3}}
  - {type: kill, signal: SIGKILL, after: 0.2, match: {method: tools/call, nth: 6}}
  - {type: drop, target: some-other-server, match: {method: tools/call}}
"""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def call(client: Client, timeout: float = 10.0) -> str | int:
    try:
        result = await client.call_tool("mem_ssh", ARGS, read_timeout_seconds=timeout)
    except MCPError as exc:
        return exc.error.code
    return "tool_error" if result.is_error else "ok"


async def test_plan_faults_and_control_api_in_front_of_a_fake_mcp_server(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    (tmp_path / "ssh.yaml").write_text(SSH_SCRIPT)
    (tmp_path / "plan.yaml").write_text(PLAN)
    faults, server_events = tmp_path / "faults.jsonl", tmp_path / "server.jsonl"
    server = [sys.executable, "-m", "fake_servers.mcp.ssh", "--script", str(tmp_path / "ssh.yaml")]
    server += ["--events", str(server_events)]
    params = StdioServerParameters(
        command=HARNESS[0],
        args=[
            *HARNESS[1:],
            *("--plan", str(tmp_path / "plan.yaml"), "--events", str(faults)),
            *("--spans", str(tmp_path / "spans.jsonl")),
            *("--api", "http://127.0.0.1:0", "--seed", "4", "--"),
            *server,
        ],
    )
    outcomes: list[Any] = []
    with (tmp_path / "stderr.log").open("w+") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            # The interposer reports its control URL before it starts the server.
            first_line = (tmp_path / "stderr.log").read_text().splitlines()[0]
            url = first_line.removeprefix("control listening on ")
            assert url.startswith("http://127.0.0.1:")
            await client.list_tools()
            start = anyio.current_time()
            outcomes.append(await call(client))
            # Lower bound only: the delay can never make a response early.
            assert anyio.current_time() - start >= 0.3
            outcomes.append(await call(client, timeout=0.5))  # dropped request
            outcomes.append(await call(client, timeout=0.5))  # answered after the cancel
            outcomes.append(await call(client))  # the session survived both

            # Live changes through the Toxiproxy API (toxiproxy-python underneath).
            api = ToxiproxyClient(url)
            await api.add_toxic("stdio", type="latency", attributes={"latency": 400})
            assert list(await api.toxics("stdio")) == ["latency_downstream"]
            start = anyio.current_time()
            outcomes.append(await call(client))
            assert anyio.current_time() - start >= 0.4
            await api.remove_toxic("stdio", "latency_downstream")
            async with httpx2.AsyncClient(base_url=url) as http:
                listed = (await http.get("/proxies/stdio/faults")).json()
                assert [f["name"] for f in listed] == [
                    "delay_0",
                    "drop_1",
                    "late_response_2",
                    "kill_3",
                ]
                bad = await http.post("/proxies/stdio/faults", json={"type": "drop", "name": "x"})
                assert bad.status_code == 400
                assert bad.json()["error"] == "field 'match': Field required"
                dup = await http.post(
                    "/proxies/stdio/faults",
                    json={"type": "drop", "name": "drop_1", "match": {}},
                )
                assert dup.status_code == 409
            outcomes.append(await call(client))  # the 6th call: the server is killed under it
            outcomes.append(await call(client))
    assert outcomes == ["ok", -32001, -32001, "ok", "ok", -32000, -32000]

    records = read_jsonl(faults)
    applied = [(r["type"], r["kind"]) for r in records]
    assert applied == [
        ("delay", "applied"),
        ("drop", "applied"),
        ("late_response", "applied"),
        ("late_response", "released"),
        ("latency", "added"),
        ("latency", "applied"),
        ("latency", "removed"),
        ("kill", "applied"),
    ]
    assert all(r["target"] == "stdio" for r in records)
    assert records[0]["trigger"] == "method=tools/call,direction=downstream,nth=1"
    assert isinstance(records[0]["draw"], float)
    seen = read_jsonl(server_events)
    calls = [e for e in seen if e.get("tool") == "mem_ssh"]
    # 6 calls reached the server (one was dropped); the late one finished, never cancelled;
    # the 6th was in flight when the server died.
    assert [e["call_index"] for e in calls if e["kind"] == "request"] == [1, 2, 3, 4, 5]
    assert len([e for e in calls if e["kind"] == "finished"]) == 4
    assert not [e for e in calls if e["kind"] == "cancelled"]

    # Each fault span of the interposer joins the client's trace under the request it hit.
    fault_spans = [
        s for s in read_trace_file(tmp_path / "spans.jsonl") if s["name"] == "harness.fault"
    ]
    assert len(fault_spans) == len(records)
    assert fault_spans[0]["service"] == "harness-interposer"
    client_calls = [
        s for s in spans.get_finished_spans() if s.name == "MCP send tools/call mem_ssh"
    ]
    delay_span = fault_spans[0]
    first_call = client_calls[0].context
    assert delay_span["trace_id"] == format(first_call.trace_id, "032x")
    assert delay_span["parent_id"] == format(first_call.span_id, "016x")
    assert delay_span["attributes"]["harness.fault.type"] == "delay"


def _frames() -> tuple[bytes, bytes]:
    """500 frames of mixed kinds and sizes, some not JSON, then one delayed; and what must come
    back through ``cat`` with ``x/drop`` dropped upstream and ``x/dup`` duplicated once."""
    sent, expected = [], []
    for i in range(500):
        if i % 97 == 0:
            line = b"not json at all %d" % i
        elif i % 7 == 0:
            line = json.dumps(
                {"jsonrpc": "2.0", "id": i, "result": {"pad": "r" * (i * 37)}}
            ).encode()
        else:
            method = "x/drop" if i % 50 == 3 else "x/dup" if i % 50 == 4 else "x/keep"
            line = json.dumps(
                {"jsonrpc": "2.0", "id": i, "method": method, "params": {"i": i}}
            ).encode()
        sent.append(line + b"\n")
        if b"x/drop" not in line:
            expected.append(line + b"\n")
        if b"x/dup" in line:
            expected.append(line + b"\n")
    # Delayed, and the client closes its end right after it: it must still get through.
    late = b'{"jsonrpc":"2.0","method":"x/late"}\n'
    return b"".join([*sent, late]), b"".join([*expected, late])


DUMB_PLAN = """
- {type: drop, count: all, match: {method: x/drop, direction: upstream}}
- {type: duplicate, count: all, match: {method: x/dup, direction: upstream}}
- {type: delay, seconds: 0.3, match: {method: x/late, direction: upstream}}
- type: toxic
  toxic: {type: slicer, stream: upstream, attributes: {average_size: 700, size_variation: 600}}
- {type: toxic, toxic: {type: latency, stream: downstream, attributes: {latency: 5, jitter: 5}}}
"""


async def test_untouched_frames_keep_their_bytes_and_order_and_the_exit_status(
    tmp_path: Path,
) -> None:
    (tmp_path / "plan.yaml").write_text(DUMB_PLAN)
    sent, expected = _frames()
    command = [*HARNESS, "--plan", str(tmp_path / "plan.yaml"), "--", "sh", "-c", "cat; exit 7"]
    async with await anyio.open_process(command) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        received = bytearray()

        async def read_all() -> None:
            assert process.stdout is not None
            async for chunk in process.stdout:
                received.extend(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_all)
            await process.stdin.send(sent)
            await process.stdin.aclose()
        assert await process.wait() == 7
    assert bytes(received) == expected


async def test_kill_at_a_time_and_sigterm_give_the_servers_status_and_leave_no_process(
    tmp_path: Path,
) -> None:
    (tmp_path / "plan.yaml").write_text("- {type: kill, signal: SIGKILL, at: 0.2}\n")
    command = [*HARNESS, "--plan", str(tmp_path / "plan.yaml"), "--", "sleep", "30"]
    async with await anyio.open_process(command) as process:
        assert await process.wait() == 128 + signal.SIGKILL

    # The server says "ready" (relayed like any line) and then becomes ``sleep`` (same pid).
    server = ["sh", "-c", "echo ready; exec sleep 30"]
    async with await anyio.open_process([*HARNESS, "--", *server]) as process:
        assert process.stdout is not None
        assert await process.stdout.receive() == b"ready\n"
        (child,) = children(process.pid)
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 128 + signal.SIGTERM
        assert not await anyio.Path(f"/proc/{child}").exists()


def state(pid: int) -> bytes | None:
    """The process state letter of ``pid`` (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()[0]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    return state(pid) not in (None, b"Z")


@pytest.mark.parametrize(
    ("fault", "status"),
    [("{type: kill, signal: SIGKILL, at: 0.3}", 128 + signal.SIGKILL), ("", 128 + signal.SIGTERM)],
    ids=["kill-fault", "cleanup"],
)
async def test_a_server_under_a_wrapper_is_signalled_as_a_whole(
    tmp_path: Path, fault: str, status: int
) -> None:
    # A wrapper shell whose worker (a child, its stdout elsewhere) would outlive a signal sent
    # to the wrapper's pid alone; the shell waits on it, so only its own kill or the
    # interposer's cleanup (its own SIGTERM passed on to the tree) ends the server.
    (tmp_path / "plan.yaml").write_text(f"[{fault}]\n")
    server = ["sh", "-c", "sleep 300 >/dev/null & echo $!; wait; exit 0"]
    command = [*HARNESS, "--plan", str(tmp_path / "plan.yaml"), "--", *server]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        worker = int((await process.stdout.receive()).decode())
        assert alive(worker)
        if not fault:
            process.send_signal(signal.SIGTERM)
        assert await process.wait() == status
    assert not alive(worker)


async def test_a_freeze_stops_the_servers_children_too(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text("- {type: freeze, seconds: 60, match: {method: a}}\n")
    frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "a"}).encode() + b"\n"
    server = ["sh", "-c", "sleep 300 >/dev/null & echo $!; cat; exit 0"]
    command = [*HARNESS, "--plan", str(tmp_path / "plan.yaml"), "--", *server]
    async with await anyio.open_process(command) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        worker = int((await process.stdout.receive()).decode())
        await process.stdin.send(frame)
        with anyio.fail_after(30):
            while state(worker) != b"T":  # noqa: ASYNC110 (another process's state: no event)
                await anyio.sleep(0.02)
        process.send_signal(signal.SIGTERM)  # a frozen server is continued to be stopped
        assert await process.wait() == 128 + signal.SIGTERM
    assert not alive(worker)


async def test_bad_input_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text("- type: delay\n  match: {}\n  seconds: soon\n")
    for args, status, message in [
        (
            ["--plan", str(tmp_path / "plan.yaml"), "--", "cat"],
            2,
            "plan.yaml:3, field 'faults.0.seconds'",
        ),
        (["--", "no-such-server-command"], 1, "cannot start the server command"),
        (["--api", "http://10.0.0.1:0", "--", "cat"], 2, "loopback only"),
        (["--control", "127.0.0.1", "--", "cat"], 2, "field '--control'"),
    ]:
        result = await anyio.run_process([*HARNESS, *args], check=False)
        assert result.returncode == status
        error = result.stderr.decode()
        assert error.startswith("error: ")
        assert message in error
        assert "Traceback" not in error
        assert result.stdout == b""


def test_no_process_of_ours_is_left() -> None:
    assert children(os.getpid()) == []


async def wait_for_record(path: Path, **match: Any) -> dict[str, Any]:
    """The interposer process has no other channel to signal on: poll the file it flushes."""
    while True:
        for record in read_jsonl(path):
            if all(record.get(k) == v for k, v in match.items()):
                return record
        await anyio.sleep(0.02)


async def test_registered_on_a_running_proxy_api_it_mirrors_that_proxys_toxics(
    tmp_path: Path,
) -> None:
    from harness.faults.proxy import ToxiproxyServer

    events = tmp_path / "ev.jsonl"
    async with ToxiproxyServer() as url:
        api = ToxiproxyClient(url)
        command = [*HARNESS, "--control", url, "--name", "pipe-1", "--events", str(events)]
        async with await anyio.open_process([*command, "--", "cat"]) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            # An echoed frame means the interposer runs, so it has registered.
            await process.stdin.send(b'{"jsonrpc":"2.0","method":"ping"}\n')
            assert await process.stdout.receive() == b'{"jsonrpc":"2.0","method":"ping"}\n'
            assert await api.toxics("pipe-1") == {}
            await api.add_toxic(
                "pipe-1", type="latency", stream="upstream", attributes={"latency": 300}
            )
            with anyio.fail_after(10):
                await wait_for_record(events, kind="added", name="latency_upstream")
            start = anyio.current_time()
            await process.stdin.send(b'{"jsonrpc":"2.0","id":1,"method":"x"}\n')
            assert await process.stdout.receive() == b'{"jsonrpc":"2.0","id":1,"method":"x"}\n'
            assert anyio.current_time() - start >= 0.3
            await api.remove_toxic("pipe-1", "latency_upstream")
            with anyio.fail_after(10):
                await wait_for_record(events, kind="removed", name="latency_upstream")
            await process.stdin.aclose()
            assert await process.wait() == 0
        # Leaving deleted the proxy it had registered.
        with pytest.raises(FaultConfigError, match="proxy not found"):
            await api.toxics("pipe-1")


SIGNAL_PLAN = """
- {type: freeze, seconds: 0.4, match: {method: a/freeze}}
- {type: corrupt, match: {method: a/corrupt, direction: upstream}}
- {type: garbage, size: 40, match: {method: a/garbage, direction: upstream}}
- {type: unknown_id, match: {method: a/unknown, direction: upstream}}
"""


async def test_freeze_corrupt_garbage_and_unknown_id_on_the_wire(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(SIGNAL_PLAN)
    frames = {
        name: json.dumps({"jsonrpc": "2.0", "id": index, "method": name}).encode() + b"\n"
        for index, name in enumerate(["a/freeze", "a/corrupt", "a/garbage", "a/unknown"], 1)
    }
    command = [*HARNESS, "--plan", str(tmp_path / "plan.yaml"), "--", "cat"]
    async with await anyio.open_process(command) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        start = anyio.current_time()
        await process.stdin.send(frames["a/freeze"])
        assert await process.stdout.receive() == frames["a/freeze"]
        # cat was stopped with the frame in its stdin: nothing came back before the freeze ended.
        assert anyio.current_time() - start >= 0.4
        for name in ("a/corrupt", "a/garbage", "a/unknown"):
            await process.stdin.send(frames[name])
        await process.stdin.aclose()
        output = b""
        async for chunk in process.stdout:
            output += chunk
        assert await process.wait() == 0
    lines = output.splitlines(keepends=True)
    assert len(lines) == 5
    corrupted = [line for line in lines if frames["a/corrupt"].startswith(line.rstrip(b"\n"))]
    assert len(corrupted) == 1
    assert corrupted[0] != frames["a/corrupt"]
    garbage = [line for line in lines if line.startswith(b"\xff")]
    assert len(garbage) == 1
    assert len(garbage[0]) == 41
    injected = [json.loads(line) for line in lines if line.startswith(b'{"jsonrpc":"2.0","id":')]
    assert [message["result"] for message in injected] == [{}]
    assert injected[0]["id"] >= 1_000_000_000
    assert frames["a/garbage"] in lines
    assert frames["a/unknown"] in lines
