"""MCPHostManager: lazy shared connections, timeouts, and the two reconnect policies.

The servers are real ``MCPServer`` instances over the real in-memory JSON-RPC transport; a
gate (an ``anyio.Event``) holds a call in flight so the tests control the interleaving instead
of racing timers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp.server.mcpserver import MCPServer

from harness.errors import ConfigError
from harness.runtime.host import MCPHostManager, ServerSpec, ToolCallOutcome

# Short real timeouts keep these in-process tests fast; the 150 s default is exercised under
# virtual time by the scenario tests.
TIMEOUT = 0.3


class GatedServer:
    """An MCP server whose ``slow`` tool waits for a gate and whose ``hang`` never returns."""

    def __init__(self) -> None:
        self.server = MCPServer("gated")
        self.gate = anyio.Event()
        self.started = 0

        @self.server.tool()
        async def slow(tag: str) -> str:
            self.started += 1
            await self.gate.wait()
            return f"slow {tag} done"

        @self.server.tool()
        async def hang() -> str:
            await anyio.sleep_forever()
            return "never"

        @self.server.tool()
        async def echo(text: str) -> str:
            return text


@pytest.fixture
def gated() -> GatedServer:
    return GatedServer()


@asynccontextmanager
async def _host(gated: GatedServer, policy: str) -> AsyncIterator[MCPHostManager]:
    spec = ServerSpec("ssh", instance=gated.server, timeout=TIMEOUT)
    async with MCPHostManager([spec], policy=policy) as host:  # type: ignore[arg-type]
        yield host


async def test_connects_lazily_and_lists_tools(gated: GatedServer) -> None:
    async with MCPHostManager([ServerSpec("ssh", instance=gated.server)]) as host:
        assert host.live_connections() == []
        tools = await host.list_tools()
        assert {t.name for t in tools["ssh"]} == {"slow", "hang", "echo"}
        assert host.server_of("echo") == "ssh"
        outcome = await host.call_tool("ssh", "echo", {"text": "hi"})
        assert not outcome.is_error
        assert outcome.result is not None
        assert outcome.result.content[0].text == "hi"  # type: ignore[union-attr]
        assert len(host.live_connections()) == 1
    assert host.live_connections() == []


@pytest.mark.parametrize("policy", ["naive", "coordinated"])
async def test_timeout_is_an_error_result_not_an_exception(gated: GatedServer, policy: str) -> None:
    async with _host(gated, policy) as host:
        outcome = await host.call_tool("ssh", "hang", {})
        assert outcome.is_error
        assert outcome.error_type == "timeout"
        assert "timed out" in (outcome.error or "")
        assert host.in_flight("ssh") == 0


async def test_naive_reconnect_kills_the_call_in_flight(gated: GatedServer) -> None:
    async with _host(gated, "naive") as host:
        outcomes: dict[str, ToolCallOutcome] = {}

        async def call(key: str, tool: str, args: dict[str, str]) -> None:
            # Only A's call has the short timeout, so B is still healthy when A gives up.
            timeout = TIMEOUT if key == "A" else 30.0
            outcomes[key] = await host.call_tool("ssh", tool, args, timeout=timeout)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "B", "slow", {"tag": "B"})
            await host.events.wait_for("call_started", tool="slow")
            tg.start_soon(call, "A", "hang", {})
        b = outcomes["B"]
        a = outcomes["A"]
        assert a.is_error
        assert a.error_type == "timeout"
        # B's healthy call died because A tore the shared connection down under it ...
        assert b.is_error
        assert b.error_type == "connection_closed"
        # ... and B reconnected too: two reconnects for one failure, decided with calls live.
        reconnects = host.events.of_kind("reconnect")
        assert [r.data["decision"] for r in reconnects] == ["performed", "performed"]
        assert reconnects[0].data["in_flight"] == 1
        assert host.generation("ssh") == 3


class _Refusing:
    """A transport whose connection attempt fails, as a server that is down would."""

    async def __aenter__(self) -> None:
        raise OSError("connection refused")

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize("policy", ["naive", "coordinated"])
async def test_a_failed_reconnect_is_an_error_result_and_the_next_call_connects(
    gated: GatedServer, policy: str
) -> None:
    attempts: list[int] = []

    def wrap(transport: object) -> object:
        # The first connection works, the second (the reconnect) is refused, later ones work.
        attempts.append(1)
        return _Refusing() if len(attempts) == 2 else transport

    spec = ServerSpec("ssh", instance=gated.server, timeout=TIMEOUT, wrap=wrap)
    async with MCPHostManager([spec], policy=policy) as host:  # type: ignore[arg-type]
        failed = await host.call_tool("ssh", "hang", {})
        assert failed.is_error
        assert failed.error_type == "timeout"
        assert [e.data["generation"] for e in host.events.of_kind("connect_failed")] == [2]
        if policy == "naive":
            assert "could not connect" in (failed.error or "")
        after = await host.call_tool("ssh", "echo", {"text": "back"})
        assert not after.is_error, after.error
        # Coordinated retried the hanging call once on a fresh connection, which timed out too
        # and was replaced again.
        assert len(attempts) == (3 if policy == "naive" else 4)
        assert host.in_flight("ssh") == 0


async def test_coordinated_waits_for_in_flight_then_reconnects_once(gated: GatedServer) -> None:
    async with _host(gated, "coordinated") as host:
        outcomes: dict[str, ToolCallOutcome] = {}

        async def call(key: str, tool: str, args: dict[str, str]) -> None:
            # Only A's call has the short timeout, so B is still healthy when A gives up.
            timeout = TIMEOUT if key == "A" else 30.0
            outcomes[key] = await host.call_tool("ssh", tool, args, timeout=timeout)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "B", "slow", {"tag": "B"})
            await host.events.wait_for("call_started", tool="slow")
            tg.start_soon(call, "A", "hang", {})
            # A timed out while B is live: the reconnect must wait for B.
            await host.events.wait_for("reconnect", decision="deferred")
            assert host.generation("ssh") == 1
            # A call arriving now waits for the restored connection instead of joining.
            tg.start_soon(call, "C", "echo", {"text": "C"})
            gated.gate.set()
        b, a, c = outcomes["B"], outcomes["A"], outcomes["C"]
        assert not b.is_error
        assert not c.is_error
        # A retried once on the new connection; "hang" hangs again, so it reports the timeout.
        assert a.is_error
        assert a.retried
        assert a.error_type == "timeout"
        performed = [
            r for r in host.events.of_kind("reconnect") if r.data["decision"] == "performed"
        ]
        assert all(r.data["in_flight"] == 0 for r in performed)
        assert len(performed) == 2  # one per failure of A, never with a call live
        started_c = [e for e in host.events.of_kind("call_started") if e.data["tool"] == "echo"]
        assert started_c[0].data["generation"] == 2


async def test_coordinated_retry_succeeds_after_a_dead_connection(gated: GatedServer) -> None:
    async with _host(gated, "coordinated") as host:
        await host.list_tools()
        first = host.live_connections("ssh")[0]
        await first.close()  # the connection dies under the manager
        outcome = await host.call_tool("ssh", "echo", {"text": "again"})
        assert not outcome.is_error
        assert host.generation("ssh") == 2


def test_bad_specs_are_config_errors(gated: GatedServer) -> None:
    with pytest.raises(ConfigError, match="exactly one of command, url or instance"):
        ServerSpec("x")
    with pytest.raises(ConfigError, match="timeout"):
        ServerSpec("x", instance=gated.server, timeout=0)
    with pytest.raises(ConfigError, match="unique"):
        MCPHostManager([ServerSpec("x", instance=1), ServerSpec("x", instance=2)])
    with pytest.raises(ConfigError, match="reconnect policy"):
        MCPHostManager([], policy="yolo")  # type: ignore[arg-type]
