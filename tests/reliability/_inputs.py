"""Shared pieces of the bad-input, security and data tests of the reliability suite.

- the corpus of malformed scenario files (``corpus/scenarios/*.yaml``): each file says in its
  first comment lines what is wrong with it and what the error must say::

      # a negative call timeout
      # expect: greater than 0                 a fragment of the message
      # field: servers.ssh.timeout             the dotted field the message names (optional)
      # xfail: <defect>                        a known defect: the file is not rejected cleanly

- the malformed requests and byte strings sent to each server, as data, so a test's count of
  inputs tried is the length of a list;
- ``listening_sockets(pid)``: the TCP sockets a process listens on, read from the kernel's
  tables (``/proc/<pid>/net/tcp{,6}`` filtered by the socket inodes in ``/proc/<pid>/fd``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import socket
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "API_BAD_REQUESTS",
    "API_RAW_GARBAGE",
    "CORPUS_DIR",
    "INTERPOSER_BAD_CALLS",
    "MCP_GARBAGE",
    "PROXY_API_RAW_GARBAGE",
    "TOXIPROXY_BAD_CALLS",
    "ApiRequest",
    "CorpusCase",
    "abort_with_reset",
    "audited",
    "corpus_cases",
    "corpus_params",
    "is_loopback",
    "listening_sockets",
]

CORPUS_DIR = Path(__file__).parent / "corpus" / "scenarios"

# Files that cannot carry their own expectation in UTF-8 comment lines.
_HEADERLESS = {
    "empty.yaml": "a scenario must be a YAML mapping",
    "utf16_text.yaml": "is not UTF-8 text",
}
_HEADER = re.compile(rb"^# (expect|field|xfail): (.*)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class CorpusCase:
    """One malformed scenario file and what its error must say."""

    path: Path
    expect: str
    field: str | None = None
    xfail: str | None = None


def corpus_cases() -> list[CorpusCase]:
    """Every file of the corpus, sorted by name."""
    cases = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        if path.name in _HEADERLESS:
            cases.append(CorpusCase(path, _HEADERLESS[path.name]))
            continue
        header = {
            key.decode(): value.decode("utf-8").strip()
            for key, value in _HEADER.findall(path.read_bytes()[:4096])
        }
        if "expect" not in header:
            raise AssertionError(f"{path.name} has no '# expect:' line")
        cases.append(CorpusCase(path, header["expect"], header.get("field"), header.get("xfail")))
    return cases


def corpus_params() -> list[Any]:
    """``pytest.param`` per corpus file; known defects are strict xfails naming the defect."""
    params = []
    for case in corpus_cases():
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        params.append(pytest.param(case, id=case.path.stem, marks=marks))
    return params


# -- the fake Anthropic API ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One malformed request to the fake Messages API and the status the real API gives."""

    name: str
    status: int
    body: bytes = b""
    method: str = "POST"
    path: str = "/v1/messages"
    headers: tuple[tuple[str, str], ...] = ()
    # Headers of a valid request that this one leaves out.
    without: tuple[str, ...] = ()


VALID_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
VALID_HEADERS = {
    "x-api-key": "sk-ant-reliability",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}


def _with(**changes: Any) -> bytes:
    body = dict(VALID_BODY)
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body).encode()


_DROP = object()
_TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}

API_BAD_REQUESTS: list[ApiRequest] = [
    ApiRequest("truncated JSON", 400, b'{"model": "claude-sonnet-4-6", "max_'),
    ApiRequest("not JSON at all", 400, b"hello there"),
    ApiRequest("JSON array", 400, b"[1, 2, 3]"),
    ApiRequest("JSON string", 400, b'"messages"'),
    ApiRequest("JSON null", 400, b"null"),
    ApiRequest("empty body", 400, b""),
    ApiRequest("invalid UTF-8", 400, b'{"model": "\xff\xfe", "max_tokens": 1}'),
    ApiRequest("NaN max_tokens", 400, _with(max_tokens=float("nan"))),
    ApiRequest("JSON nested 100000 deep", 400, b"[" * 100_000 + b"]" * 100_000),
    ApiRequest("text/plain content type", 400, _with(), headers=(("content-type", "text/plain"),)),
    ApiRequest("no content type", 400, _with(), without=("content-type",)),
    ApiRequest(
        "form content type",
        400,
        b"model=claude&max_tokens=3",
        headers=(("content-type", "application/x-www-form-urlencoded"),),
    ),
    ApiRequest("missing model", 400, _with(model=_DROP)),
    ApiRequest("missing messages", 400, _with(messages=_DROP)),
    ApiRequest("missing max_tokens", 400, _with(max_tokens=_DROP)),
    ApiRequest("model is a number", 400, _with(model=7)),
    ApiRequest("messages is a string", 400, _with(messages="hi")),
    ApiRequest("messages is empty", 400, _with(messages=[])),
    ApiRequest("message is a number", 400, _with(messages=[5])),
    ApiRequest("max_tokens is a string", 400, _with(max_tokens="many")),
    ApiRequest("max_tokens is negative", 400, _with(max_tokens=-1)),
    ApiRequest("unknown role", 400, _with(messages=[{"role": "robot", "content": "hi"}])),
    ApiRequest(
        "first message from the assistant",
        400,
        _with(messages=[{"role": "assistant", "content": "hi"}]),
    ),
    ApiRequest("empty content", 400, _with(messages=[{"role": "user", "content": ""}])),
    ApiRequest(
        "whitespace content",
        400,
        _with(messages=[{"role": "user", "content": [{"type": "text", "text": "  "}]}]),
    ),
    ApiRequest(
        "unknown block type",
        400,
        _with(messages=[{"role": "user", "content": [{"type": "hologram"}]}]),
    ),
    ApiRequest(
        "tool_result without tool_use",
        400,
        _with(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}],
                }
            ]
        ),
    ),
    ApiRequest(
        "tool_use without tool_result",
        400,
        _with(
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [_TOOL_USE]},
                {"role": "user", "content": "and?"},
            ]
        ),
    ),
    ApiRequest("stream is a string", 400, _with(stream="yes")),
    ApiRequest("system is a number", 400, _with(system=12)),
    ApiRequest("tools is an object", 400, _with(tools={"name": "t"})),
    ApiRequest("no API key", 401, _with(), without=("x-api-key",)),
    ApiRequest(
        "empty bearer token",
        401,
        _with(),
        without=("x-api-key",),
        headers=(("authorization", "Bearer  "),),
    ),
    ApiRequest("no anthropic-version", 400, _with(), without=("anthropic-version",)),
    ApiRequest(
        "Content-Length of 10^11", 413, _with(), headers=(("content-length", "100000000000"),)
    ),
    ApiRequest("count_tokens with bad JSON", 400, b"{", path="/v1/messages/count_tokens"),
    ApiRequest(
        "count_tokens without messages",
        400,
        _with(messages=_DROP),
        path="/v1/messages/count_tokens",
    ),
    ApiRequest("GET on /v1/messages", 405, method="GET"),
    ApiRequest("PUT on /v1/messages", 405, _with(), method="PUT"),
    ApiRequest("DELETE on count_tokens", 405, method="DELETE", path="/v1/messages/count_tokens"),
    ApiRequest("unknown path", 404, _with(), path="/v1/completions"),
    ApiRequest("path traversal", 404, path="/v1/../../etc/passwd", method="GET"),
    ApiRequest("very long path", 404, path="/v1/" + "a" * 8000, method="GET"),
    ApiRequest(
        "models without a key", 401, method="GET", path="/v1/models", without=("x-api-key",)
    ),
]

# Bytes that are not HTTP at all, sent on a raw connection to the fake API's port.
API_RAW_GARBAGE: list[bytes] = [
    b"GARBAGE\r\n\r\n",
    bytes(range(256)) * 64,
    b'POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"model"',
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
    b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
]

# -- fake MCP server over stdio: one line each (newline added by the test) ------------------

MCP_GARBAGE: list[bytes] = [
    b"hello",
    b"{not json",
    b"\xff\xfe\x00\x01 binary \x80\x81",
    b"\x00" * 64,
    b"",
    b"   ",
    b"[]",
    b"{}",
    b"null",
    b"123",
    b'"a string"',
    b'{"jsonrpc": "2.0"}',
    b'{"jsonrpc": "1.0", "id": "g1", "method": "ping"}',
    b'{"jsonrpc": "2.0", "id": {"nested": 1}, "method": "ping"}',
    b'{"jsonrpc": "2.0", "id": "g2", "method": 42}',
    b'{"jsonrpc": "2.0", "id": "g3", "method": "no/such/method"}',
    b'{"jsonrpc": "2.0", "id": "g4", "method": "tools/call", "params": "not an object"}',
    b'{"jsonrpc": "2.0", "id": "g5", "method": "tools/call", "params": {"name": "ghost"}}',
    b'{"jsonrpc": "2.0", "id": "g6", "method": "tools/call", "params": {"name": "mem_ssh"}}',
    b'{"jsonrpc": "2.0", "id": "g7", "method": "tools/call",'
    b' "params": {"name": "mem_ssh", "arguments": {"host": 5, "command": []}}}',
    b'{"jsonrpc": "2.0", "id": 999999, "result": {}}',
    b'{"jsonrpc": "2.0", "method": "notifications/made_up"}',
    b'{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "nope"}}',
    b'[{"jsonrpc": "2.0", "id": "b1", "method": "ping"}, {"jsonrpc": "2.0", "id": "b2"}]',
    b'{"jsonrpc": "2.0", "id": "g8", "method": "ping", "params": {"_meta": "x"}}',
    b"[" * 50_000 + b"]" * 50_000,
    b'{"jsonrpc": "2.0", "id": "g9", "method": "ping", "junk": "'
    + b"x" * (4 * 1024 * 1024)
    + b'"}',
    b"y" * (8 * 1024 * 1024),
]

# -- the Toxiproxy API of the embedded proxy (a proxy "svc" with a toxic "slow" exists) -------

# (method, path, body: JSON value, raw bytes or None, status, words of the error message)
TOXIPROXY_BAD_CALLS: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/proxies", b'{"name": "x", "upstream": "\xff\xfe"}', 400, "bad request body"),
    ("POST", "/proxies", b"[" * 100_000 + b"]" * 100_000, 400, "bad request body"),
    ("POST", "/proxies", b"z" * (4 * 1024 * 1024), 400, "bad request body"),
    ("POST", "/proxies", {"name": "", "upstream": "127.0.0.1:1"}, 400, "name"),
    ("POST", "/proxies", {"name": 5, "upstream": "127.0.0.1:1"}, 400, "name"),
    ("POST", "/proxies", {"name": "x", "upstream": 8080}, 400, "upstream"),
    ("POST", "/proxies", {"name": "x", "upstream": ""}, 400, "upstream"),
    (
        "POST",
        "/proxies",
        {"name": "x", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:-1"},
        400,
        "listen",
    ),
    (
        "POST",
        "/proxies",
        {"name": "x", "upstream": "127.0.0.1:1", "listen": "[::]:0"},
        400,
        "loopback only",
    ),
    (
        "POST",
        "/proxies",
        {"name": "x", "upstream": "127.0.0.1:1", "colour": "red"},
        400,
        "unknown proxy field",
    ),
    (
        "POST",
        "/proxies",
        {"name": "x", "upstream": "127.0.0.1:1", "toxics": "latency"},
        400,
        "toxics must be a list",
    ),
    (
        "POST",
        "/proxies",
        {"name": "x", "upstream": "127.0.0.1:1", "toxics": [{"type": "quake"}]},
        400,
        "toxics[0]",
    ),
    ("POST", "/proxies", None, 400, "bad request body"),
    ("POST", "/populate", [5], 400, "JSON object"),
    (
        "POST",
        "/populate",
        [{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "a", "upstream": "127.0.0.1:2"}],
        400,
        "proxy listed twice",
    ),
    ("POST", "/populate", b"{", 400, "bad request body"),
    ("POST", "/proxies/svc", {"enabled": "false"}, 400, "enabled"),
    ("POST", "/proxies/svc", {"name": "renamed"}, 400, "cannot be changed"),
    ("POST", "/proxies/svc", [1], 400, "JSON object"),
    ("PATCH", "/proxies/svc", {"upstream": "nowhere"}, 400, "host:port"),
    ("POST", "/proxies/svc/toxics", [1, 2], 400, ""),
    ("POST", "/proxies/svc/toxics", {}, 400, "type"),
    ("POST", "/proxies/svc/toxics", {"type": 5}, 400, "type"),
    ("POST", "/proxies/svc/toxics", {"type": "latency", "name": 5}, 400, "name"),
    ("POST", "/proxies/svc/toxics", {"type": "latency", "toxicity": "high"}, 400, "toxicity"),
    ("POST", "/proxies/svc/toxics", b'{"type": "latency", "toxicity": NaN}', 400, "toxicity"),
    ("POST", "/proxies/svc/toxics", {"type": "latency", "attributes": [1]}, 400, "attributes"),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "latency", "attributes": {"latency": 10**400}},
        400,
        "latency",
    ),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "latency", "attributes": {"jitter": -3}},
        400,
        "jitter",
    ),
    ("POST", "/proxies/svc/toxics", {"type": "bandwidth", "attributes": {"rate": -1}}, 400, "rate"),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "slow_close", "attributes": {"delay": -1}},
        400,
        "delay",
    ),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "timeout", "attributes": {"timeout": -1}},
        400,
        "timeout",
    ),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "reset_peer", "attributes": {"timeout": -1}},
        400,
        "timeout",
    ),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "slicer", "attributes": {"average_size": -1}},
        400,
        "average_size",
    ),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "limit_data", "attributes": {"bytes": -1}},
        400,
        "bytes",
    ),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "latency", "attributes": {"latency": "fast"}},
        400,
        "latency",
    ),
    ("POST", "/proxies/svc/toxics", {"type": "bandwidth", "name": "slow"}, 409, "already exists"),
    ("PATCH", "/proxies/svc/toxics/slow", b"\xff", 400, "bad request body"),
    ("PATCH", "/proxies/svc/toxics/slow", {"attributes": {"latency": -9}}, 400, "latency"),
    ("PATCH", "/proxies/svc/toxics/slow", {"type": "bandwidth"}, 400, ""),
    ("GET", "/proxies/ghost/toxics/slow", None, 404, "proxy not found"),
    ("DELETE", "/proxies/ghost/toxics/slow", None, 404, "proxy not found"),
    ("GET", "/proxies/%00", None, 404, "proxy not found"),
    ("GET", "/proxies/svc/toxics/slow/extra", None, 404, "not found"),
    ("DELETE", "/version", None, 405, "method not allowed"),
    ("GET", "/reset", None, 405, "method not allowed"),
    ("PUT", "/reset", None, 405, "method not allowed"),
    ("GET", "/populate", None, 405, "method not allowed"),
    ("PUT", "/proxies/svc/toxics", {}, 405, "method not allowed"),
    ("PUT", "/proxies/svc", {}, 405, "method not allowed"),
]

# Bytes that are not (valid) HTTP, sent on a raw connection to the proxy's API port.
PROXY_API_RAW_GARBAGE: list[bytes] = [*API_RAW_GARBAGE, b"DELETE /proxies/svc HTTP/1.1\r\nHost"]

# -- the interposer's control API (its proxy is "mcp"; a fault "planned" is installed) -------

INTERPOSER_BAD_CALLS: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/proxies/mcp/faults", b"{not json", 400, "bad request body"),
    ("POST", "/proxies/mcp/faults", b"\xff\xfe\xfd", 400, "bad request body"),
    ("POST", "/proxies/mcp/faults", b"[" * 100_000 + b"]" * 100_000, 400, "bad request body"),
    ("POST", "/proxies/mcp/faults", b"", 400, "bad request body"),
    ("POST", "/proxies/mcp/faults", [1], 400, ""),
    ("POST", "/proxies/mcp/faults", {"type": "meteor", "name": "m"}, 400, "meteor"),
    ("POST", "/proxies/mcp/faults", {"type": "drop", "match": {"nth": 1}}, 400, "needs a name"),
    ("POST", "/proxies/mcp/faults", {"type": "drop", "name": "d", "match": {"nth": 0}}, 400, "nth"),
    (
        "POST",
        "/proxies/mcp/faults",
        {"type": "kill", "name": "k", "signal": "SIGFOO", "at": 1},
        400,
        "signal",
    ),
    (
        "POST",
        "/proxies/mcp/faults",
        {"type": "freeze", "name": "f", "seconds": -1, "at": 1},
        400,
        "seconds",
    ),
    (
        "POST",
        "/proxies/mcp/faults",
        {"type": "garbage", "name": "g", "at": 1, "size": 10**12},
        400,
        "size",
    ),
    (
        "POST",
        "/proxies/mcp/faults",
        {"type": "toxic", "name": "t", "toxic": {"type": "latency"}},
        400,
        "through /proxies",
    ),
    (
        "POST",
        "/proxies/mcp/faults",
        {"type": "llm", "name": "l", "fault": {"kind": "overloaded"}},
        400,
        "through /proxies",
    ),
    (
        "POST",
        "/proxies/mcp/faults",
        {"type": "drop", "name": "planned", "match": {"nth": 3}},
        409,
        "already exists",
    ),
    (
        "POST",
        "/proxies/other/faults",
        {"type": "drop", "name": "x", "match": {"nth": 1}},
        404,
        "proxy not found",
    ),
    ("DELETE", "/proxies/mcp/faults/ghost", None, 404, "fault not found"),
    ("PUT", "/proxies/mcp/faults", {}, 405, "method not allowed"),
    ("POST", "/proxies/mcp/toxics", {"type": "earthquake"}, 400, "invalid toxic type"),
    (
        "POST",
        "/proxies/mcp/toxics",
        {"type": "latency", "attributes": {"latency": -1}},
        400,
        "latency",
    ),
    ("POST", "/proxies/mcp/toxics", b"[" * 100_000, 400, "bad request body"),
    ("PATCH", "/proxies/mcp/toxics/ghost", {"toxicity": 0.5}, 404, "toxic not found"),
    ("POST", "/proxies", {"name": "x", "upstream": "127.0.0.1:1"}, 400, "stdio interposer"),
    ("DELETE", "/proxies/mcp", None, 400, "stdio interposer"),
    ("GET", "/proxies/other", None, 404, "proxy not found"),
    ("GET", "/nowhere", None, 404, "not found"),
]


# -- sockets ----------------------------------------------------------------------------------

_LISTEN = "0A"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str) -> tuple[str, int]:
    host_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(host_hex)
    # The kernel prints each 32-bit word of the address in host (little-endian) order.
    words = struct.unpack(f"<{len(raw) // 4}I", raw)
    packed = struct.pack(f">{len(words)}I", *words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed), int(port_hex, 16)


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """``(address, port)`` of every TCP socket process ``pid`` listens on (IPv4 and IPv6)."""
    inodes = _socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN and fields[9] in inodes:
                found.append(_address(fields[1]))
    return sorted(found)


def is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def abort_with_reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with a TCP reset instead of a FIN (an abrupt close)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- what this process starts: Python's audit events -----------------------------------------

_WATCHED = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "socket.bind"})
_recording: list[list[tuple[str, tuple[Any, ...]]]] = []
_hooked = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in _WATCHED and _recording:
        _recording[-1].append((event, args))


@contextmanager
def audited() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Record every program this process starts and every address it binds while the block
    runs (``subprocess.Popen`` with its argv, ``os.system``, ``os.exec``, ``os.posix_spawn``,
    ``socket.bind`` with its address), from Python's audit hooks: what really happened, however
    the code got there. An audit hook cannot be removed; outside a block it does nothing."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_hook)
        _hooked = True
    events: list[tuple[str, tuple[Any, ...]]] = []
    _recording.append(events)
    try:
        yield events
    finally:
        _recording.remove(events)
