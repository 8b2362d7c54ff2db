"""Run records: one envelope for every source, read back strictly, and documented.

``docs/records.md`` lists every kind each source writes: the kinds the code writes are read
from the code itself (``ast``), so a new kind without its line in the doc fails here.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import get_args

import pytest

from fake_servers.anthropic.journal import Journal, JournalRecord
from fake_servers.mcp._events import EventKind, EventLog
from harness.errors import ConfigError
from harness.faults.records import FaultRecorder
from harness.records import ENVELOPE, SOURCES, Record, read_records
from harness.runtime.events import RuntimeEvents

# The checkout's sources and docs (the package may be installed elsewhere, without docs/).
ROOT = Path(__file__).resolve().parents[2] / "harness"
DOC = ROOT.parent / "docs" / "records.md"


class _Clock:
    def now(self) -> float:
        return 2.5

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("no waits here")


def _written(tmp_path: Path) -> list[dict[str, object]]:
    """One record of each source, as its writer serializes it."""
    clock = _Clock()
    runtime = RuntimeEvents(clock).record("call_started", server="ssh", tool="run")
    server = EventLog().append("request", time=1.0, server="ssh", tool="run", process=7, wall=9.0)
    fault = FaultRecorder(clock=clock).record("applied", type="kill", target="ssh", after=1.0)
    journal = Journal(path=tmp_path / "journal.jsonl")
    request = JournalRecord(seq=1, time=3.0, method="POST", endpoint="/v1/messages", request_id="r")
    journal.begin(request)
    journal.finish(request)
    journal.close()
    return [runtime.to_json(), server.to_json(), fault.to_json(), request.to_json()]


def test_every_source_writes_the_one_envelope(tmp_path: Path) -> None:
    rows = _written(tmp_path)
    assert [(r["source"], r["kind"], r["time"]) for r in rows] == [
        ("runtime", "call_started", 2.5),
        ("server", "request", 1.0),
        ("fault", "applied", 2.5),
        ("api", "request", 3.0),
    ]
    # The envelope comes first, in one order, whatever the source.
    for row in rows:
        head = [key for key in row if key in ENVELOPE]
        assert list(row)[: len(head)] == head
        assert head == [key for key in ENVELOPE if key in row]
    assert (rows[1]["wall"], rows[1]["process"], rows[1]["server"]) == (9.0, 7, "ssh")
    assert rows[2]["after"] == 1.0
    assert not {"t", "event", "action"} & set(rows[2])
    # The journal file holds the same record, and reads back into the same journal record.
    (line,) = read_records(tmp_path / "journal.jsonl")
    assert line == rows[3]
    assert JournalRecord.from_json(line).to_json() == rows[3]


def test_a_record_round_trips_and_keeps_its_payload_apart() -> None:
    row = {"source": "server", "kind": "crashed", "time": 4, "seq": 3, "detail": {"how": "exit"}}
    record = Record.from_json(row)
    assert (record.source, record.kind, record.time, record.seq) == ("server", "crashed", 4.0, 3)
    assert record.payload == {"detail": {"how": "exit"}}
    assert record.to_json() == {**row, "time": 4.0}
    with pytest.raises(ValueError, match="envelope"):
        Record("runtime", "x", 0.0, payload={"time": 1}).to_json()


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"kind": "request", "time": 0}, "source"),
        ({"source": "faults", "kind": "applied", "time": 0}, "source"),
        ({"source": "fault", "time": 0}, "kind"),
        ({"source": "fault", "kind": "applied", "t": 0.5}, "time"),
        ({"source": "api", "kind": "request", "time": True}, "time"),
        ({"source": "api", "kind": "request", "time": 0, "seq": "1"}, "seq"),
    ],
)
def test_a_line_that_is_not_a_record_is_refused_by_name(
    tmp_path: Path, line: dict[str, object], field: str
) -> None:
    path = tmp_path / "events.jsonl"
    good = {"source": "runtime", "kind": "connected", "time": 0.0, "seq": 0}
    path.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ConfigError, match=rf"events.jsonl:2, field '{field}'"):
        read_records(path)


# -- the doc lists every kind the code writes ------------------------------------------------


def _calls(paths: list[Path]) -> list[tuple[str, ast.Call]]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                found.append((name, node))
    return found


def _literals(node: ast.expr | None) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _literals(node.body) | _literals(node.orelse)
    return set()


def _runtime_kinds() -> set[str]:
    """First arguments of ``<...events>.record("kind", ...)`` anywhere in the harness."""
    return {
        kind
        for name, call in _calls(list(ROOT.rglob("*.py")))
        if name == "record"
        and isinstance(call.func, ast.Attribute)
        and "events" in ast.unparse(call.func.value)
        and call.args
        for kind in _literals(call.args[0])
    }


def _fault_kinds() -> set[str]:
    """Kinds handed to the fault recorder and its helpers (first argument, ``action=`` or the
    default of an ``action`` parameter)."""
    paths = [*(ROOT / "faults").rglob("*.py"), ROOT / "scenarios" / "fault_wiring.py"]
    helpers = {"record", "_record", "_record_change", "_record_toxic", "_on_event"}
    kinds: set[str] = set()
    for name, call in _calls(paths):
        if name in helpers:
            kinds |= _literals(call.args[0]) if call.args else set()
            kinds |= {k for kw in call.keywords if kw.arg == "action" for k in _literals(kw.value)}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name in helpers:
                args = node.args.kwonlyargs
                for arg, default in zip(args, node.args.kw_defaults, strict=True):
                    if arg.arg == "action":
                        kinds |= _literals(default)
    return kinds


def _documented() -> dict[str, set[str]]:
    """The kinds in the first column of each source's table in ``docs/records.md``."""
    out: dict[str, set[str]] = {}
    section = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## `(\w+)`", line)
        if heading:
            section = heading.group(1)
            out[section] = set()
        elif section and line.startswith("| `"):
            out[section] |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
    return out


def test_the_doc_lists_every_kind_of_every_source() -> None:
    documented = _documented()
    assert set(documented) == set(SOURCES)
    written = {
        "runtime": _runtime_kinds(),
        "server": set(get_args(EventKind)),
        "fault": _fault_kinds(),
        "api": {"request"},
    }
    assert len(written["runtime"]) > 20
    assert {"applied", "injected"} <= written["fault"]
    assert written == documented
