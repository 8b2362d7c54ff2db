"""The interposer's control API (Toxiproxy routes for its one proxy, plus ``/faults``), served
in process over ASGI: status codes, error bodies and the changes it makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from harness.chaos_random import ChaosRandom
from harness.clock import LoopClock
from harness.faults.interposer import Interposer
from harness.faults.interposer_api import build_control_app
from harness.faults.plan import FaultPlan
from harness.faults.records import FaultRecorder


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx2.AsyncClient, Interposer, FaultRecorder]]:
    recorder = FaultRecorder(clock=LoopClock())
    plan = FaultPlan.model_validate([{"type": "drop", "name": "planned", "match": {"nth": 2}}])
    interposer = Interposer(
        ["my-server", "--flag"],
        plan=plan,
        name="mcp",
        clock=LoopClock(),
        rng=ChaosRandom(0),
        recorder=recorder,
    )
    transport = httpx2.ASGITransport(app=build_control_app(interposer))
    async with httpx2.AsyncClient(transport=transport, base_url="http://control") as client:
        yield client, interposer, recorder


async def test_the_interposer_is_one_toxiproxy_proxy(api: Any) -> None:
    http, interposer, _ = api
    assert (await http.get("/version")).text == "2.12.0"
    proxy = {
        "name": "mcp",
        "listen": "stdio",
        "upstream": "my-server --flag",
        "enabled": True,
        "toxics": [],
    }
    assert (await http.get("/proxies")).json() == {"mcp": proxy}
    assert (await http.get("/proxies/mcp")).json() == proxy
    for method, path in [("POST", "/proxies"), ("DELETE", "/proxies/mcp"), ("POST", "/populate")]:
        refused = await http.request(method, path, json={"name": "x", "upstream": "1:2"})
        assert refused.status_code == 400
        assert "stdio interposer 'mcp' only" in refused.json()["error"]
    missing = await http.get("/proxies/other/toxics")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "field 'name': proxy not found (got 'other')", "status": 404},
    )
    assert interposer.command == ["my-server", "--flag"]


async def test_toxics_are_added_changed_and_removed_live(api: Any) -> None:
    http, interposer, recorder = api
    created = await http.post(
        "/proxies/mcp/toxics", json={"type": "latency", "attributes": {"latency": 50}}
    )
    assert created.status_code == 200
    assert created.json()["name"] == "latency_downstream"
    assert [spec.name for spec in interposer.toxics] == ["latency_downstream"]
    duplicate = await http.post("/proxies/mcp/toxics", json={"type": "latency"})
    assert duplicate.status_code == 409
    bad = await http.post("/proxies/mcp/toxics", json={"type": "latency", "toxicity": 3})
    assert bad.status_code == 400
    assert "toxicity" in bad.json()["error"]
    changed = await http.patch(
        "/proxies/mcp/toxics/latency_downstream", json={"attributes": {"jitter": 5}}
    )
    assert changed.json()["attributes"] == {"latency": 50, "jitter": 5}
    assert (await http.delete("/proxies/mcp/toxics/latency_downstream")).status_code == 204
    assert (await http.delete("/proxies/mcp/toxics/latency_downstream")).status_code == 404
    assert [(r.kind, r.trigger) for r in recorder.records] == [
        ("added", "api"),
        ("updated", "api"),
        ("removed", "api"),
    ]


async def test_frame_faults_through_the_faults_extension(api: Any) -> None:
    http, interposer, _ = api
    listed = (await http.get("/proxies/mcp/faults")).json()
    assert [f["name"] for f in listed] == ["planned"]
    added = await http.post(
        "/proxies/mcp/faults",
        json={"type": "kill", "name": "boom", "signal": "SIGTERM", "match": {"method": "x"}},
    )
    assert added.status_code == 201
    assert added.json()["signal"] == "SIGTERM"
    assert [f.name for f in interposer.engine.faults] == ["planned", "boom"]
    for body, status, message in [
        ({"type": "kill", "signal": "SIGTERM", "match": {}}, 400, "needs a name"),
        ({"type": "kill", "name": "k", "at": -1}, 400, "field 'at'"),
        ({"type": "toxic", "name": "t", "toxic": {"type": "latency"}}, 400, "/toxics"),
        ({"type": "nope", "name": "n"}, 400, "does not match any of the expected tags"),
        ({"type": "drop", "name": "boom", "match": {}}, 409, "fault already exists"),
    ]:
        response = await http.post("/proxies/mcp/faults", json=body)
        assert response.status_code == status, body
        assert message in response.json()["error"]
    assert (await http.delete("/proxies/mcp/faults/boom")).status_code == 204
    assert (await http.delete("/proxies/mcp/faults/boom")).status_code == 404
    await http.post("/proxies/mcp/toxics", json={"type": "timeout"})
    assert (await http.post("/reset")).status_code == 204
    assert interposer.engine.faults == []
    assert list(interposer.toxics) == []
