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
from harness.views._time import fmt
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
        (5400.0, "1:30:00"),
        (46800.2, "13:00:00.2"),
        (46800.99999, "13:00:01"),
    ],
)
def test_run_clock_times_read_well(seconds: float, text: str) -> None:
    assert fmt(seconds) == text
