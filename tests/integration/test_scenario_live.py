"""Live mode: the founding bugs and the long-session ones reproduce and the fixes hold for real
(subprocess MCP servers, the fake API over loopback TCP, scaled real time), not only in the
simulation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.scenarios import resolve
from harness.scenarios.live import auto_time_scale, live_config, run_scenario_live
from tests.scenarios._agreement import disagreements, pairs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


@pytest.mark.parametrize(
    ("name", "time_scale"),
    [
        ("cascade", 0.01),
        ("cascade_declared_server", 0.01),  # a server declared in the file, as a subprocess
        ("cascade_server_crash", 0.01),
        ("orphaned_tool_block", 0.01),
        ("scope_leak_morning_digest", 0.0002),
        ("thinking_block_dropped", 0.01),
        ("context_overflow", 0.01),
    ],
)
@pytest.mark.parametrize("policy", ["buggy", "fixed"])
def test_founding_bug_live(name: str, time_scale: float, policy: str) -> None:
    scenario, _ = resolve(name)
    before = _children()
    outcome = run_scenario_live(scenario, policy=policy, time_scale=time_scale)  # type: ignore[arg-type]
    assert outcome.met, [v.to_dict() for v in outcome.verdicts if not v.holds]
    assert outcome.record.mode == "live"
    assert not outcome.record.hung
    assert outcome.record.leaked == []
    assert _children() <= before
    # Judged from the rig's records alone (on the run's clock), the founding oracles agree.
    assert not disagreements(outcome, scenario.oracle_names), pairs(outcome, scenario.oracle_names)
    # The subprocess servers' own spans joined the run's trace.
    services = {s["service"] for s in outcome.record.spans}
    if scenario.servers:
        assert any(s.startswith("fake-mcp-") for s in services), services


@pytest.mark.parametrize(
    ("name", "fault_type", "service"),
    [
        ("cascade_http_proxy", "latency", "harness-proxy"),
        ("cascade_frozen_server", "freeze", "harness-interposer"),
    ],
)
def test_fault_plan_acts_for_real(name: str, fault_type: str, service: str) -> None:
    # The proxy's toxic on real sockets, the interposer's freeze as a real SIGSTOP.
    scenario, _ = resolve(name)
    outcome = run_scenario_live(scenario, policy="buggy", time_scale=0.01)
    assert outcome.outcome == "reproduced", [v.to_dict() for v in outcome.verdicts]
    applied = [e for e in outcome.record.fault_events if e["kind"] == "applied"]
    assert {e["type"] for e in applied} == {fault_type}
    assert all(e["source"] == "fault" and e["target"] == "ssh" for e in applied)
    assert service in {s["service"] for s in outcome.record.spans}
    assert outcome.record.leaked == []


def test_live_config_uses_real_transports() -> None:
    scenario, _ = resolve("cascade")
    config = live_config(scenario, "buggy")
    assert config.api.loopback is True
    assert {s.transport for s in config.servers.values()} == {"stdio"}


def test_auto_time_scale_fits_the_schedule_in_the_watchdog() -> None:
    scenario, _ = resolve("scope_leak")
    scale = auto_time_scale(scenario)
    assert scenario.budget.virtual * scale <= scenario.budget.wall / 2
    assert auto_time_scale(resolve("cascade")[0]) <= 0.01


def test_ctrl_c_stops_a_live_run_cleanly_and_keeps_the_record(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "cascade", "--mode", "live", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until the first run is under way (its servers are spawned), then interrupt.
    servers: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not servers:
        servers = {pid for pid in _pids_of(proc.pid) if "fake_servers.mcp" in _cmdline(pid)}
        time.sleep(0.05)
    assert servers, "the live run never started its MCP server"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    runs = list(out.glob("cascade-buggy-*"))
    assert len(runs) == 1
    meta = json.loads((runs[0] / "run.json").read_text())
    assert meta["interrupted"] is True
    assert meta["outcome"] == "interrupted"
    for name in ("trace.jsonl", "events.jsonl", "journal.jsonl"):
        assert (runs[0] / name).exists()
    # The server subprocesses it had started are gone, not orphaned.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in servers):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{p}").exists() for p in servers)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pids_of(parent: int) -> set[int]:
    """Children of ``parent`` still alive (empty when it has exited)."""
    pids: set[int] = set()
    task_dir = Path(f"/proc/{parent}/task")
    if not task_dir.exists():
        return pids
    for task in task_dir.iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return pids
