"""The view model built from saved run directories: lanes, intervals, markers, evidence."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.scenarios import resolve, run_scenario
from harness.scenarios.artifacts import write_run
from harness.views import RunView, build_view


def _saved(name: str, policy: str, root: Path) -> Path:
    scenario, _ = resolve(name)
    return write_run(run_scenario(scenario, policy=policy), scenario, root)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        f"{name}-{policy}": _saved(name, policy, root)
        for name, policy in [
            ("cascade", "buggy"),
            ("cascade", "fixed"),
            ("orphaned_tool_block", "buggy"),
            ("scope_leak", "buggy"),
        ]
    }


@pytest.fixture(scope="module")
def cascade(runs: dict[str, Path]) -> RunView:
    return build_view(runs["cascade-buggy"])


def test_cascade_lanes_are_the_agents_in_tree_order_then_the_server(cascade: RunView) -> None:
    assert [(lane.kind, lane.name, lane.parent) for lane in cascade.lanes] == [
        ("agent", "main", None),
        ("agent", "A", "main"),
        ("agent", "B", "main"),
        ("server", "ssh", None),
    ]
    assert (cascade.start, cascade.end) == (0.0, 150.0)


def test_cascade_buggy_two_performed_reconnects_at_150s(cascade: RunView) -> None:
    reconnects = cascade.lane("server", "ssh").markers_of("reconnect")
    assert [(m.time, m.detail["decision"], m.detail["in_flight"]) for m in reconnects] == [
        (150.0, "performed", 1),
        (150.0, "performed", 0),
    ]
    first, second = reconnects
    # Tearing down under a live call is the bug: marked as an error and as the deciding evidence.
    assert first.error
    assert first.deciding
    assert set(first.evidence_of) == {
        "no_reconnect_while_in_flight",
        "at_most_one_reconnect_per_failure",
    }
    assert not second.deciding
    assert second.evidence_of == ("at_most_one_reconnect_per_failure",)


def test_cascade_in_flight_windows_and_calls(cascade: RunView) -> None:
    ssh = cascade.lane("server", "ssh")
    assert [(i.start, i.end, i.level) for i in ssh.of_kind("in_flight")] == [
        (0.0, 100.0, 1),
        (100.0, 150.0, 2),
    ]
    assert [(c.label, c.start, c.end, c.error, c.level) for c in ssh.of_kind("call")] == [
        ("A: mem_ssh", 0.0, 150.0, "timeout", 0),
        ("B: mem_ssh", 100.0, 150.0, "connection_closed", 1),
    ]
    # Both reconnects spawned a connection: generations 2 and 3 race, one is orphaned.
    assert [c.level for c in ssh.of_kind("connection")] == [1, 2, 3]
    assert ssh.of_kind("connection")[0].end == 150.0
    (leak,) = ssh.markers_of("leak")
    assert leak.error
    assert leak.evidence_of == ("no_leaked_processes",)


def test_cascade_agent_lanes_hold_their_calls(cascade: RunView) -> None:
    a = cascade.lane("agent", "A")
    assert [(t.label, t.error) for t in a.of_kind("tool")] == [("mem_ssh", "timeout")]
    assert len(a.of_kind("chat")) == 2
    (life,) = a.of_kind("agent")
    assert (life.start, life.end, life.error) == (0.0, 150.0, None)


def test_cascade_span_tree_marks_the_deciding_reconnect(cascade: RunView) -> None:
    deciding = [row for row in cascade.spans if row.deciding]
    assert [(r.name, r.attributes["harness.reconnect.reason"]) for r in deciding] == [
        ("harness.mcp.reconnect", "timeout")
    ]
    root = cascade.spans[0]
    assert (root.name, root.depth, root.category) == ("invoke_agent main", 0, "agent")
    # Depth-first: every row's parent is the nearest shallower row above it.
    assert all(b.depth <= a.depth + 1 for a, b in itertools.pairwise(cascade.spans))
    errors = {r.name for r in cascade.spans if r.error}
    assert "execute_tool mem_ssh" in errors


def test_cascade_verdicts(cascade: RunView) -> None:
    assert cascade.deciding is not None
    assert cascade.deciding.name == "no_reconnect_while_in_flight"
    assert "1 other call(s) were still in flight" in cascade.deciding.explanation
    assert {v.name: v.verdict for v in cascade.verdicts}["all_calls_resolved"] == "holds"
    assert cascade.api_errors == []
    assert cascade.meta["outcome"] == "reproduced"


def test_cascade_fixed_defers_then_performs_with_nothing_in_flight(runs: dict[str, Path]) -> None:
    view = build_view(runs["cascade-fixed"])
    reconnects = view.lane("server", "ssh").markers_of("reconnect")
    assert [(m.time, m.detail["decision"], m.detail["in_flight"]) for m in reconnects] == [
        (150.0, "deferred", 1),
        (180.0, "performed", 0),
    ]
    assert not any(m.error or m.deciding for m in reconnects)
    # A's tool call retried: two requests on the wire, the first timed out.
    calls = view.lane("server", "ssh").of_kind("call")
    assert [(c.label, c.start, c.end, c.error) for c in calls] == [
        ("A: mem_ssh", 0.0, 150.0, "TimeoutError"),
        ("B: mem_ssh", 100.0, 180.0, None),
        ("A: mem_ssh", 180.0, 185.0, None),
    ]


def test_orphaned_tool_block_compaction_and_pairing_error(runs: dict[str, Path]) -> None:
    view = build_view(runs["orphaned_tool_block-buggy"])
    main = view.lane("agent", "main")
    (compaction,) = main.markers_of("compaction")
    assert compaction.time == 4.0
    assert compaction.error  # compacted with a tool call open
    (api_error,) = main.markers_of("api_error")
    assert api_error.time == 6.0
    assert api_error.deciding
    assert api_error.ref == ("api", 5)
    (row,) = view.api_errors
    assert row["status"] == 400
    assert row["agent"] == "main"  # the journal row names no agent: found through traceparent
    assert "unexpected `tool_use_id`" in row["message"]
    assert [r.category for r in view.spans if r.deciding] == ["chat"]


def test_scope_leak_marks_the_implicit_scope(runs: dict[str, Path]) -> None:
    view = build_view(runs["scope_leak-buggy"])
    (scope,) = view.lane("agent", "reviewer").markers_of("scope")
    assert scope.deciding
    assert scope.error
    assert "scope=Blog (implicit)" in scope.label
    assert view.start == view.end == 46800.0
    assert view.lane("scheduler", "scheduler").markers_of("task")


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a run directory"):
        build_view(tmp_path / "nope")


def test_directory_without_run_json_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"run\.json"):
        build_view(tmp_path)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_bad_run_json_is_a_config_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(ConfigError, match=r"run\.json"):
        build_view(tmp_path)


def _minimal_run_json(oracles: list[dict[str, str]]) -> str:
    """The fields ``run.json`` cannot do without (the model fills in the rest)."""
    return json.dumps(
        {
            "scenario": "x",
            "policy": "buggy",
            "seed": 0,
            "outcome": "held",
            "oracles": oracles,
            "scenario_definition": {},
        }
    )


def test_bad_trace_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(_minimal_run_json([]))
    (tmp_path / "trace.jsonl").write_text('{"resourceSpans": []}\nnope\n')
    with pytest.raises(ConfigError, match=r"trace\.jsonl") as info:
        build_view(tmp_path)
    assert info.value.line == 2


def test_a_bare_run_json_gives_an_empty_view(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(
        _minimal_run_json([{"name": "o", "verdict": "holds", "explanation": ""}])
    )
    view = build_view(tmp_path)
    assert view.lanes == []
    assert view.spans == []
    assert [v.name for v in view.verdicts] == ["o"]


def _fault_span_line(trace_id: str, at_ns: int) -> str:
    def attr(key: str, value: str) -> dict[str, object]:
        return {"key": key, "value": {"stringValue": value}}

    span = {
        "traceId": trace_id,
        "spanId": "00000000000000f1",
        "name": "harness.fault",
        "kind": 1,
        "startTimeUnixNano": str(at_ns),
        "endTimeUnixNano": str(at_ns),
        "attributes": [
            attr("harness.fault.action", "applied"),
            attr("harness.fault.type", "latency"),
            attr("harness.fault.target", "ssh"),
        ],
    }
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [attr("service.name", "harness-proxy")]},
                    "scopeSpans": [{"scope": {"name": "harness.faults"}, "spans": [span]}],
                }
            ]
        }
    )


def test_fault_spans_and_injected_api_faults_are_marked(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    source = runs["cascade-buggy"]
    for name in ("run.json", "events.jsonl", "journal.jsonl", "trace.jsonl"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    first = json.loads((source / "trace.jsonl").read_text().splitlines()[0])
    span = first["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    root_start = min(
        int(s["startTimeUnixNano"])
        for rs in first["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    )
    with (tmp_path / "trace.jsonl").open("a") as fh:
        fh.write(_fault_span_line(span["traceId"], root_start + 42 * 10**9) + "\n")
    fault_row = {
        "source": "api",
        "kind": "request",
        "seq": 99,
        "time": 120.0,
        "status": 529,
        "agent": "B",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "fault": {"kind": "overloaded", "retry_after": None},
    }
    with (tmp_path / "journal.jsonl").open("a") as fh:
        fh.write(json.dumps(fault_row) + "\n")

    view = build_view(tmp_path)
    (fault,) = view.lane("faults", "faults").markers_of("fault")
    assert (fault.time, fault.label, fault.error) == (42.0, "applied latency → ssh", True)
    (injected,) = view.lane("agent", "B").markers_of("fault")
    assert injected.time == 120.0
    assert injected.label == "API 529 overloaded_error (injected overloaded)"
    assert view.api_errors[-1]["fault"] == "overloaded"
    assert [r.category for r in view.spans if r.name == "harness.fault"] == ["fault"]


def test_live_run_spans_are_put_on_the_scenario_clock(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """A live run's spans are in real time, its events in scenario time (``--time-scale``)."""
    source = runs["cascade-buggy"]
    for name in ("journal.jsonl", "trace.jsonl"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    meta = json.loads((source / "run.json").read_text())
    meta["mode"] = "live"
    meta["stats"] = {"time_scale": 0.5}
    meta["virtual_s"] = 300.0
    (tmp_path / "run.json").write_text(json.dumps(meta))
    events = [json.loads(line) for line in (source / "events.jsonl").read_text().splitlines()]
    with (tmp_path / "events.jsonl").open("w") as fh:
        for event in events:
            fh.write(json.dumps({**event, "time": event["time"] / 0.5}) + "\n")

    view = build_view(tmp_path)
    ssh = view.lane("server", "ssh")
    assert [(i.start, i.end, i.level) for i in ssh.of_kind("in_flight")] == [
        (0.0, 200.0, 1),
        (200.0, 300.0, 2),
    ]
    assert [(c.start, c.end) for c in ssh.of_kind("call")] == [(0.0, 300.0), (200.0, 300.0)]
    assert {m.time for m in ssh.markers_of("reconnect")} == {300.0}
    assert (view.start, view.end) == (0.0, 300.0)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"source": "runtime", "seq": 0, "time": "soon", "kind": "call_started"}, "'time'"),
        ({"seq": 0, "time": 1.0, "kind": "call_started"}, "events.jsonl:1, field 'source'"),
        (
            {"source": "runtime", "seq": 0, "time": 1.0, "kind": "connecting", "generation": "x"},
            "cannot read",
        ),
    ],
)
def test_values_of_the_wrong_shape_are_a_config_error(
    tmp_path: Path, event: dict[str, object], message: str
) -> None:
    (tmp_path / "run.json").write_text(_minimal_run_json([]))
    (tmp_path / "events.jsonl").write_text(json.dumps({"server": "s", **event}) + "\n")
    with pytest.raises(ConfigError, match=message):
        build_view(tmp_path)
