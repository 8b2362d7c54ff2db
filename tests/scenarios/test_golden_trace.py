"""A golden trace: one short scenario's trace, checked in and compared by meaning.

The meaning of a trace is its span tree: each span's name, the service that emitted it, its
status, its events' names and its key attributes (what was called, by whom, how it ended), and
its children in start order. Ids, timestamps, token counts and protocol versions are left out:
a change there is no change of meaning. A change of meaning (a span lost, re-parented, renamed
or ending otherwise) fails this test; when it is intended, rewrite the file with
``python tests/scenarios/test_golden_trace.py`` and review the diff.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.scenarios import resolve, run_scenario
from harness.scenarios.artifacts import write_run
from harness.telemetry.otlp_json import FlatSpan, read_trace_file

GOLDEN = Path(__file__).parent / "golden" / "orphaned_tool_block.buggy.json"

KEY_ATTRIBUTES = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.agent.name",
        "gen_ai.tool.name",
        "gen_ai.request.model",
        "gen_ai.response.finish_reasons",
        "mcp.method.name",
        "http.route",
        "http.response.status_code",
        "error.type",
        "harness.mcp.server",
        "harness.agent.stop",
        "harness.context_id",
        "harness.compaction.outcome",
        "harness.compaction.reason",
        "harness.compaction.stop_reason",
        "harness.compaction.open_tool_calls",
    }
)


def meaning(spans: list[FlatSpan]) -> list[dict[str, Any]]:
    """The span forest of ``spans`` without ids or times (roots and children in start order)."""
    ids = {span["span_id"] for span in spans}
    children: dict[str | None, list[FlatSpan]] = {}
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children.setdefault(parent, []).append(span)

    def node(span: FlatSpan) -> dict[str, Any]:
        return {
            "name": span["name"],
            "service": span["service"],
            "status": span["status"],
            "events": [event["name"] for event in span["events"]],
            "attributes": {
                key: value
                for key, value in sorted(span["attributes"].items())
                if key in KEY_ATTRIBUTES
            },
            "children": level(span["span_id"]),
        }

    def level(parent: str | None) -> list[dict[str, Any]]:
        # Spans that start at the same (virtual) instant are put in a fixed order by content.
        nodes = [(span["start_ns"], node(span)) for span in children.get(parent, [])]
        nodes.sort(key=lambda pair: (pair[0], json.dumps(pair[1], sort_keys=True)))
        return [tree for _, tree in nodes]

    return level(None)


def current() -> list[dict[str, Any]]:
    scenario, _ = resolve("orphaned_tool_block")
    with tempfile.TemporaryDirectory() as root:
        run_dir = write_run(run_scenario(scenario, policy="buggy", seed=0), scenario, Path(root))
        return meaning(read_trace_file(Path(run_dir) / "trace.jsonl"))


def test_the_trace_of_a_short_scenario_means_what_it_meant() -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert current() == expected


def test_meaning_sees_structure_and_ignores_ids_and_times() -> None:
    def span(span_id: str, parent: str, name: str, start: int, **attributes: Any) -> FlatSpan:
        return {
            "trace_id": "t" * 32,
            "span_id": span_id,
            "parent_id": parent,
            "name": name,
            "kind": 1,
            "start_ns": start,
            "end_ns": start + 5,
            "attributes": attributes,
            "events": [],
            "status": 0,
            "status_message": "",
            "service": "svc",
            "scope": "s",
        }

    spans = [
        span("a", "", "root", 0),
        span("b", "a", "second", 2, **{"gen_ai.tool.name": "x", "jsonrpc.request.id": "1"}),
        span("c", "a", "first", 1),
    ]
    renumbered = [
        span("9", "", "root", 100),
        span("8", "9", "second", 102, **{"gen_ai.tool.name": "x", "jsonrpc.request.id": "7"}),
        span("7", "9", "first", 101),
    ]
    forest = meaning(spans)
    assert forest == meaning(renumbered)
    assert [child["name"] for child in forest[0]["children"]] == ["first", "second"]
    assert forest[0]["children"][1]["attributes"] == {"gen_ai.tool.name": "x"}
    reparented = [*spans[:2], span("c", "b", "first", 1)]
    assert meaning(reparented) != forest


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(current(), indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {GOLDEN}\n")
