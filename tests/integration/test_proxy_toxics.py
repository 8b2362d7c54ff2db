"""The embedded proxy in front of a real loopback server, driven by ``toxiproxy-python``."""

from __future__ import annotations

import os

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.test_proxy_helpers import (
    close,
    connect,
    echo_server,
    no_other_tasks,
    proxy_server,
    read_to_end,
    roundtrip,
    wait_for_record,
)

pytestmark = pytest.mark.integration


async def test_create_list_version_and_relay() -> None:
    async with echo_server() as echo, proxy_server() as (_server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="echo"))
        assert not proxy.listen.endswith(":0")
        listed = await api(lambda t: t.proxies())
        assert list(listed) == ["echo"]
        assert listed["echo"].upstream == echo.address
        assert await api(lambda t: t.version()) == b"2.12.0"
        reader, writer = await connect(proxy.listen)
        payload = bytes(range(256)) * 1000
        assert await roundtrip(reader, writer, payload) == payload
        await close(writer)
    assert no_other_tasks() == []


async def test_latency_is_added_and_removed_on_a_live_connection() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with echo_server() as echo, proxy_server(tracer_provider=provider) as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="db"))
        reader, writer = await connect(proxy.listen)
        assert await roundtrip(reader, writer, b"warm") == b"warm"

        await api(
            lambda t: t.get_proxy("db").add_toxic(type="latency", attributes={"latency": 150})
        )
        started = anyio.current_time()
        assert await roundtrip(reader, writer, b"slow") == b"slow"
        assert anyio.current_time() - started >= 0.15

        assert [r.kind for r in server.recorder.records] == ["added", "applied"]
        applied = server.recorder.records[1]
        assert (applied.type, applied.target, applied.connection) == ("latency", "db", 1)
        assert applied.draw is not None

        await api(lambda t: t.get_proxy("db").destroy_toxic("latency_downstream"))
        assert await roundtrip(reader, writer, b"fast" * 1000) == b"fast" * 1000
        assert server.recorder.records[-1].kind == "removed"
        spans = exporter.get_finished_spans()
        assert [span.name for span in spans] == ["harness.fault"] * 3
        assert [(span.attributes or {}).get("harness.fault.action") for span in spans] == [
            "added",
            "applied",
            "removed",
        ]
        await close(writer)


async def test_slicer_and_bandwidth_keep_the_bytes_intact() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        reader, writer = await connect(proxy.listen)
        await api(
            lambda t: t.get_proxy("svc").add_toxic(
                type="slicer", attributes={"average_size": 700, "size_variation": 300}
            )
        )
        await api(
            lambda t: t.get_proxy("svc").add_toxic(
                type="bandwidth", stream="upstream", attributes={"rate": 50_000}
            )
        )
        payload = bytes(range(256)) * 800
        assert await roundtrip(reader, writer, payload) == payload
        applied = [r.name for r in server.recorder.records if r.kind == "applied"]
        assert sorted(applied) == ["bandwidth_upstream", "slicer_downstream"]
        await close(writer)


async def test_reset_peer_is_seen_by_the_client_as_a_reset() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(lambda t: t.get_proxy("svc").add_toxic(type="reset_peer"))
        reset = wait_for_record(server, "reset")
        reader, writer = await connect(proxy.listen)
        await reset.wait()
        with pytest.raises(ConnectionResetError):
            await reader.read(10)
        await close(writer)


async def test_timeout_closes_the_connection_without_passing_data() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(
            lambda t: t.get_proxy("svc").add_toxic(type="timeout", attributes={"timeout": 300})
        )
        reader, writer = await connect(proxy.listen)
        started = anyio.current_time()
        writer.write(b"anyone there?")
        await writer.drain()
        assert await read_to_end(reader) == b""
        assert anyio.current_time() - started >= 0.3
        assert "closed" in [r.kind for r in server.recorder.records]
        await close(writer)


async def test_timeout_zero_holds_data_until_the_toxic_is_removed() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(lambda t: t.get_proxy("svc").add_toxic(type="timeout", name="stall"))
        holding = wait_for_record(server, "holding")
        reader, writer = await connect(proxy.listen)
        writer.write(b"ping")
        await writer.drain()
        await holding.wait()
        assert bytes(echo.received) == b"ping"  # upstream answered; the reply is held
        await api(lambda t: t.get_proxy("svc").destroy_toxic("stall"))
        assert await reader.readexactly(4) == b"ping"
        await close(writer)


async def test_limit_data_closes_after_the_limit() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(
            lambda t: t.get_proxy("svc").add_toxic(type="limit_data", attributes={"bytes": 5})
        )
        reader, writer = await connect(proxy.listen)
        writer.write(b"hello world")
        await writer.drain()
        assert await read_to_end(reader) == b"hello"
        assert "limit_reached" in [r.kind for r in server.recorder.records]
        await close(writer)


async def test_limit_data_upstream_limits_what_the_server_gets() -> None:
    async with echo_server() as echo, proxy_server() as (_server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(
            lambda t: t.get_proxy("svc").add_toxic(
                type="limit_data", stream="upstream", attributes={"bytes": 5}
            )
        )
        reader, writer = await connect(proxy.listen)
        writer.write(b"hello world")
        await writer.drain()
        await echo.ended.wait()
        assert bytes(echo.received) == b"hello"
        await read_to_end(reader)
        await close(writer)


async def test_toxicity_zero_never_applies() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(
            lambda t: t.get_proxy("svc").add_toxic(
                type="latency", toxicity=0.0, attributes={"latency": 60_000}
            )
        )
        reader, writer = await connect(proxy.listen)
        assert await roundtrip(reader, writer, b"quick") == b"quick"
        assert [r.kind for r in server.recorder.records] == ["added"]
        await close(writer)


async def test_disable_closes_listener_and_connections_enable_reopens() -> None:
    async with echo_server() as echo, proxy_server() as (server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        reader, writer = await connect(proxy.listen)
        assert await roundtrip(reader, writer, b"up") == b"up"

        await api(lambda t: t.get_proxy("svc").disable())
        assert await read_to_end(reader) == b""
        await close(writer)
        with pytest.raises(ConnectionRefusedError):
            await connect(proxy.listen)
        assert (await api(lambda t: t.proxies()))["svc"].enabled is False

        await api(lambda t: t.get_proxy("svc").enable())
        reader, writer = await connect(proxy.listen)  # same port as before
        assert await roundtrip(reader, writer, b"back") == b"back"
        await close(writer)
        downs = [(r.kind, r.type) for r in server.recorder.records]
        assert downs == [("disabled", "down"), ("enabled", "down")]


async def test_reset_enables_every_proxy_and_removes_every_toxic() -> None:
    async with echo_server() as echo, proxy_server() as (_server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(lambda t: t.get_proxy("svc").add_toxic(type="latency"))
        await api(lambda t: t.get_proxy("svc").add_toxic(type="bandwidth", stream="upstream"))
        await api(lambda t: t.get_proxy("svc").disable())

        assert await api(lambda t: t.reset()) is True
        after = (await api(lambda t: t.proxies()))["svc"]
        assert after.enabled is True
        assert await api(lambda t: t.get_proxy("svc").toxics()) == {}
        reader, writer = await connect(proxy.listen)
        assert await roundtrip(reader, writer, b"clean") == b"clean"
        await close(writer)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_shutdown_closes_every_connection_and_task() -> None:
    fds = _open_fds()
    async with echo_server() as echo:
        async with proxy_server() as (_server, api):
            proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
            await api(lambda t: t.get_proxy("svc").add_toxic(type="timeout"))
            reader, writer = await connect(proxy.listen)
            writer.write(b"stuck")
            await writer.drain()
        # The server is gone: its connections were closed, its listener too.
        assert await read_to_end(reader) == b""
        await close(writer)
        with pytest.raises(ConnectionRefusedError):
            await connect(proxy.listen)
    assert no_other_tasks() == []
    assert _open_fds() == fds
