"""The harness's Toxiproxy client: ``TOXIPROXY_URL`` selects a running server, otherwise an
embedded one is started; the same calls drive both."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError, FaultConfigError
from harness.faults.client import ToxiproxyClient, toxiproxy_client
from tests.integration.test_proxy_helpers import (
    close,
    connect,
    echo_server,
    proxy_server,
    roundtrip,
)

pytestmark = pytest.mark.integration


async def test_toxiproxy_url_sends_faults_to_that_server() -> None:
    async with echo_server() as echo, proxy_server() as (remote, _api):
        env = {"TOXIPROXY_URL": remote.url}
        async with toxiproxy_client(env=env) as client:
            assert client.url == remote.url
            listen = await client.create_proxy(name="db", upstream=echo.address)
            name = await client.add_toxic(
                "db", type="latency", stream="upstream", attributes={"latency": 5}
            )
            assert name == "latency_upstream"
            assert await client.toxics("db") == {
                "latency_upstream": {
                    "type": "latency",
                    "stream": "upstream",
                    "toxicity": 1.0,
                    "attributes": {"latency": 5, "jitter": 0},
                }
            }
            assert await client.version() == "2.12.0"
        # The proxy lives in the server the URL named, and outlives the client.
        assert [proxy.name for proxy in remote.registry] == ["db"]
        reader, writer = await connect(listen)
        assert await roundtrip(reader, writer, b"via remote") == b"via remote"
        await close(writer)


async def test_without_toxiproxy_url_an_embedded_server_is_used() -> None:
    async with echo_server() as echo, toxiproxy_client(env={}) as client:
        assert client.url.startswith("http://127.0.0.1:")
        listen = await client.create_proxy(name="svc", upstream=echo.address)
        await client.set_enabled("svc", False)
        with pytest.raises(ConnectionRefusedError):
            await connect(listen)
        await client.set_enabled("svc", True)
        await client.add_toxic("svc", type="limit_data", attributes={"bytes": 2})
        reader, writer = await connect(listen)
        writer.write(b"abcd")
        await writer.drain()
        assert await reader.read(-1) == b"ab"
        await close(writer)
        await client.reset()
        assert await client.toxics("svc") == {}
        await client.delete_proxy("svc")


async def test_client_errors_carry_status_and_message() -> None:
    async with toxiproxy_client(env={}) as client:
        await client.create_proxy(name="svc", upstream="127.0.0.1:9")
        with pytest.raises(FaultConfigError) as duplicate:
            await client.create_proxy(name="svc", upstream="127.0.0.1:9")
        assert duplicate.value.status == 409
        with pytest.raises(FaultConfigError) as bad:
            await client.add_toxic("svc", type="latency", attributes={"latency": -1})
        assert bad.value.status == 400
        assert "attributes.latency" in str(bad.value)
        with pytest.raises(FaultConfigError) as missing:
            await client.remove_toxic("ghost", "x")
        assert missing.value.status == 404


def test_a_bad_toxiproxy_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http://HOST:PORT"):
        ToxiproxyClient("localhost:8474")
