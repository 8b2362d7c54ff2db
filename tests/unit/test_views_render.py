"""The terminal waterfall and the HTML page drawn from a saved run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from harness.scenarios import resolve, run_scenario
from harness.scenarios.artifacts import write_run
from harness.views import RunView, build_view, write_report
from harness.views._time import RunClock, fmt
from harness.views.html import render_html
from harness.views.terminal import render


def _saved(name: str, policy: str, root: Path) -> Path:
    scenario, _ = resolve(name)
    return write_run(run_scenario(scenario, policy=policy), scenario, root)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cascade_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _saved("cascade", "buggy", tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def cascade(cascade_dir: Path) -> RunView:
    return build_view(cascade_dir)


def _text(view: RunView, width: int, focus: str | None = None) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    render(view, console, focus=focus)  # type: ignore[arg-type]
    console.file.close()
    return console.export_text()


@pytest.mark.parametrize("width", [80, 120, 200])
def test_waterfall_fits_the_width(cascade: RunView, width: int) -> None:
    lines = _text(cascade, width).splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    text = "\n".join(lines)
    for lane in ("● main", "● A", "● B", "■ ssh (mcp)", "A: mem_ssh", "B: mem_ssh"):
        assert lane in text
    assert "↻" in text
    assert "★ no_reconnect_while_in_flight" in text
    assert "reconnect performed (timeout, in flight 1)" in text


def test_waterfall_highlights_the_deciding_evidence(cascade: RunView) -> None:
    console = Console(width=100, record=True, force_terminal=True, color_system="standard")
    with console.capture() as capture:
        render(cascade, console)
    ansi = capture.get()
    evidence = "\x1b[1;30;43m"  # bold black on yellow
    highlighted = [line for line in ansi.splitlines() if evidence in line]
    assert any("↻ ssh performed" in line for line in highlighted)
    assert any("in_flight=1" in line for line in highlighted)


def test_focus_server_hides_agents_and_agent_hides_servers(cascade: RunView) -> None:
    server = _text(cascade, 100, "server")
    assert "■ ssh (mcp)" in server
    assert "● main" not in server
    assert "invoke_agent" not in server
    agent = _text(cascade, 100, "agent")
    assert "● B" in agent
    assert "■ ssh" not in agent
    assert "tools/list" not in agent


def test_focus_fault_keeps_errors_and_evidence_only(cascade: RunView) -> None:
    text = _text(cascade, 100, "fault")
    assert "execute_tool mem_ssh" in text
    assert "notifications/initialized" not in text
    assert "orphaned connection" in text


def test_html_is_self_contained_and_names_lanes_and_markers(cascade: RunView) -> None:
    page = render_html(cascade)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.IGNORECASE)
    assert "<link" not in page
    assert " src=" not in page
    for lane in ("agent:main", "agent:A", "agent:B", "server:ssh"):
        assert f'data-lane="{lane}"' in page
    assert page.count('class="mk mk-reconnect err deciding"') == 1
    assert page.count('class="mk mk-reconnect"') == 1
    assert "data-oracle='no_reconnect_while_in_flight'" in page
    assert "Every API request was accepted." in page
    assert render_html(cascade) == page  # deterministic: same run, same bytes


def test_html_escapes_everything_from_files(tmp_path: Path, cascade_dir: Path) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    for name in ("trace.jsonl", "events.jsonl", "journal.jsonl"):
        (tmp_path / name).write_bytes((cascade_dir / name).read_bytes())
    meta = json.loads((cascade_dir / "run.json").read_text())
    meta["explanation"] = hostile
    meta["scenario"] = hostile
    meta["oracles"][0]["explanation"] = hostile
    meta["oracles"][0]["evidence"][0]["server"] = hostile
    (tmp_path / "run.json").write_text(json.dumps(meta))
    events = (tmp_path / "events.jsonl").read_text().replace('"ssh"', json.dumps(hostile))
    (tmp_path / "events.jsonl").write_text(events)
    page = render_html(build_view(tmp_path))
    assert hostile not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_write_report_writes_report_html(cascade_dir: Path) -> None:
    path = write_report(cascade_dir)
    assert path == cascade_dir / "report.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250 ms"),
        (1.5, "1.5 s"),
        (150.0, "150 s"),
        (5400.0, "1 h 30 min"),
        (46800.2, "13 h 00 min"),
    ],
)
def test_durations_read_well(seconds: float, text: str) -> None:
    assert fmt(seconds) == text


@pytest.mark.parametrize(
    ("start", "end", "seconds", "text"),
    [
        ("2026-11-27T07:00:00Z", 185.0, 150.07304032142633, "150.1 s"),
        ("2026-11-27T07:00:00Z", 185.0, 0.25, "250 ms"),
        ("2026-11-27T07:00:00Z", 46800.0, 46800.0, "20:00:00"),
        ("2026-11-27T07:00:00Z", 46800.0, 46800.2, "20:00:00.2"),
        ("2026-11-27T07:00:00Z", 90000.0, 90000.0, "08:00:00 (+1 d)"),
        (None, 46800.0, 46800.0, "T+13:00:00"),
    ],
)
def test_moments_read_on_the_scenarios_clock(
    start: str | None, end: float, seconds: float, text: str
) -> None:
    assert RunClock.of(start, end).at(seconds) == text


@pytest.fixture(scope="module")
def scope_leak_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _saved("scope_leak", "buggy", tmp_path_factory.mktemp("runs"))


def test_a_long_run_reads_its_moments_as_the_time_of_day(scope_leak_dir: Path) -> None:
    # The blog review runs thirteen hours after the 07:00 start: at 20:00.
    view = build_view(scope_leak_dir)
    text = _text(view, 100)
    assert "run clock 20:00:00 → 20:00:00" in text
    assert "13:00" not in text
    assert "time=20:00:00" in text  # the deciding evidence
    page = render_html(view)
    assert "run clock 20:00:00 → 20:00:00" in page
    assert ">20:00:00</div>" in page  # a tick
    assert "13:00" not in page
    assert "data-origin=" in page  # the script draws its finer ticks the same way


def test_a_server_lane_peak_counts_instant_calls_the_same_everywhere(
    scope_leak_dir: Path,
) -> None:
    view = build_view(scope_leak_dir)
    assert view.lane("server", "chat").peak == 1
    assert re.search(r"■ chat \(mcp\) +.* peak 1\n", _text(view, 100))
    assert "(peak 1 in flight)" in render_html(view)


@pytest.mark.parametrize("width", [80, 100])
def test_an_error_word_is_read_whole(cascade: RunView, width: int) -> None:
    text = _text(cascade, width)
    assert re.search(r"B: mem_ssh .*connection_closed\n", text), text


def test_evidence_numbers_are_rounded(tmp_path: Path, cascade_dir: Path) -> None:
    # A live run's evidence holds real-time floats.
    copy = tmp_path / "run"
    copy.mkdir()
    for item in cascade_dir.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    meta = json.loads((copy / "run.json").read_text())
    meta["oracles"][0]["evidence"][0]["time"] = 150.07304032142633
    meta["oracles"][0]["evidence"][0]["ratio"] = 0.3333333333333333
    (copy / "run.json").write_text(json.dumps(meta))
    view = build_view(copy)
    for text in (_text(view, 120), render_html(view)):
        assert "150.07304" not in text
        assert "0.33333" not in text
        assert "time=150.1 s" in text
        assert "ratio=0.3333" in text


def test_the_report_leaves_room_after_a_deciding_moment_at_the_runs_end(
    cascade: RunView,
) -> None:
    page = render_html(cascade)
    end = float(re.search(r"data-end='([0-9.]+)'", page).group(1))  # type: ignore[union-attr]
    assert cascade.end == 150.0
    assert end > 160  # the reconnects at 150 s are not at the edge
    assert "id='zoom-deciding'" in page


def test_the_run_table_keeps_every_column_at_80_columns() -> None:
    from harness.scenarios.cli import _table

    outcomes = []
    for name in ("orphaned_tool_block_parallel", "scope_leak_nested_subagent"):
        scenario, source = resolve(name)
        outcome = run_scenario(scenario, policy="buggy", source=source)
        outcome.run_dir = Path("runs") / name
        outcomes.append(outcome)
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    _table(outcomes, console=console)
    console.file.close()
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert lines[0].split() == [
        "scenario", "policy", "seed", "outcome", "deciding", "oracle", "virtual", "wall",
    ]  # fmt: skip
    rows = [line for line in lines[1:] if " reproduced " in line]
    assert len(rows) == 2
    assert all(re.search(r"\d+ ms$", row.rstrip()) for row in rows), rows
