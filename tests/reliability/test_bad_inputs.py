"""Bad input of every kind gets a clear error and the right exit code or status; no input
gives a traceback, a 500 or a dead server.

- malformed scenario files (``corpus/scenarios``): rejected at load, naming file, field and
  line, by the loader, by ``harness run`` in process and, for a handful, by ``python -m harness
  run`` in a subprocess (exit 2, no traceback); scenarios that load but cannot run
  (``corpus/run_scenarios``) stop with exit 2 and a message;
- malformed requests to the fake Messages API over real loopback HTTP: a 4xx with the real
  API's error envelope, and the server answers a valid request after each;
- garbage lines on a fake MCP server's stdin, garbage bodies on its streamable HTTP endpoint;
- garbage and abrupt closes on the TCP proxy's listen port and its HTTP API, invalid
  Toxiproxy API calls, invalid calls to the stdio interposer's control API.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from fake_servers.anthropic import FakeAnthropic, ModelScript
from fake_servers.anthropic._errors import ERROR_TYPES
from harness.errors import ConfigError
from harness.scenarios.model import load_scenario
from tests.integration.test_proxy_helpers import (
    close,
    connect,
    echo_server,
    proxy_server,
    roundtrip,
)
from tests.reliability._cli import invoke
from tests.reliability._inputs import (
    API_BAD_REQUESTS,
    API_RAW_GARBAGE,
    CORPUS_DIR,
    INTERPOSER_BAD_CALLS,
    MCP_GARBAGE,
    PROXY_API_RAW_GARBAGE,
    TOXIPROXY_BAD_CALLS,
    VALID_BODY,
    VALID_HEADERS,
    ApiRequest,
    CorpusCase,
    abort_with_reset,
    corpus_cases,
    corpus_params,
)

pytestmark = pytest.mark.integration

RUN_CORPUS_DIR = CORPUS_DIR.parent / "run_scenarios"


# -- scenario files -----------------------------------------------------------------------------


def _check_located(case: CorpusCase, error: ConfigError) -> None:
    text = str(error)
    assert error.path == str(case.path), text
    assert text.startswith(str(case.path)), text
    assert case.expect in text, text
    if case.field is not None:
        assert f"field '{case.field}'" in text, text
    if error.line is not None:
        assert f"{case.path}:{error.line}" in text
        lines = case.path.read_bytes().decode("utf-8", "replace").splitlines()
        assert 1 <= error.line <= len(lines), text
        if case.field is not None:
            # The line shows the field's key (or the key of the entry that holds it).
            keys = [p for p in case.field.split(".") if not p.isdigit()]
            near = " ".join(lines[max(0, error.line - 2) : error.line])
            assert keys, case.field
            # A missing field is not written: the line is then the entry that lacks it.
            assert any(key in near for key in keys[-2:]), (text, near)


def test_the_corpus_is_big_enough() -> None:
    assert len(corpus_cases()) >= 40
    assert len(list(RUN_CORPUS_DIR.glob("*.yaml"))) >= 5


@pytest.mark.parametrize("case", corpus_params())
def test_a_malformed_scenario_file_is_rejected_with_file_field_and_line(
    case: CorpusCase, tmp_path: Path
) -> None:
    try:
        load_scenario(case.path)
    except ConfigError as error:
        _check_located(case, error)
    else:
        pytest.fail(f"{case.path.name} loaded; expected an error saying {case.expect!r}")
    code, output = invoke(["run", str(case.path), "--out", str(tmp_path), "--no-failure-db"])
    assert code == 2, output
    assert output.startswith(f"error: {case.path}"), output
    assert case.expect in output
    assert not list(tmp_path.iterdir()), "nothing is written for a file that does not load"


def _run_cases() -> list[Any]:
    params = []
    for path in sorted(RUN_CORPUS_DIR.glob("*.yaml")):
        header = dict(
            line[2:].split(": ", 1)
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith(("# expect: ", "# field: ", "# xfail: "))
        )
        marks = (
            [pytest.mark.xfail(strict=True, reason=header["xfail"])] if "xfail" in header else []
        )
        params.append(pytest.param(path, header, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize(("path", "header"), _run_cases())
def test_a_scenario_that_loads_but_cannot_run_stops_with_exit_2(
    path: Path, header: dict[str, str], tmp_path: Path
) -> None:
    load_scenario(path)
    code, output = invoke(
        ["run", str(path), "--policy", "fixed", "--out", str(tmp_path), "--no-failure-db"]
    )
    assert code == 2, output
    assert "error: " in output
    assert header["expect"] in output, output
    if "field" in header:
        assert f"field '{header['field']}'" in output, output


def test_a_large_output_budget_runs_without_streaming(tmp_path: Path) -> None:
    # The SDK refuses a non-streaming request whose max_tokens could outlast its default
    # timeout unless the client names a timeout; the runtime always does.
    code, output = invoke(
        [
            "run",
            str(CORPUS_DIR.parent / "max_tokens_64000.yaml"),
            "--policy",
            "fixed",
            "--json",
            "--out",
            str(tmp_path),
            "--no-failure-db",
        ]
    )
    assert code == 0, output
    result = json.loads(output)
    assert result["outcome"] == "held", result
    run_dir = Path(result["run_dir"])
    journal = [
        json.loads(line)
        for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(journal) == 2
    assert all(entry["status"] == 200 for entry in journal), journal
    assert [entry["request"]["max_tokens"] for entry in journal] == [64000, 64000]


# Exercised end to end in a fresh interpreter (each costs ~2 s of imports): YAML syntax (with a
# line), bytes that are not UTF-8, a document nested too deeply, a wrong value (field and line).
_SUBPROCESS_FILES = [
    "yaml_unclosed_flow",
    "binary_garbage",
    "deep_flow_nesting",
    "server_timeout_negative",
]


def test_harness_run_in_a_subprocess_exits_2_naming_file_field_and_line(tmp_path: Path) -> None:
    cases = {c.path.stem: c for c in corpus_cases()}
    env = {**os.environ, "NO_COLOR": "1"}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "harness", "run", str(cases[name].path), "--out", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        for name in _SUBPROCESS_FILES
    }
    for name, proc in procs.items():
        case = cases[name]
        out, err = proc.communicate(timeout=60)
        stdout, stderr = out.decode(), err.decode()
        assert proc.returncode == 2, (name, stdout, stderr)
        assert "Traceback" not in stdout + stderr, (name, stderr)
        assert stdout == "", (name, stdout)
        assert stderr.startswith(f"error: {case.path}"), (name, stderr)
        assert case.expect in stderr, (name, stderr)
        if case.field is not None:
            assert f"field '{case.field}'" in stderr, (name, stderr)
        with pytest.raises(ConfigError) as raised:
            load_scenario(case.path)
        if raised.value.line is not None:
            assert f"{case.path}:{raised.value.line}" in stderr, (name, stderr)
    assert not list(tmp_path.iterdir())


# -- the fake Messages API over loopback HTTP ---------------------------------------------------


def _http(request: ApiRequest) -> bytes:
    headers = {k: v for k, v in VALID_HEADERS.items() if k not in request.without}
    headers.update(dict(request.headers))
    headers.setdefault("content-length", str(len(request.body)))
    head = f"{request.method} {request.path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + request.body


async def _exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` on a fresh connection; everything the server sends until it closes.

    ``half_close``: then end the sending side, as a client that dies after a partial request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if half_close:
            writer.write_eof()
        return await reader.read()
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers, body


async def _valid_answer(port: int) -> None:
    request = ApiRequest("valid", 200, json.dumps(VALID_BODY).encode())
    status, _, body = _parse(await _exchange(port, _http(request)))
    assert status == 200, body
    assert json.loads(body)["type"] == "message"


@asynccontextmanager
async def _fake_api() -> AsyncIterator[tuple[FakeAnthropic, int]]:
    fake = FakeAnthropic(ModelScript.default())
    async with fake.serve() as url:
        yield fake, int(url.rsplit(":", 1)[1])


async def test_malformed_api_requests_get_the_real_error_envelope() -> None:
    async with _fake_api() as (_fake, port):
        for request in API_BAD_REQUESTS:
            status, headers, body = _parse(await _exchange(port, _http(request)))
            assert status == request.status, (request.name, status, body[:300])
            payload = json.loads(body)
            assert payload["type"] == "error", request.name
            error = payload["error"]
            assert error["type"] == ERROR_TYPES.get(status, "invalid_request_error"), request.name
            assert isinstance(error["message"], str), request.name
            assert error["message"], request.name
            assert payload["request_id"].startswith("req_"), request.name
            assert headers["request-id"] == payload["request_id"], request.name
            assert "Traceback" not in error["message"], request.name
            await _valid_answer(port)


async def test_a_body_streamed_past_32_mb_is_refused_and_the_server_lives() -> None:
    chunk = b" " * (1024 * 1024)
    async with _fake_api() as (fake, port):
        request = ApiRequest("chunked 33 MB", 413, headers=(("transfer-encoding", "chunked"),))
        head = _http(request).replace(b"content-length: 0\r\n", b"")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head)
            for _ in range(33):
                writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            answer = await reader.read()
        except ConnectionResetError:
            # The server answered and closed while bytes were still unread: the kernel resets.
            answer = b""
        finally:
            writer.transport.abort()
        if answer:
            assert _parse(answer)[0] == 413
        last = fake.journal.records[-1]
        assert (last.status, (last.error or {}).get("type")) == (413, "request_too_large")
        await _valid_answer(port)


async def test_bytes_that_are_not_http_never_get_a_5xx_and_never_stop_the_api() -> None:
    async with _fake_api() as (_fake, port):
        for garbage in API_RAW_GARBAGE:
            with suppress(ConnectionResetError):
                answer = await _exchange(port, garbage, half_close=True)
                assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
            await _valid_answer(port)


# -- a fake MCP server: stdio pipe and streamable HTTP ------------------------------------------


class _JsonRpcPipe:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self.proc = proc
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self.noise: list[dict[str, Any]] = []

    async def send(self, line: bytes) -> None:
        self.stdin.write(line + b"\n")
        await self.stdin.drain()

    async def request(self, id_: str, method: str, params: dict[str, Any] | None = None) -> Any:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(json.dumps(message).encode())
        while True:
            line = await self.stdout.readline()
            assert line, f"the server closed stdout (exit {self.proc.returncode}) before {id_}"
            answer = json.loads(line)
            assert answer["jsonrpc"] == "2.0", answer
            if answer.get("id") == id_:
                assert "result" in answer, answer
                return answer["result"]
            # An answer to a garbage line: an error response or a result for a request it held.
            if "error" in answer:
                assert isinstance(answer["error"]["code"], int), answer
            self.noise.append(answer)


async def test_garbage_on_a_fake_mcp_servers_stdin_is_ignored_or_refused() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fake_servers.mcp.ssh",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=1024 * 1024,
    )
    assert proc.stderr is not None
    stderr = asyncio.ensure_future(proc.stderr.read())
    pipe = _JsonRpcPipe(proc)
    try:
        with anyio.fail_after(45):
            init = await pipe.request(
                "init",
                "initialize",
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "reliability", "version": "1"},
                },
            )
            assert init["serverInfo"]["name"]
            await pipe.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
            for index, garbage in enumerate(MCP_GARBAGE):
                await pipe.send(garbage)
                assert await pipe.request(f"probe-{index}", "ping") == {}, garbage[:80]
            tools = await pipe.request("list", "tools/list")
            assert [t["name"] for t in tools["tools"]] == ["mem_ssh"]
            called = await pipe.request(
                "call",
                "tools/call",
                {"name": "mem_ssh", "arguments": {"host": "a", "command": "uptime"}},
            )
            assert called["isError"] is False
            assert proc.returncode is None
            # Garbage that looked like a request got an answer, never silence followed by death.
            answered = {a.get("id") for a in pipe.noise}
            assert {"g3", "g5"} <= answered, pipe.noise
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        with anyio.move_on_after(10, shield=True):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    errors = (await stderr).decode(errors="replace")
    assert proc.returncode == 0, errors
    assert "Traceback" not in errors


async def test_garbage_bodies_on_a_fake_mcp_http_endpoint_get_4xx() -> None:
    from mcp import Client

    from fake_servers.mcp import build_server, serve_http

    fake = build_server("ssh")
    json_headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
    }
    bodies: list[tuple[str, dict[str, str], bytes]] = [
        ("POST", json_headers, b"{not json"),
        ("POST", json_headers, b"\xff\xfe\xfd"),
        ("POST", json_headers, b"[" * 100_000 + b"]" * 100_000),
        ("POST", json_headers, b"[]"),
        ("POST", json_headers, b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'),
        ("POST", {"content-type": "text/plain", "accept": "*/*"}, b"hello"),
        ("POST", json_headers, b"z" * (4 * 1024 * 1024)),
        ("GET", {"accept": "text/event-stream", "mcp-session-id": "no-such-session"}, b""),
        ("DELETE", {"mcp-session-id": "no-such-session"}, b""),
        ("PUT", json_headers, b"{}"),
    ]
    async with serve_http(fake) as url:
        async with httpx2.AsyncClient(timeout=20) as http:
            for method, headers, body in bodies:
                response = await http.request(method, url, headers=headers, content=body)
                assert 400 <= response.status_code < 500, (method, body[:60], response.text[:200])
        async with Client(url) as client:
            tools = await client.list_tools()
            assert [t.name for t in tools.tools] == ["mem_ssh"]


# -- the TCP proxy: its listen port and its Toxiproxy API ---------------------------------------


async def _abrupt(address: str, data: bytes = b"", *, reset: bool = True) -> None:
    host, _, port = address.rpartition(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    if data:
        writer.write(data)
        with suppress(OSError):
            await writer.drain()
    if reset:
        abort_with_reset(writer)
    else:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


async def test_garbage_and_abrupt_closes_on_the_proxy_never_stop_it() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        listen = proxy.listen
        api_address = f"{api.host}:{api.port}"
        tried = 0
        # On the listen port: opened and closed, reset, garbage then reset, a flood then reset.
        for data, reset in [
            (b"", False),
            (b"", True),
            (bytes(range(256)) * 256, True),
            (b"\x00" * 65536, False),
            (bytes(range(256)) * 16384, True),
        ]:
            await _abrupt(listen, data, reset=reset)
            tried += 1
        # A hundred connections at once, all reset.
        await asyncio.gather(*(_abrupt(listen, b"x" * 1000) for _ in range(100)))
        tried += 100
        # Half-close: the echo still comes back through the proxy, then EOF.
        reader, writer = await connect(listen)
        writer.write(b"half-closed")
        writer.write_eof()
        assert await reader.read() == b"half-closed"
        await close(writer)
        tried += 1
        # A reset while a latency toxic still holds the data.
        await api(
            lambda t: t.get_proxy("svc").add_toxic(
                type="latency", name="slow", attributes={"latency": 50}
            )
        )
        for _ in range(5):
            await _abrupt(listen, b"held by the toxic")
            tried += 1
        await api(lambda t: t.get_proxy("svc").destroy_toxic("slow"))
        # On the API port: bytes that are not HTTP.
        for garbage in PROXY_API_RAW_GARBAGE:
            port = api_address.rpartition(":")[2]
            with suppress(ConnectionResetError):
                answer = await _exchange(int(port), garbage, half_close=True)
                assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
            tried += 1
        await _abrupt(api_address, b"POST /proxies HTTP/1.1\r\ncontent-length: 99\r\n\r\n{")
        tried += 1
        assert tried >= 120
        reader, writer = await connect(listen)
        assert await roundtrip(reader, writer, b"still relaying") == b"still relaying"
        await close(writer)
        async with httpx2.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/version")).status_code == 200
            assert list((await client.get("/proxies")).json()) == ["svc"]


async def _call(client: httpx2.AsyncClient, method: str, path: str, body: Any) -> httpx2.Response:
    if isinstance(body, bytes):
        return await client.request(method, path, content=body)
    if body is None:
        return await client.request(method, path)
    return await client.request(method, path, json=body)


async def test_invalid_toxiproxy_api_calls_get_4xx_with_a_clear_message() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(
            lambda t: t.get_proxy("svc").add_toxic(
                type="latency", name="slow", attributes={"latency": 0}
            )
        )
        reader, writer = await connect(proxy.listen)
        async with httpx2.AsyncClient(base_url=server.url, timeout=30) as client:
            for method, path, body, status, words in TOXIPROXY_BAD_CALLS:
                response = await _call(client, method, path, body)
                where = f"{method} {path} {body!r:.80}"
                assert response.status_code == status, (where, response.text[:300])
                payload = response.json()
                assert payload == {"error": payload["error"], "status": status}, where
                assert words in payload["error"], (where, payload["error"])
                assert "internal error" not in payload["error"], where
                assert await roundtrip(reader, writer, b"alive") == b"alive", where
            listed = (await client.get("/proxies")).json()
        assert list(listed) == ["svc"]
        assert [t["name"] for t in listed["svc"]["toxics"]] == ["slow"]
        await close(writer)


async def test_invalid_interposer_control_api_calls_get_4xx_with_a_clear_message() -> None:
    from harness.chaos_random import ChaosRandom
    from harness.clock import LoopClock
    from harness.faults.interposer import Interposer
    from harness.faults.interposer_api import build_control_app
    from harness.faults.plan import FaultPlan
    from harness.faults.records import FaultRecorder

    plan = FaultPlan.model_validate([{"type": "drop", "name": "planned", "match": {"nth": 2}}])
    interposer = Interposer(
        ["my-server"],
        plan=plan,
        name="mcp",
        clock=LoopClock(),
        rng=ChaosRandom(0),
        recorder=FaultRecorder(clock=LoopClock()),
    )
    transport = httpx2.ASGITransport(app=build_control_app(interposer))
    async with httpx2.AsyncClient(transport=transport, base_url="http://control") as client:
        for method, path, body, status, words in INTERPOSER_BAD_CALLS:
            response = await _call(client, method, path, body)
            where = f"{method} {path} {body!r:.80}"
            assert response.status_code == status, (where, response.text[:300])
            payload = response.json()
            assert payload["status"] == status, where
            assert words in payload["error"], (where, payload["error"])
        faults = (await client.get("/proxies/mcp/faults")).json()
    assert [f["name"] for f in faults] == ["planned"]
    assert list(interposer.toxics) == []
