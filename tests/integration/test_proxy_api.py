"""The Toxiproxy HTTP API contract: status codes, JSON bodies, and bad input that never takes
the proxy down."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from tests.integration.test_proxy_helpers import (
    close,
    connect,
    echo_server,
    proxy_server,
    roundtrip,
)

pytestmark = pytest.mark.integration

# (method, path, JSON body or raw bytes, status, words of the error message)
BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/proxies", {"name": "svc", "upstream": "127.0.0.1:1"}, 409, "already exists"),
    ("POST", "/proxies", {"upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
    ("POST", "/proxies", {"name": "x"}, 400, "missing required field: upstream"),
    ("POST", "/proxies", {"name": "x", "upstream": "nowhere"}, 400, "host:port"),
    ("POST", "/proxies", {"name": "x", "upstream": "h:99999"}, 400, "invalid port"),
    (
        "POST",
        "/proxies",
        {"name": "x", "upstream": "127.0.0.1:1", "listen": "0.0.0.0:0"},
        400,
        "loopback only",
    ),
    (
        "POST",
        "/proxies",
        {"name": "x", "upstream": "127.0.0.1:1", "listen": "10.1.2.3:0"},
        400,
        "loopback only",
    ),
    ("POST", "/proxies", {"name": "x", "upstream": "a:1", "enabled": "yes"}, 400, "enabled"),
    ("POST", "/proxies", b"{not json", 400, "bad request body"),
    ("POST", "/proxies", [1, 2], 400, "JSON object"),
    ("GET", "/proxies/ghost", None, 404, "proxy not found"),
    ("DELETE", "/proxies/ghost", None, 404, "proxy not found"),
    ("POST", "/proxies/ghost", {"enabled": False}, 404, "proxy not found"),
    ("PATCH", "/proxies/svc", {"enabled": "no"}, 400, "enabled"),
    ("PATCH", "/proxies/svc", {"listen": "8.8.8.8:53"}, 400, "loopback only"),
    ("GET", "/proxies/ghost/toxics", None, 404, "proxy not found"),
    ("POST", "/proxies/ghost/toxics", {"type": "latency"}, 404, "proxy not found"),
    ("POST", "/proxies/svc/toxics", {"type": "earthquake"}, 400, "invalid toxic type"),
    ("POST", "/proxies/svc/toxics", {"type": "latency", "stream": "up"}, 400, "stream"),
    ("POST", "/proxies/svc/toxics", {"type": "latency", "toxicity": 2}, 400, "toxicity"),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "latency", "attributes": {"latency": -5}},
        400,
        "attributes.latency",
    ),
    (
        "POST",
        "/proxies/svc/toxics",
        {"type": "bandwidth", "attributes": {"rate": "fast"}},
        400,
        "valid integer",
    ),
    ("POST", "/proxies/svc/toxics", {"type": "latency", "name": "slow"}, 409, "already exists"),
    ("POST", "/proxies/svc/toxics", b"", 400, "bad request body"),
    ("GET", "/proxies/svc/toxics/ghost", None, 404, "toxic not found"),
    ("PATCH", "/proxies/svc/toxics/ghost", {"toxicity": 0.5}, 404, "toxic not found"),
    ("PATCH", "/proxies/svc/toxics/slow", {"toxicity": -1}, 400, "toxicity"),
    ("PATCH", "/proxies/svc/toxics/slow", {"stream": "upstream"}, 400, "cannot be changed"),
    ("DELETE", "/proxies/svc/toxics/ghost", None, 404, "toxic not found"),
    ("POST", "/populate", {"name": "x"}, 400, "JSON array"),
    ("POST", "/populate", [{"name": "x", "upstream": "a:b"}], 400, "proxies[0].upstream"),
    ("GET", "/nothing-here", None, 404, "not found"),
    ("PUT", "/proxies", {}, 405, "method not allowed"),
]


async def _send(client: httpx2.AsyncClient, method: str, path: str, body: Any) -> httpx2.Response:
    if isinstance(body, bytes):
        return await client.request(method, path, content=body)
    if body is None:
        return await client.request(method, path)
    return await client.request(method, path, json=body)


async def test_bad_requests_get_toxiproxy_statuses_and_the_proxy_keeps_working() -> None:
    async with echo_server() as echo, proxy_server() as (_server, api):
        proxy = await api(lambda t: t.create(upstream=echo.address, name="svc"))
        await api(
            lambda t: t.get_proxy("svc").add_toxic(
                type="latency", name="slow", attributes={"latency": 0}
            )
        )
        reader, writer = await connect(proxy.listen)
        base = f"http://{api.host}:{api.port}"
        async with httpx2.AsyncClient(base_url=base) as client:
            for method, path, body, status, words in BAD_REQUESTS:
                response = await _send(client, method, path, body)
                where = f"{method} {path} {body!r}"
                assert response.status_code == status, (where, response.text)
                payload = response.json()
                assert payload["status"] == status, where
                assert words in payload["error"], (where, payload["error"])
                # Every bad request leaves the proxy relaying on its live connection.
                assert await roundtrip(reader, writer, b"alive") == b"alive"
            listed = (await client.get("/proxies")).json()
        assert list(listed) == ["svc"]
        assert [t["name"] for t in listed["svc"]["toxics"]] == ["slow"]
        await close(writer)


async def test_toxiproxy_python_sees_its_exceptions() -> None:
    async with echo_server() as echo, proxy_server() as (_server, api):
        await api(lambda t: t.create(upstream=echo.address, name="svc"))
        with pytest.raises(ProxyExists):
            await api(lambda t: t.create(upstream=echo.address, name="svc"))
        with pytest.raises(InvalidToxic):
            await api(lambda t: t.get_proxy("svc").add_toxic(type="earthquake"))
        with pytest.raises(NotFound):
            await api(lambda t: t.get_proxy("svc").destroy_toxic("ghost"))
        await api(lambda t: t.get_proxy("svc").destroy())
        assert await api(lambda t: t.proxies()) == {}


async def test_crud_statuses_and_bodies() -> None:
    async with echo_server() as echo, proxy_server() as (_server, api):
        base = f"http://{api.host}:{api.port}"
        async with httpx2.AsyncClient(base_url=base) as client:
            created = await client.post(
                "/proxies", json={"name": "svc", "upstream": echo.address, "enabled": False}
            )
            assert created.status_code == 201
            assert created.json() == {
                "name": "svc",
                "listen": "127.0.0.1:0",
                "upstream": echo.address,
                "enabled": False,
                "toxics": [],
            }
            toxic = await client.post(
                "/proxies/svc/toxics",
                json={"type": "slicer", "stream": "upstream", "attributes": {"delay": 10}},
            )
            assert toxic.status_code == 200
            assert toxic.json() == {
                "name": "slicer_upstream",
                "type": "slicer",
                "stream": "upstream",
                "toxicity": 1.0,
                "attributes": {"average_size": 0, "size_variation": 0, "delay": 10},
            }
            patched = await client.patch(
                "/proxies/svc/toxics/slicer_upstream",
                json={"toxicity": 0.25, "attributes": {"average_size": 64}},
            )
            assert patched.json()["toxicity"] == 0.25
            assert patched.json()["attributes"]["average_size"] == 64
            assert patched.json()["attributes"]["delay"] == 10
            got = await client.get("/proxies/svc/toxics/slicer_upstream")
            assert got.json() == patched.json()

            enabled = await client.patch("/proxies/svc", json={"enabled": True})
            assert enabled.status_code == 200
            listen = enabled.json()["listen"]
            assert enabled.json()["enabled"] is True
            assert not listen.endswith(":0")
            reader, writer = await connect(listen)
            assert await roundtrip(reader, writer, b"x" * 300) == b"x" * 300
            await close(writer)

            populated = await client.post(
                "/populate",
                json=[
                    {"name": "svc", "upstream": echo.address, "listen": listen},
                    {"name": "other", "upstream": echo.address},
                ],
            )
            assert populated.status_code == 201
            names = [p["name"] for p in populated.json()["proxies"]]
            assert names == ["svc", "other"]
            # An identical proxy is kept (with its toxics); a new one is created.
            assert populated.json()["proxies"][0]["toxics"] != []

            assert (await client.delete("/proxies/svc/toxics/slicer_upstream")).status_code == 204
            assert (await client.delete("/proxies/other")).status_code == 204
            assert (await client.post("/reset")).status_code == 204
            version = await client.get("/version")
            assert version.text == "2.12.0"
            assert list((await client.get("/proxies")).json()) == ["svc"]
