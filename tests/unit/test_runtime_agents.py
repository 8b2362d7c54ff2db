"""The runtime end to end in memory: real anthropic SDK against the fake Messages API, real mcp
client against the fake MCP servers, spans collected by the OTel SDK.

Each policy pair is run both ways on the same scripts: the buggy policy must reproduce its bug,
the fixed one must hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
import yaml
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fake_servers.anthropic import FakeAnthropic, ModelScript
from harness.chaos_random import ChaosRandom
from harness.clock import LoopClock
from harness.runtime.config import RuntimeConfig, load_runtime_config
from harness.runtime.runtime import Runtime
from harness.scenarios.rig import Rig, reference_runtime


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _by_id(spans: Sequence[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}


def _parent_name(span: ReadableSpan, index: dict[int, ReadableSpan]) -> str | None:
    if span.parent is None or span.parent.span_id not in index:
        return None
    return index[span.parent.span_id].name


FAMILY_SCRIPT = {
    "agents": {
        "main": {
            "turns": [
                {
                    "text": "Splitting the work.",
                    "tool_use": [
                        {"name": "spawn_subagent", "input": {"task": "check web1", "name": "A"}},
                        {"name": "spawn_subagent", "input": {"task": "check db1", "name": "B"}},
                    ],
                },
                {"when": {"tool_result_for": "spawn_subagent"}, "text": "All: {tool_results}"},
            ]
        },
        "A": {
            "turns": [
                {"tool_use": [{"name": "mem_ssh", "input": {"host": "web1", "command": "up"}}]},
                {"text": "A saw {tool_results}"},
            ]
        },
        "B": {
            "turns": [
                {"tool_use": [{"name": "mem_ssh", "input": {"host": "db1", "command": "up"}}]},
                {"text": "B saw {tool_results}"},
            ]
        },
    }
}

SSH_SCRIPT = {
    "tools": {
        "mem_ssh": {
            "match": [
                {"args": {"host": "web1"}, "then": {"latency": 5, "result": {"text": "web1 ok"}}},
                {"args": {"host": "db1"}, "then": {"latency": 2, "result": {"text": "db1 ok"}}},
            ]
        }
    }
}


async def test_parent_and_two_subagents_share_one_connection_and_nest_spans(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    config = RuntimeConfig.model_validate(
        {
            "api": {"fake_script": str(_write(tmp_path, "model.yaml", FAMILY_SCRIPT))},
            "servers": {
                "ssh": {"fake": "ssh", "script": str(_write(tmp_path, "ssh.yaml", SSH_SCRIPT))}
            },
        }
    )
    async with reference_runtime(config, rng=ChaosRandom(1)) as rig:
        rt = rig.rt
        result = await rig.run("check the fleet")
        connections = len(rt.host.live_connections("ssh"))
    assert result.main is not None
    assert result.main.stop == "end_turn", result.main.error
    assert "A saw web1 ok" in result.main.text
    assert "B saw db1 ok" in result.main.text
    assert connections == 1

    finished = spans.get_finished_spans()
    index = _by_id(finished)
    tree = sorted(
        (s.name, _parent_name(s, index))
        for s in finished
        if s.name.startswith(("invoke_agent", "execute_tool", "chat "))
    )
    assert tree == sorted(
        [
            ("invoke_agent main", None),
            ("chat claude-sonnet-4-6", "invoke_agent main"),
            ("chat claude-sonnet-4-6", "invoke_agent main"),
            ("execute_tool spawn_subagent", "invoke_agent main"),
            ("execute_tool spawn_subagent", "invoke_agent main"),
            ("invoke_agent A", "execute_tool spawn_subagent"),
            ("invoke_agent B", "execute_tool spawn_subagent"),
            ("chat claude-sonnet-4-6", "invoke_agent A"),
            ("chat claude-sonnet-4-6", "invoke_agent A"),
            ("chat claude-sonnet-4-6", "invoke_agent B"),
            ("chat claude-sonnet-4-6", "invoke_agent B"),
            ("execute_tool mem_ssh", "invoke_agent A"),
            ("execute_tool mem_ssh", "invoke_agent B"),
        ]
    )
    # One trace for the whole run, and the MCP client span sits under execute_tool.
    assert len({s.context.trace_id for s in finished}) == 1
    mcp_client = [s for s in finished if s.name.startswith("MCP send tools/call")]
    assert len(mcp_client) == 2
    assert {_parent_name(s, index) for s in mcp_client} == {"execute_tool mem_ssh"}
    tool_spans = [s for s in finished if s.name == "execute_tool mem_ssh"]
    assert all(str(s.attributes["gen_ai.tool.call.id"]).startswith("toolu_") for s in tool_spans)


def _orphan_config(tmp_path: Path, policy: str) -> RuntimeConfig:
    # A long result pushes the context over the threshold on the response that asks for the
    # second tool call; the compactor agent answers the summary request.
    model = {
        "agents": {
            "main": {
                "turns": [
                    {"tool_use": [{"name": "mem_ssh", "input": {"host": "h1", "command": "log"}}]},
                    {"tool_use": [{"name": "mem_ssh", "input": {"host": "h2", "command": "log"}}]},
                    {"text": "Done after {message_count} messages."},
                ]
            },
            "compactor": {"repeat": True, "turns": [{"text": "Earlier: read the h1 log."}]},
        }
    }
    ssh = {"tools": {"mem_ssh": {"default": {"result": {"text": "x" * 4000}}}}}
    return RuntimeConfig.model_validate(
        {
            "api": {"fake_script": str(_write(tmp_path, "model.yaml", model)), "max_retries": 0},
            "policies": {"compaction": policy},
            "compaction": {"threshold_tokens": 800, "keep_last": 1},
            "servers": {"ssh": {"fake": "ssh", "script": str(_write(tmp_path, "ssh.yaml", ssh))}},
        }
    )


async def test_eager_compaction_orphans_a_tool_result_and_the_api_rejects_it(
    tmp_path: Path,
) -> None:
    async with reference_runtime(_orphan_config(tmp_path, "eager"), rng=ChaosRandom(2)) as rig:
        rt = rig.rt
        result = await rig.run("read the logs")
        journal = rig.fake_api.journal.records if rig.fake_api else []
    assert result.main is not None
    assert result.main.stop == "error"
    assert result.main.error_type == "invalid_request_error"
    assert "unexpected `tool_use_id` found in `tool_result` blocks" in (result.main.error or "")
    compactions = rt.events.of_kind("compaction")
    assert compactions[0].data["stop_reason"] == "tool_use"
    assert compactions[0].data["outcome"] == "compacted"
    assert any(r.verdict != "ok" for r in journal)


async def test_between_turns_compaction_keeps_every_pair(tmp_path: Path) -> None:
    async with reference_runtime(
        _orphan_config(tmp_path, "between_turns"), rng=ChaosRandom(2)
    ) as rig:
        rt = rig.rt
        result = await rig.run("read the logs")
        journal = rig.fake_api.journal.records if rig.fake_api else []
    assert result.main is not None
    assert result.main.stop == "end_turn", result.main.error
    compactions = rt.events.of_kind("compaction")
    assert compactions
    assert all(c.data["open_tool_calls"] == [] for c in compactions)
    assert all(r.verdict == "ok" for r in journal)


def _scope_config(tmp_path: Path, policy: str) -> RuntimeConfig:
    model = {
        "agents": {
            "reviewer": {
                "turns": [
                    {"tool_use": [{"name": "chat_list_messages", "input": {"limit": 100}}]},
                    {"text": "Seen: {tool_results}"},
                ]
            }
        }
    }
    return RuntimeConfig.model_validate(
        {
            "api": {"fake_script": str(_write(tmp_path, "model.yaml", model)), "max_retries": 0},
            "policies": {"scope": policy},
            "servers": {"chat": {"fake": "chat"}},
            "agents": {"reviewer": {"context_id": "Blog"}},
            "main_agent": "reviewer",
            "scheduled": [
                {
                    "name": "blog_review",
                    "at": 3600,
                    "agent": "reviewer",
                    "context_id": "Blog",
                    "scope": "all",
                    "prompt": "What happened today worth a blog post?",
                }
            ],
        }
    )


@pytest.mark.parametrize(("policy", "sees_general"), [("inherit", False), ("explicit", True)])
async def test_scheduled_review_scope(tmp_path: Path, policy: str, sees_general: bool) -> None:
    config = _scope_config(tmp_path, policy)
    async with reference_runtime(config, rng=ChaosRandom(3)) as rig:
        rt = rig.rt
        # Scheduled at t=3600 on the runtime's clock: move the task forward for a real-time test.
        rt.config = config.model_copy(
            update={"scheduled": [config.scheduled[0].model_copy(update={"at": 0})]}
        )
        result = await rig.run()
        chat_events = rig.fakes["chat"].events.events
    review = result.tasks["blog_review"]
    assert review.stop == "end_turn", review.error
    assert ("General" in review.text) is sees_general
    assert "Blog" in review.text
    requests = [e for e in chat_events if e.kind == "request" and e.tool == "chat_list_messages"]
    assert requests[0].context_id == "Blog"
    assert (requests[0].arguments or {}).get("context_id") == (
        None if policy == "inherit" else "all"
    )


def test_config_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("servers:\n  ssh:\n    fake: ssh\n    timeout: -3\n", encoding="utf-8")
    from harness.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_runtime_config(path)
    text = str(info.value)
    assert f"{path}:4" in text
    assert "servers.ssh.timeout" in text
    assert "-3" in text


async def test_a_tool_call_that_raises_is_its_error_result_and_the_agents_go_on(
    tmp_path: Path, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.errors import RuntimeFailure

    config = RuntimeConfig.model_validate(
        {
            "api": {"fake_script": str(_write(tmp_path, "model.yaml", FAMILY_SCRIPT))},
            "servers": {
                "ssh": {"fake": "ssh", "script": str(_write(tmp_path, "ssh.yaml", SSH_SCRIPT))}
            },
        }
    )
    async with reference_runtime(config, rng=ChaosRandom(1)) as rig:
        rt = rig.rt
        real_call = rt.host.call_tool
        broken: list[str] = []

        async def call_tool(server: str, tool: str, arguments: Any, **kwargs: Any) -> Any:
            if arguments.get("host") == "web1":
                broken.append(tool)
                raise RuntimeFailure("the host broke in an unforeseen way")
            return await real_call(server, tool, arguments, **kwargs)

        monkeypatch.setattr(rt.host, "call_tool", call_tool)
        result = await rig.run("check the fleet")
        crashed = rt.events.of_kind("tool_crashed")
    assert broken == ["mem_ssh"]
    assert result.main is not None
    assert result.main.stop == "end_turn", result.main.error
    assert "B saw db1 ok" in result.main.text
    assert [e.data["tool"] for e in crashed] == ["mem_ssh"]
    assert "unforeseen" in crashed[0].data["error"]
    failed = [
        s
        for s in spans.get_finished_spans()
        if s.name == "execute_tool mem_ssh" and s.status.status_code.name == "ERROR"
    ]
    assert len(failed) == 1
    assert any(e.name == "exception" for e in failed[0].events)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("servers:\n  ../../x:\n    fake: ssh\n", "servers", "server name '../../x'"),
        ("servers:\n  a/b:\n    command: [cat]\n", "servers", "server name 'a/b'"),
        ("servers:\n  ssh:\n    fake: ssh\n    env: {A: b}\n", "servers.ssh", "env applies"),
        ("servers:\n  ssh:\n    fake: ssh\n    timeout: .inf\n", "servers.ssh.timeout", "finite"),
        ("max_tokens: 200000\n", "max_tokens", "less than or equal to 128000"),
        ("api:\n  base_url: http://127.0.0.1:1\n  timeout: 0\n", "api.timeout", "greater than 0"),
    ],
)
def test_config_refuses_unsafe_or_unbounded_values(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    from harness.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_runtime_config(path)
    assert info.value.field == field
    assert message in str(info.value)


async def test_one_llm_span_per_request_and_metrics_recorded(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    config = RuntimeConfig.model_validate(
        {
            "api": {"fake_script": str(_write(tmp_path, "model.yaml", FAMILY_SCRIPT))},
            "servers": {
                "ssh": {"fake": "ssh", "script": str(_write(tmp_path, "ssh.yaml", SSH_SCRIPT))}
            },
        }
    )
    async with reference_runtime(config, rng=ChaosRandom(1), meter_provider=meters) as rig:
        await rig.run("check the fleet")
        requests = len(rig.fake_api.journal.records) if rig.fake_api else 0
    finished = spans.get_finished_spans()
    index = _by_id(finished)
    chat = [s for s in finished if s.name.startswith("chat ")]
    assert len(chat) == requests == 6
    assert not [s for s in finished if s.name == "anthropic.messages.create"]
    server_spans = [s for s in finished if s.name == "POST /v1/messages"]
    assert {_parent_name(s, index) for s in server_spans} == {"chat claude-sonnet-4-6"}
    usage = chat[0].attributes or {}
    assert usage["gen_ai.usage.input_tokens"] > 0
    assert usage["gen_ai.response.finish_reasons"] == ("tool_use",)

    data = reader.get_metrics_data()
    assert data is not None
    names = {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {
        "harness.mcp.in_flight",
        "mcp.client.operation.duration",
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
    } <= set(names)
    in_flight = names["harness.mcp.in_flight"].data.data_points  # type: ignore[union-attr]
    assert [p.value for p in in_flight] == [0]  # every call counted in was counted out
    tokens = names["gen_ai.client.token.usage"].data.data_points  # type: ignore[union-attr]
    assert {p.attributes["gen_ai.token.type"] for p in tokens} == {"input", "output"}


async def test_vault_secrets_never_reach_spans_or_events(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    model = {
        "agents": {
            "main": {
                "turns": [
                    {"tool_use": [{"name": "vault_get", "input": {"name": "github_token"}}]},
                    {"text": "Got it."},
                ]
            }
        }
    }
    config = RuntimeConfig.model_validate(
        {
            "api": {"fake_script": str(_write(tmp_path, "model.yaml", model))},
            "servers": {"vault": {"fake": "vault"}},
        }
    )
    async with reference_runtime(config, rng=ChaosRandom(4)) as rig:
        rt = rig.rt
        result = await rig.run("fetch the token")
        secrets = rig.secrets()
        events = rt.events.events
    assert result.main is not None
    assert result.main.stop == "end_turn"
    assert any(s.startswith("ghp_") for s in secrets)
    text = repr(
        [
            (s.name, s.attributes, [e.attributes for e in s.events])
            for s in spans.get_finished_spans()
        ]
    )
    text += repr([e.to_json() for e in events])
    assert not [s for s in secrets if s in text]


async def test_a_refused_count_falls_back_to_one_token_per_character(tmp_path: Path) -> None:
    # An API-compatible server without count_tokens: the runtime measures by its bound instead
    # (never less than the real count), so it still compacts before the threshold.
    config = _orphan_config(tmp_path, "between_turns")
    assert config.policies.context_measure == "count_tokens"
    script = config.api.fake_script
    assert isinstance(script, str)
    fake = FakeAnthropic(ModelScript.load(script))
    refused: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/count_tokens"):
            refused.append(scope["path"])
            body = b'{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}'
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await fake.app(scope, receive, send)

    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://api")
    client = anthropic.AsyncAnthropic(
        api_key="sk-ant-test", base_url="http://api", max_retries=0, http_client=http
    )
    # The runtime takes its client as given; the rig builds the servers.
    rig = Rig.build(config, clock=LoopClock(), rng=ChaosRandom(2))
    async with http, rig:
        servers = await rig.server_specs(config)
        async with Runtime(config, client=client, servers=servers, rng=ChaosRandom(2)) as rt:
            result = await rt.run("read the logs")
    assert result.main is not None
    assert result.main.stop == "end_turn", result.main.error
    measured = [e.data for e in rt.events.of_kind("context_measured")]
    assert measured
    assert len(refused) == len(measured)
    assert all(not m["counted"] and "404 not_found_error" in m["error"] for m in measured)
    assert "compacted" in [c.data["outcome"] for c in rt.events.of_kind("compaction")]
    assert all(r.endpoint == "/v1/messages" and r.verdict == "ok" for r in fake.journal.records)
