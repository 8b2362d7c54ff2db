"""The cascade run's ``report.html`` in real headless Chromium: it loads with no console
message, its script's self-check passes, and the lanes and markers are in the DOM."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness.scenarios import resolve, run_scenario
from harness.scenarios.artifacts import write_run

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")


def _chromium(
    page: Path, profile: Path, *mode: str, fragment: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1000",
            *mode,
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (/usr/bin/chromium; Debian package chromium)")
    scenario, _ = resolve("cascade")
    run_dir = write_run(
        run_scenario(scenario, policy="buggy"), scenario, tmp_path_factory.mktemp("runs")
    )
    return run_dir / "report.html"


def test_report_loads_without_console_messages_and_shows_lanes(
    report: Path, tmp_path: Path
) -> None:
    proc = _chromium(report, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Chromium logs every console message and uncaught error as ":CONSOLE(" on stderr.
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    dom = proc.stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None
    assert 'data-selfcheck="ok"' in body.group(0), body.group(0)
    assert "data-js-errors" not in body.group(0)
    for lane in ("agent:main", "agent:A", "agent:B", "server:ssh"):
        assert f'data-lane="{lane}"' in dom
    assert len(re.findall(r'class="mk mk-reconnect[^"]*"', dom)) == 2
    assert 'class="mk mk-reconnect err deciding"' in dom
    assert 'class="mk mk-leak err"' in dom
    # The detail pane opens on the deciding evidence (the first reconnect, in flight 1).
    pane = dom[dom.index('<div id="detail-body">') :]
    assert '<span class="kv"><b>what</b> reconnect performed (timeout, in flight 1)</span>' in pane
    assert "<b>evidence of</b>" in pane
    # The script redrew the time axis (the CSSOM writes "left: N%;", the page "left:N%"); the
    # axis runs on past the run's end at 150 s, the deciding moment, to give it room.
    assert '<div class="tick" style="left: 86.9565%;">150 s</div>' in dom


def test_report_zooms_without_errors(report: Path, tmp_path: Path) -> None:
    proc = _chromium(report, tmp_path / "profile", "--dump-dom", fragment="#zoom=8")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line for line in proc.stderr.splitlines() if ":CONSOLE" in line] == []
    assert 'data-selfcheck="ok"' in proc.stdout
    assert '<span id="zoom-level">8.0×</span>' in proc.stdout
    assert '<html lang="en" style="--zoom: 8;">' in proc.stdout
    # Finer ticks at 8×: every 5 s instead of every 50 s.
    assert '<div class="tick" style="left: 2.89855%;">5 s</div>' in proc.stdout


@pytest.mark.parametrize("fragment", ["", "#zoom=4"])
def test_report_screenshot(report: Path, tmp_path: Path, fragment: str) -> None:
    shot = tmp_path / "cascade-report.png"
    proc = _chromium(report, tmp_path / "profile", f"--screenshot={shot}", fragment=fragment)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a drawn page, not a blank one


def test_report_opens_on_the_deciding_moment(report: Path, tmp_path: Path) -> None:
    proc = _chromium(report, tmp_path / "profile", "--dump-dom", fragment="#deciding")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line for line in proc.stderr.splitlines() if ":CONSOLE" in line] == []
    assert 'data-selfcheck="ok"' in proc.stdout
    # A quarter of the axis around the reconnects at 150 s, with ticks every 10 s.
    assert '<span id="zoom-level">4.0×</span>' in proc.stdout
    assert ">150 s</div>" in proc.stdout
    assert ">140 s</div>" in proc.stdout
