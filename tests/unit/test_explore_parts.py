"""Exploration building blocks: Wilson interval, shards, failure database, signatures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.explore import FailureDB, FailureEntry, parse_shard, shard_seeds, wilson_interval
from harness.explore.signature import deciding_failure, signature_of
from harness.oracles import Verdict


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.05523, abs=1e-4)
    assert high == pytest.approx(0.17437, abs=1e-4)
    zero_low, zero_high = wilson_interval(0, 200)
    assert zero_low == 0.0
    assert 0.0 < zero_high < 0.02
    assert wilson_interval(50, 50)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("runs", "count", "first"), [(1000, 4, 0), (7, 3, 5), (10, 10, 0)])
def test_shards_cover_the_seed_space_exactly_once(runs: int, count: int, first: int) -> None:
    seen: list[int] = []
    for index in range(1, count + 1):
        seeds = list(shard_seeds(runs, shard=(index, count), first_seed=first))
        assert abs(len(seeds) - runs / count) < 1
        seen.extend(seeds)
    assert sorted(seen) == list(range(first, first + runs))


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "2"])
def test_bad_shards_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_shard(text)
    assert info.value.field == "--shard"


def test_parse_shard() -> None:
    assert parse_shard("2/4") == (2, 4)


def _entry(seed: int, policy: str = "buggy") -> FailureEntry:
    return FailureEntry(policy, "fifo", seed, "o", "o{x=1}", f"harness run s --seed {seed}")


def test_failure_db_round_trip(tmp_path: Path) -> None:
    db = FailureDB(tmp_path / "failures")
    assert db.seeds("abc", policy="buggy", strategy="fifo") == []
    db.add("abc", "s", [_entry(9), _entry(3), _entry(4, "fixed")])
    db.add("abc", "s", [_entry(3)])
    again = FailureDB(tmp_path / "failures")
    assert again.seeds("abc", policy="buggy", strategy="fifo") == [3, 9]
    assert again.seeds("abc", policy="fixed", strategy="fifo") == [4]
    assert again.seeds("abc", policy="buggy", strategy="pct") == []
    assert again.seeds("other", policy="buggy", strategy="fifo") == []
    data = json.loads((tmp_path / "failures" / "abc.json").read_text())
    assert data["scenario"] == "s"
    assert [f["seed"] for f in data["failures"]] == [3, 9, 4]
    again.discard("abc", "s", policy="buggy", strategy="fifo", seeds=[3])
    assert FailureDB(tmp_path / "failures").seeds("abc", policy="buggy", strategy="fifo") == [9]
    assert list((tmp_path / "failures").iterdir()) == [tmp_path / "failures" / "abc.json"]


def test_a_corrupt_failure_db_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "abc.json").write_text("{not json")
    with pytest.raises(ConfigError) as info:
        FailureDB(tmp_path).entries("abc")
    assert info.value.path == str(tmp_path / "abc.json")


def test_signature_prefers_bug_oracles_and_ignores_times() -> None:
    evidence = [{"seq": 4, "time": 155.0, "server": "ssh", "reason": "timeout"}]
    verdicts = [
        Verdict("all_calls_resolved", False, "x"),
        Verdict("no_reconnect_while_in_flight", False, "y", evidence),
        Verdict("agents_completed", True, "z"),
    ]
    deciding = deciding_failure(verdicts, ["no_reconnect_while_in_flight"])
    assert deciding is not None
    assert deciding.name == "no_reconnect_while_in_flight"
    text = signature_of(verdicts, deciding)
    assert text == "no_reconnect_while_in_flight[+all_calls_resolved]{reason=timeout,server=ssh}"
    later = [{"seq": 9, "time": 170.0, "server": "ssh", "reason": "timeout"}]
    moved = [verdicts[0], Verdict("no_reconnect_while_in_flight", False, "y", later)]
    assert signature_of(moved, moved[1]) == text
    assert deciding_failure([verdicts[2]], []) is None


def test_replay_stored_runs_the_stored_failing_seeds(tmp_path: Path) -> None:
    from harness.explore import replay_stored
    from harness.scenarios import resolve

    scenario, source = resolve("cascade_random")
    assert list(replay_stored(scenario, policy="buggy", root=tmp_path)) == []
    FailureDB(tmp_path).add(scenario.content_hash(), scenario.name, [_entry(13)])
    [outcome] = replay_stored(scenario, policy="buggy", source=source, root=tmp_path)
    assert (outcome.seed, outcome.outcome) == (13, "reproduced")
