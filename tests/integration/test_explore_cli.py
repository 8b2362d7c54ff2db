"""``harness explore`` as a user runs it (subprocesses): JSON summary, exit codes, worker
processes, shards, the failure database on disk, shrinking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.scenarios import resolve

pytestmark = pytest.mark.integration

KEYS = {
    "scenario",
    "policy",
    "strategy",
    "runs",
    "failures",
    "hit_rate",
    "ci95",
    "first_failing_seed",
    "signatures",
    "runs_per_s",
}


def _explore(*args: str, cwd: Path) -> tuple[int, dict[str, Any] | None, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "explore", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )
    summary = json.loads(proc.stdout) if proc.stdout.startswith("{") else None
    return proc.returncode, summary, proc.stderr


def test_json_summary_and_the_same_result_with_two_worker_processes(tmp_path: Path) -> None:
    code, serial, err = _explore("cascade_random", "--runs", "24", "--json", cwd=tmp_path)
    assert code == 0, err
    assert serial is not None
    assert set(serial) >= KEYS
    # Properties, not the draws: which seeds fail changes with any change of draw order.
    failing = serial["failing_seeds"]
    assert serial["runs"] == 24
    assert 0 < serial["failures"] == len(failing)
    assert serial["first_failing_seed"] == min(failing)
    assert serial["ci95"][0] < serial["hit_rate"] < serial["ci95"][1]
    [signature] = serial["signatures"]
    assert {"oracle", "count", "seed", "replay"} <= set(signature)
    assert signature["replay"] == (
        f"harness run cascade_random --policy buggy --seed {min(failing)} --strategy fifo"
    )
    # The failing seeds are now in the database, keyed by scenario hash.
    scenario, _ = resolve("cascade_random")
    stored = json.loads(
        (tmp_path / ".harness/failures" / f"{scenario.content_hash()}.json").read_text()
    )
    assert [f["seed"] for f in stored["failures"]] == failing

    code, parallel, err = _explore(
        "cascade_random", "--runs", "24", "--jobs", "2", "--no-db", "--json", cwd=tmp_path
    )
    assert code == 0, err
    assert parallel is not None
    for key in (
        "runs",
        "failures",
        "failing_seeds",
        "first_failing_seed",
        "signatures",
        "hit_rate",
    ):
        assert parallel[key] == serial[key], key
    assert parallel["jobs"] == 2
    assert parallel["replayed"] == []


def test_shards_split_the_runs(tmp_path: Path) -> None:
    halves = []
    for shard in ("1/2", "2/2"):
        code, half, err = _explore(
            "cascade_random", "--runs", "24", "--shard", shard, "--no-db", "--json", cwd=tmp_path
        )
        assert code == 0, err
        assert half is not None
        assert (half["runs"], half["shard"]) == (12, shard)
        halves.append(half)
    # Shard 1 runs the even seeds of 0..23, shard 2 the odd ones.
    for index, half in enumerate(halves):
        assert all(seed % 2 == index and seed < 24 for seed in half["failing_seeds"])
        assert half["failures"] == len(half["failing_seeds"])
    assert sum(half["failures"] for half in halves) > 0


def test_a_failure_under_fixed_exits_1_and_is_shrunk(tmp_path: Path) -> None:
    source = resolve("cascade_random")[0].model_dump(mode="json")
    source["name"] = "cascade_random_broken_fix"
    source["policies"] = {"fixed": {"reconnect": "naive"}}
    path = tmp_path / "broken.yaml"
    path.write_text(json.dumps(source))
    code, summary, err = _explore(
        str(path), "--runs", "3", "--policy", "fixed", "--shrink", "--json", cwd=tmp_path
    )
    assert code == 1, err
    assert summary is not None
    assert summary["failures"] >= 1
    assert summary["first_failing_seed"] == 0
    shrunk = summary["shrunk"]
    assert shrunk["faults_after"] <= shrunk["faults_before"]
    assert Path(tmp_path, shrunk["path"]).exists()
    assert shrunk["replay"].startswith(f"harness run {shrunk['path']} --policy fixed --seed 0")


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    code, _, err = _explore("cascade_random", "--shard", "3/2", cwd=tmp_path)
    assert code == 2
    assert err.strip().startswith("error:")
    assert "--shard" in err
    assert "Traceback" not in err


# What a worker's first run imports beyond the fork server's preload: a few of the harness's
# own lazy modules, not the SDKs (the Anthropic SDK alone is about 3,000 modules and 3 s of CPU,
# paid again by every worker of every pool, and a stop signal in that time found no run done).
_FIRST_RUN_IMPORTS = """
import importlib, json, sys
from harness.explore.engine import WORKER_PRELOAD
from harness.explore.worker import SeedRunner, WorkerConfig
from harness.scenarios import resolve
for name in WORKER_PRELOAD:
    importlib.import_module(name)
scenario, _ = resolve("cascade_random")
definition = scenario.model_dump(mode="json")
config = WorkerConfig(definition, "cascade_random", "buggy", "fifo", sys.argv[1])
before = set(sys.modules)
SeedRunner(config).run(0)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_a_workers_first_run_imports_little_beyond_the_fork_servers_preload(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _FIRST_RUN_IMPORTS, str(tmp_path / "defects")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    imported = json.loads(proc.stdout)
    packages = sorted({name.split(".")[0] for name in imported})
    assert "anthropic" not in packages, packages
    assert len(imported) < 300, packages
