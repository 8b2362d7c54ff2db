"""The benchmark report: judging figures, the table and JSON, failing modules, the commands.

Synthetic benchmark modules only: no real benchmark runs here."""

from __future__ import annotations

import io
import json
import sys
import types
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from rich.console import Console

from benchmarks import _report
from benchmarks._figures import Figure, judge, make, note_row
from harness import bench as bench_module
from harness.bench import bench
from harness.cli import cli

KEYS = {"figure", "value", "unit", "baseline", "ratio", "target", "met"}


# -- judge and make ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measured", "target", "met"),
    [
        (1.10, "<= 1.15x", True),
        (1.20, "<= 1.15x", False),
        (600.0, ">= 500", True),
        (499.9, ">= 500", False),
        (2.5, "<= 2.5 ms", True),
        (2.6, "<= 2.5 ms", False),
        (0.45, ">= 0.45x", True),
        (120.0, "<= +150 us", True),
        (151.0, "<= +150 us", False),
        (3.0, "< 3", False),
        (3.0, "> 2.9", True),
        (1.0, "", None),
        (None, "<= 1.15x", None),
        (float("nan"), "<= 1.15x", None),
    ],
)
def test_judge_compares_with_the_targets_number(
    measured: float | None, target: str, met: bool | None
) -> None:
    assert judge(measured, target) is met


def test_judge_rejects_a_target_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="'about 3'"):
        judge(1.0, "about 3")


def test_make_judges_the_subject_its_target_names() -> None:
    by_ratio = make("rt", 12.0, "ms", baseline=10.0, target="<= 1.15x")
    assert by_ratio["ratio"] == pytest.approx(1.2)
    assert by_ratio["met"] is False
    by_value = make("rt", 2.0, "ms", baseline=0.5, target="<= 2.5 ms")
    assert by_value["ratio"] == pytest.approx(4.0)
    assert by_value["met"] is True
    added = make("rt", 260.0, "us", baseline=100.0, target="<= +150 us")
    assert added["met"] is False
    assert make("rt", 200.0, "us", baseline=100.0, target="<= +150 us")["met"] is True
    bare = make("runs/s", 30.0, "runs/s")
    assert (bare["baseline"], bare["ratio"], bare["target"], bare["met"]) == (None, None, "", None)
    assert make("x", 1.0, "", ratio=3.0)["ratio"] == 3.0


def test_an_added_target_without_a_baseline_is_not_judged() -> None:
    assert make("rt", 10.0, "us", target="<= +150 us")["met"] is None


# -- collecting from modules -------------------------------------------------------------------


def _module(
    monkeypatch: pytest.MonkeyPatch, name: str, figures: Callable[..., object] | None
) -> None:
    module = types.ModuleType(f"benchmarks.{name}")
    if figures is not None:
        module.figures = figures  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"benchmarks.{name}", module)


def _ok(*, quick: bool = False) -> list[Figure]:
    print("progress of the synthetic module")
    return [make("ok figure", 5.0 if quick else 7.0, "ms", baseline=5.0, target="<= 1.2x")]


def _boom(*, quick: bool = False) -> list[Figure]:
    raise RuntimeError("receiver\nrefused")


def _plain_dicts(*, quick: bool = False) -> list[dict[str, object]]:
    return [
        {
            "figure": "plain",
            "value": 3,
            "unit": "x",
            "baseline": None,
            "ratio": None,
            "target": "",
            "met": None,
        }
    ]


def _malformed(*, quick: bool = False) -> list[dict[str, object]]:
    return [{"figure": "half", "value": 1.0}]


@pytest.fixture
def modules(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    _module(monkeypatch, "zz_ok", _ok)
    _module(monkeypatch, "zz_boom", _boom)
    _module(monkeypatch, "zz_silent", None)
    _module(monkeypatch, "zz_plain", _plain_dicts)
    _module(monkeypatch, "zz_malformed", _malformed)
    names = ("zz_ok", "zz_boom", "zz_silent", "zz_plain", "zz_malformed")
    monkeypatch.setattr(_report, "MODULES", names)
    return names


def test_a_module_that_raises_becomes_an_error_row_and_the_others_run(
    modules: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _report.collect(modules, quick=True)
    names = [r["figure"] for r in rows]
    assert names == ["ok figure", "zz_boom", "zz_silent", "plain", "zz_malformed"]
    ok, boom, silent, plain, malformed = rows
    assert ok["value"] == 5.0
    assert ok["met"] is True
    assert boom["met"] is False
    assert boom["value"] is None
    assert boom["note"].startswith("error: RuntimeError: receiver refused at test_bench_report.py:")
    assert silent["met"] is None
    assert silent["note"].startswith("not reported")
    assert plain["value"] == 3.0
    assert "note" not in plain
    assert malformed["met"] is False
    assert "lacks unit, baseline, ratio, target, met" in malformed["note"]
    # What a module prints stays off stdout, which holds only the report.
    captured = capsys.readouterr()
    assert "progress of the synthetic module" in captured.err
    assert captured.out == ""


def test_select_takes_names_and_comma_lists_in_report_order(modules: tuple[str, ...]) -> None:
    assert _report.select([]) == list(modules)
    assert _report.select(["zz_plain,zz_ok", "zz_boom"]) == ["zz_ok", "zz_boom", "zz_plain"]
    with pytest.raises(ValueError, match="unknown benchmark 'nope'; choose from zz_ok"):
        _report.select(["zz_ok,nope"])


def test_the_real_module_list_names_every_benchmark_file() -> None:
    from pathlib import Path

    files = {p.stem for p in Path(_report.__file__).parent.glob("[a-z]*.py")}
    assert set(_report.MODULES) == files


# -- rendering ---------------------------------------------------------------------------------


def _rows() -> list[Figure]:
    return [
        make("proxy round trip", 212.4, "us", baseline=120.0, target="<= +150 us"),
        make("cascade virtual/wall", 9714.2, "", target=">= 500"),
        make("fake API round trip", 1.2345, "ms", baseline=1.0, target="<= 1.2x"),
        note_row("explore", "not reported (no figures() yet)"),
        note_row("export", "error: OSError: refused", met=False),
    ]


def test_the_table_has_one_row_per_figure_and_no_blank_lines() -> None:
    out = io.StringIO()
    _report.render_table(_rows(), Console(file=out, width=200, color_system=None))
    lines = out.getvalue().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["figure", "value", "baseline", "ratio", "target", "met"]
    assert all(line.startswith("|") and line.strip() for line in lines)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert cells[0] == ["proxy round trip", "212 us", "120 us", "1.77x", "<= +150 us", "yes"]
    assert cells[1] == ["cascade virtual/wall", "9,714", "", "", ">= 500", "yes"]
    assert cells[2] == ["fake API round trip", "1.23 ms", "1.00 ms", "1.23x", "<= 1.2x", "NO"]
    assert cells[3] == ["explore: not reported (no figures() yet)", "", "", "", "", ""]
    assert cells[4] == ["export: error: OSError: refused", "", "", "", "", "NO"]


def test_json_has_the_report_keys_and_notes_only_where_set() -> None:
    data = json.loads(_report.to_json(_rows()))
    assert [set(item) - {"note"} for item in data] == [KEYS] * 5
    assert data[0] == {
        "figure": "proxy round trip",
        "value": 212.4,
        "unit": "us",
        "baseline": 120.0,
        "ratio": pytest.approx(1.77),
        "target": "<= +150 us",
        "met": True,
    }
    assert data[4]["note"] == "error: OSError: refused"
    assert data[4]["value"] is None
    assert data[4]["met"] is False


# -- the commands ------------------------------------------------------------------------------


def test_bench_json_prints_only_the_list_and_exits_1_when_a_module_failed(
    modules: tuple[str, ...],
) -> None:
    result = CliRunner().invoke(bench, ["--json", "--quick", "--only", "zz_ok,zz_boom"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert [item["figure"] for item in data] == ["ok figure", "zz_boom"]
    assert all(set(item) >= KEYS for item in data)
    assert data[0]["value"] == 5.0  # --quick reached the module
    assert "benchmarks.zz_boom: error: RuntimeError" in result.stderr


def test_bench_prints_the_table_and_exits_0_when_every_module_ran(
    modules: tuple[str, ...],
) -> None:
    result = CliRunner().invoke(bench, ["--only", "zz_ok", "--only", "zz_plain"])
    assert result.exit_code == 0, result.output
    assert "| ok figure" in result.stdout
    assert "| plain" in result.stdout
    assert "7.00 ms" in result.stdout  # not --quick


def test_bench_rejects_an_unknown_module_with_a_usage_error(modules: tuple[str, ...]) -> None:
    result = CliRunner().invoke(bench, ["--only", "zz_ok,nope"])
    assert result.exit_code == 2
    assert "Invalid value for --only: unknown benchmark 'nope'" in result.stderr


def test_bench_outside_a_source_checkout_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_module, "_report_module", lambda: None)
    result = CliRunner().invoke(bench, [])
    assert result.exit_code == 2
    assert "harness bench runs from a source checkout" in result.stderr


def test_harness_lists_and_loads_the_bench_command() -> None:
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0, result.output
    assert "--quick" in result.output
    assert "--json" in result.output
    assert "bench" in CliRunner().invoke(cli, ["--help"]).output


def test_sides_alternate_in_a_rotating_order_and_the_ratio_is_per_round() -> None:
    from benchmarks._alternate import alternate, compared

    calls: list[str] = []
    values = {"a": iter([9.0, 1.0, 3.0, 8.0]), "b": iter([9.0, 2.0, 4.0, 1.0])}

    def side(name: str) -> Callable[[], float]:
        def run() -> float:
            calls.append(name)
            return next(values[name])

        return run

    samples = alternate({"a": side("a"), "b": side("b")}, 3)
    # One untimed warm-up round, then each round starts with the next side.
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert samples == {"a": [1.0, 3.0, 8.0], "b": [2.0, 4.0, 1.0]}
    row = compared("x", samples, "a", "b", "s")
    # Per-round ratios 0.5, 0.75, 8: their median, not the ratio of the medians (3 / 2).
    assert row["ratio"] == 0.75
    assert (row["value"], row["baseline"]) == (3.0, 2.0)
