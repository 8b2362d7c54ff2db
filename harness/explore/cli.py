"""``harness explore NAME|PATH --runs N``: many seeds, the hit rate, failures kept and shrunk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from harness.explore.engine import ExploreReport
    from harness.explore.shrink import ShrinkResult
    from harness.scenarios import Scenario
    from harness.scenarios.failure_db import FailureDB

__all__ = ["explore"]


@click.command("explore")
@click.argument("target")
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--policy", type=click.Choice(["buggy", "fixed"]), default="buggy", show_default=True)
@click.option(
    "--strategy",
    type=click.Choice(["fifo", "random", "pct"]),
    default="fifo",
    show_default=True,
    help="How the sim loop orders ready tasks.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1, max=256),
    default=1,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "--shard",
    default="1/1",
    show_default=True,
    help="Run shard I of N of the seed space (every N-th seed), for CI matrices.",
)
@click.option(
    "--first-seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds are FIRST_SEED .. FIRST_SEED + RUNS - 1.",
)
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop starting new seeds after this many seconds.",
)
@click.option("--shrink", "do_shrink", is_flag=True, help="Shrink the first failing seed.")
@click.option(
    "--failure-db",
    "db_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".harness") / "failures",
    show_default=True,
    help="Failure database directory.",
)
@click.option("--db", "old_db_root", type=click.Path(file_okay=False, path_type=Path), hidden=True)
@click.option("--no-failure-db", "no_db", is_flag=True, help="Neither replay nor store seeds.")
@click.option("--no-db", "old_no_db", is_flag=True, hidden=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
def explore(
    target: str,
    runs: int,
    policy: str,
    strategy: str,
    jobs: int,
    shard: str,
    first_seed: int,
    time_budget: float | None,
    do_shrink: bool,
    db_root: Path,
    old_db_root: Path | None,
    no_db: bool,
    old_no_db: bool,
    as_json: bool,
) -> None:
    """Run RUNS seeds of a scenario (built-in name or file) and report how often it fails.

    TARGET may also be a saved run directory with ``--shrink``: that failing run is shrunk.

    Seeds stored in the failure database for this scenario run first. Every failing seed is
    run twice: a different outcome is a harness nondeterminism defect (exit 3). Under
    ``--policy fixed`` any failure means the fix does not hold (exit 1); a run whose runtime
    under test failed (outcome "error") is neither a hit nor a pass, and exits 1 too; otherwise
    exit 0.
    Ctrl-C stops the workers, reports the runs finished so far and exits 130.
    """
    from harness._files import check_writable_dir
    from harness.explore.seeds import parse_shard
    from harness.scenarios import resolve
    from harness.scenarios.failure_db import FailureDB

    # --db and --no-db are the former spellings of --failure-db and --no-failure-db.
    db_root = old_db_root or db_root
    no_db = no_db or old_no_db

    shard_spec = parse_shard(shard)
    if do_shrink and (Path(target) / "run.json").is_file():
        from harness.explore.shrink import shrink_run_dir

        shrunk = shrink_run_dir(Path(target), out_dir=db_root.parent / "shrunk")
        if as_json:
            click.echo(json.dumps(shrunk.to_json()))
        else:
            _print_shrunk(shrunk)
        return
    scenario, source = resolve(target)
    db = None if no_db else FailureDB(db_root)
    # Where results go is checked before the first run, not found unwritable after the last.
    if db is not None:
        db.check_writable()
    if do_shrink:
        check_writable_dir(db_root.parent / "shrunk", what="shrunk scenarios", option="--db")
    try:
        _explore(
            scenario,
            source,
            runs=runs,
            policy=policy,
            strategy=strategy,
            jobs=jobs,
            shard_spec=shard_spec,
            first_seed=first_seed,
            time_budget=time_budget,
            do_shrink=do_shrink,
            db=db,
            db_root=db_root,
            as_json=as_json,
        )
    except KeyboardInterrupt:
        # Ctrl-C outside the seed loop (replaying stored seeds, shrinking): nothing to report.
        click.echo("interrupted", err=True)
        raise SystemExit(130) from None


def _explore(
    scenario: Scenario,
    source: str,
    *,
    runs: int,
    policy: str,
    strategy: str,
    jobs: int,
    shard_spec: tuple[int, int],
    first_seed: int,
    time_budget: float | None,
    do_shrink: bool,
    db: FailureDB | None,
    db_root: Path,
    as_json: bool,
) -> None:
    from harness._text import printable
    from harness.errors import HarnessDefect
    from harness.explore.engine import explore as run_exploration
    from harness.explore.seeds import shard_seeds
    from harness.explore.shrink import shrink

    total = len(shard_seeds(runs, shard=shard_spec, first_seed=first_seed))
    with _ProgressBar(total, enabled=not as_json) as advance:
        report = run_exploration(
            scenario,
            source=source,
            runs=runs,
            policy=policy,
            strategy=strategy,
            jobs=jobs,
            shard=shard_spec,
            first_seed=first_seed,
            time_budget=time_budget,
            db=db,
            defects_dir=db_root.parent / "nondeterminism",
            progress=advance,
        )
    if report.interrupted:
        if as_json:
            click.echo(json.dumps(report.to_json()))
        else:
            _print_report(report, db)
        click.echo(f"interrupted after {report.runs} of {total} runs", err=True)
        raise SystemExit(130)
    if do_shrink and report.first_failing_seed is not None and report.signatures:
        first = min(report.signatures, key=lambda s: s.seed)
        report.shrunk = shrink(
            scenario,
            policy=policy,
            seed=first.seed,
            oracle=first.oracle,
            strategy=strategy,
            out_dir=db_root.parent / "shrunk",
        )
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        _print_report(report, db)
    if report.storage_error is not None:
        click.echo(f"error: {printable(report.storage_error)}", err=True)
    if report.nondeterministic:
        where = report.nondeterministic[0]["runs"]
        raise HarnessDefect(
            f"nondeterminism: {len(report.nondeterministic)} failing seed(s) gave a different "
            f"outcome when re-run with the same seed (both runs kept under {where})"
        )
    failed = (
        (policy == "fixed" and report.failures) or report.errors or report.storage_error is not None
    )
    raise SystemExit(1 if failed else 0)


class _ProgressBar:
    """A rich progress bar on stderr (only on a terminal) that counts runs and failures."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(stderr=True)
        self._failures = 0
        self._bar = Progress(
            TextColumn("exploring"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failures]} failing"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not (enabled and console.is_terminal),
        )
        self._task = self._bar.add_task("explore", total=total, failures=0)

    def __enter__(self) -> _ProgressBar:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)

    def __call__(self, result: object) -> None:
        self._failures += bool(getattr(result, "failed", False))
        self._bar.update(self._task, advance=1, failures=self._failures)


def _print_shrunk(s: ShrinkResult) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(width=160, highlight=False)
    console.print(
        f"shrunk seed {s.seed} ({s.oracle}) in {s.attempts} runs: faults {s.faults_before} -> "
        f"{s.faults_after}, schedule {s.original_strategy} -> {s.strategy}"
    )
    for step in s.steps:
        console.print(f"  {step}")
    console.print(f"  minimal scenario: {s.path}")
    console.print(f"  [dim]replay:[/] {s.replay}")


def _plain(text: object) -> str:
    """Scenario-derived text for a rich console: neither markup nor control sequences."""
    from rich.markup import escape

    from harness._text import printable

    return escape(printable(str(text)))


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def _print_report(report: ExploreReport, db: object) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(width=160, highlight=False)
    low, high = report.ci95
    shard = "" if report.shard == (1, 1) else f", shard {report.shard[0]}/{report.shard[1]}"
    console.print(
        f"[b]{report.scenario}[/b]  policy {report.policy}  strategy {report.strategy}  "
        f"(scenario hash {report.scenario_hash}{shard})"
    )
    for row in report.replayed:
        state = "[red]still fails[/]" if row["fails"] else "[green]passes now (forgotten)[/]"
        console.print(f"  failure database: seed {row['seed']} {state}")
    budget = " (stopped by the time budget)" if report.stopped_by_time_budget else ""
    console.print(
        f"runs {report.runs}{budget}   failures {report.failures}   hit rate "
        f"{_percent(report.hit_rate)} (95 % CI {_percent(low)} - {_percent(high)})"
    )
    if report.errors:
        console.print(
            f"[bold red]errors {report.errors}[/] (the runtime under test failed; neither hits "
            f"nor passes): {_plain(report.first_error)}"
        )
    if report.first_failing_seed is not None:
        console.print(f"first failing seed: {report.first_failing_seed}")
    for sig in report.signatures:
        console.print(f"  [yellow]{sig.count}x[/] {_plain(sig.signature)}  (first seed {sig.seed})")
        console.print(f"    {_plain(sig.explanation)}")
        console.print(f"    [dim]replay:[/] {_plain(sig.replay)}")
    for row in report.nondeterministic:
        console.print(
            f"[bold red]harness nondeterminism[/] seed {row['seed']}: "
            f"{_plain(row['difference'])} (both runs under {_plain(row['runs'])})"
        )
    if report.shrunk is not None:
        _print_shrunk(report.shrunk)
    console.print(
        f"{report.runs_per_s:.1f} runs/s ({report.runs} runs in {report.elapsed_s:.1f} s, "
        f"jobs {report.jobs})"
    )
    if report.policy == "fixed" and report.failures:
        console.print("[bold red]the fix does not hold:[/] a fixed-policy run failed")
