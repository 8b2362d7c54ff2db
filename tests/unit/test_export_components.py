"""Regrouping a run's OTLP JSON into one resource per component."""

from __future__ import annotations

import copy
from typing import Any

from harness.scenarios import resolve, run_scenario
from harness.telemetry.components import regroup_by_service, service_names
from harness.telemetry.otlp_json import flatten


def _span(span_id: str, parent: str | None, name: str, kind: int, **attrs: str) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": "ab" * 16,
        "spanId": span_id * 16,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": "1",
        "endTimeUnixNano": "2",
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
    }
    if parent:
        span["parentSpanId"] = parent * 16
    return span


def _data(*scopes: tuple[str, list[dict[str, Any]]], service: str = "harness-runtime") -> Any:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        {"key": "telemetry.sdk.name", "value": {"stringValue": "opentelemetry"}},
                    ]
                },
                "scopeSpans": [{"scope": {"name": n}, "spans": s} for n, s in scopes],
            }
        ]
    }


def _service_of(grouped: Any) -> dict[str, str]:
    return {s["span_id"][0]: s["service"] for s in flatten(grouped)}


def test_each_component_gets_its_own_resource() -> None:
    data = _data(
        ("harness.runtime", [_span("1", None, "invoke_agent main", 1)]),
        (
            "harness.runtime",
            [_span("2", "1", "execute_tool vault_get", 1, **{"harness.mcp.server": "vault"})],
        ),
        ("mcp-python-sdk", [_span("3", "2", "MCP send tools/call vault_get", 3)]),
        ("mcp-python-sdk", [_span("4", "3", "tools/call vault_get", 2)]),
        ("fake_servers.anthropic", [_span("5", "1", "POST /v1/messages", 2)]),
        ("harness.faults.proxy", [_span("6", "1", "harness.fault", 1)]),
        (
            "harness.runtime",
            [_span("7", "1", "execute_tool ssh", 1, **{"harness.mcp.server": "ssh"})],
        ),
        ("fake_servers.mcp", [_span("8", "7", "tools/call mem_ssh", 2)]),
        # Under no span that names a server, with two servers in the run: unattributed.
        ("mcp-python-sdk", [_span("9", "1", "initialize", 2)]),
    )
    grouped = regroup_by_service(data)
    assert _service_of(grouped) == {
        "1": "harness-runtime",
        "2": "harness-runtime",
        "3": "harness-runtime",
        "4": "fake-mcp-vault",
        "5": "fake-anthropic",
        "6": "harness-proxy",
        "7": "harness-runtime",
        "8": "fake-mcp-ssh",
        "9": "fake-mcp",
    }
    assert service_names(grouped) == [
        "harness-runtime",
        "fake-anthropic",
        "fake-mcp",
        "fake-mcp-ssh",
        "fake-mcp-vault",
        "harness-proxy",
    ]
    # The other resource attributes are kept on every component's resource.
    for resource_spans in grouped["resourceSpans"]:
        keys = [a["key"] for a in resource_spans["resource"]["attributes"]]
        assert keys == ["service.name", "telemetry.sdk.name"]


def test_the_only_server_takes_the_spans_that_name_none() -> None:
    data = _data(
        ("harness.runtime", [_span("1", None, "invoke_agent main", 1)]),
        ("mcp-python-sdk", [_span("2", "1", "initialize", 2)]),
        (
            "harness.runtime",
            [_span("3", "1", "execute_tool chat", 1, **{"harness.mcp.server": "chat"})],
        ),
    )
    assert _service_of(regroup_by_service(data))["2"] == "fake-mcp-chat"


def test_spans_on_another_resource_keep_it() -> None:
    data = _data(("mcp-python-sdk", [_span("1", None, "tools/call x", 2)]), service="fake-mcp-ssh")
    assert _service_of(regroup_by_service(data)) == {"1": "fake-mcp-ssh"}


def test_a_sim_run_regroups_without_losing_or_changing_a_span() -> None:
    scenario, _ = resolve("cascade")
    trace = run_scenario(scenario, policy="fixed", seed=2).trace
    before = copy.deepcopy(trace)
    grouped = regroup_by_service(trace)
    assert trace == before  # the input is not modified
    assert regroup_by_service(grouped) == grouped
    assert service_names(grouped) == ["harness-runtime", "fake-anthropic", "fake-mcp-ssh"]

    def strip(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in s.items() if k != "service"} for s in spans]

    assert strip(flatten(grouped)) == strip(flatten(trace))
    servers = [s for s in flatten(grouped) if s["kind"] == 2 and s["scope"] == "mcp-python-sdk"]
    assert servers
    assert {s["service"] for s in servers} == {"fake-mcp-ssh"}
