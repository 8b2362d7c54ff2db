"""``harness list | run | replay | check | schema``: the scenario engine's commands."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from harness.scenarios.runner import RunOutcome

__all__ = ["check_cmd", "list_cmd", "replay_cmd", "run_cmd", "schema_cmd"]

_OUTCOME_STYLE = {
    "reproduced": "bold yellow",
    "held": "bold green",
    "unexpected": "bold red",
    "interrupted": "bold magenta",
}


@click.command("list")
def list_cmd() -> None:
    """List the built-in scenarios with one-line descriptions."""
    from harness.scenarios import builtin_names, resolve

    for name in builtin_names():
        scenario, _ = resolve(name)
        first = scenario.description.split(". ")[0].rstrip(".")
        click.echo(f"{name:<28} {first}.")


def _table(outcomes: list[RunOutcome]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from harness._text import printable

    console = Console()
    if not console.is_terminal:
        # Piped output (CI logs) should not be cut to 80 columns.
        console = Console(width=160)
    table = Table(box=None, pad_edge=False)
    for column in ("scenario", "policy", "seed", "outcome", "deciding oracle", "virtual", "wall"):
        table.add_column(column, no_wrap=True, justify="right" if column == "seed" else "left")
    for o in outcomes:
        table.add_row(
            o.scenario,
            o.policy,
            str(o.seed),  # seeds from the failure database run first, beside --seed
            f"[{_OUTCOME_STYLE[o.outcome]}]{o.outcome}[/]",
            o.deciding.name if o.deciding else "",
            f"{o.virtual_s:.1f} s",
            f"{o.wall_s * 1000:.0f} ms",
        )
    console.print(table)
    console.print()
    for o in outcomes:
        # Oracle sentences quote the scenario's own names: shown, never obeyed as markup or
        # terminal control sequences.
        why = escape(printable(o.deciding.explanation)) if o.deciding else ""
        console.print(f"[b]{o.scenario}[/b] ({o.policy}): {why}", highlight=False)
        console.print(f"  [dim]{escape(printable(str(o.run_dir)))}[/dim]", highlight=False)
        if not o.met:
            console.print(
                f"  [red]expected {o.expected}; replay with:[/] {o.replay_command()}",
                highlight=False,
            )


@click.command("run")
@click.argument("targets", nargs=-1)
@click.option("--all", "run_all", is_flag=True, help="Run every built-in scenario.")
@click.option(
    "--policy",
    type=click.Choice(["buggy", "fixed", "both"]),
    default="both",
    show_default=True,
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--strategy",
    type=click.Choice(["fifo", "random", "pct"]),
    default="fifo",
    show_default=True,
    help="How the sim loop orders ready tasks.",
)
@click.option(
    "--mode",
    type=click.Choice(["sim", "live"]),
    default="sim",
    show_default=True,
    help="sim: one process, virtual time. live: subprocesses, sockets, scaled real time.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.00001, max=10.0),
    default=None,
    help="Live mode: real seconds per scenario second "
    "(default 0.01, less when the scenario's virtual budget needs it).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Where run directories are written.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run.")
@click.option(
    "--otlp-endpoint",
    metavar="URL",
    help="Also send every run's trace to this OTLP collector (e.g. http://localhost:4318); "
    "default: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT when set.",
)
@click.option(
    "--otlp-protocol",
    type=click.Choice(["http/protobuf", "grpc"]),
    default=None,
    help="OTLP protocol (default: OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, else http/protobuf).",
)
@click.option(
    "--failure-db/--no-failure-db",
    default=True,
    show_default=True,
    help="Sim mode: first replay the failing seeds that harness explore stored for each "
    "scenario (.harness/failures/).",
)
def run_cmd(
    targets: tuple[str, ...],
    run_all: bool,
    policy: str,
    seed: int,
    strategy: str,
    mode: str,
    time_scale: float | None,
    out: Path,
    as_json: bool,
    otlp_endpoint: str | None,
    otlp_protocol: str | None,
    failure_db: bool,
) -> None:
    """Run scenarios (built-in names or files) and judge each run.

    In sim mode the failing seeds an exploration stored for a scenario run first (as
    Hypothesis replays its example database). Exit status 0 when every run met its
    expectation (bug reproduced under buggy, held under fixed), 1 when one did not, 2 on
    bad input, 130 when interrupted.
    """
    from harness._files import check_writable_dir
    from harness.errors import ScenarioError
    from harness.scenarios import builtin_names, resolve

    names = list(targets) + (builtin_names() if run_all else [])
    if not names:
        raise click.UsageError("name a scenario (or a file), or pass --all")
    loaded = [resolve(name) for name in dict.fromkeys(names)]
    if not loaded:
        raise ScenarioError("no scenario to run")
    check_writable_dir(out, what="run directories", option="--out")
    exporter = _run_exporter(otlp_endpoint, otlp_protocol)
    policies: list[Any] = ["buggy", "fixed"] if policy == "both" else [policy]
    jobs = [(scenario, source, pol) for scenario, source in loaded for pol in policies]
    outcomes: list[RunOutcome] = []
    slow = mode == "live" or len(jobs) > 40  # sim runs take ~20 ms each
    stopped = False
    try:
        with _progress(len(jobs), enabled=slow and not as_json) as tick:
            for scenario, source, pol in jobs:
                tick(f"{scenario.name} ({pol})")
                for outcome in _runs(
                    scenario,
                    source,
                    pol,
                    seed=seed,
                    strategy=strategy,
                    mode=mode,
                    time_scale=time_scale,
                    failure_db=failure_db,
                ):
                    _keep(outcome, scenario, out, exporter, as_json)
                    outcomes.append(outcome)
                    if outcome.interrupted:
                        stopped = True
                        break
                if stopped:
                    break
    except KeyboardInterrupt:
        stopped = True  # between two runs: every run above was recorded whole
    finally:
        if exporter is not None:
            _close_exporter(exporter, otlp_endpoint)
    if not as_json:
        _table(outcomes)
    if stopped:
        click.echo("interrupted: the runs above were recorded", err=True)
        raise SystemExit(130)
    raise SystemExit(0 if all(o.met for o in outcomes) else 1)


def _runs(
    scenario: Any,
    source: str | None,
    policy: Any,
    *,
    seed: int,
    strategy: str,
    mode: str,
    time_scale: float | None,
    failure_db: bool,
) -> Iterator[RunOutcome]:
    """The stored failing seeds first (sim mode), then the asked-for seed. A stop signal
    that arrived during the previous run stops before the next one."""
    from harness._signals import check_stop

    check_stop()
    if mode == "live":
        from harness._text import printable
        from harness.scenarios.live import run_scenario_live

        for name, server in scenario.servers.items():
            if server.command is not None:
                # A scenario starts a program only when it declares one: say which.
                shown = printable(" ".join(server.command))
                click.echo(f"note: {scenario.name} starts server {name}: {shown}", err=True)
        yield run_scenario_live(
            scenario, policy=policy, seed=seed, time_scale=time_scale, source=source
        )
        return
    from harness.scenarios import run_scenario

    if failure_db:
        from harness.explore import replay_stored

        for outcome in replay_stored(
            scenario, policy=policy, strategy=strategy, source=source, skip=seed
        ):
            yield outcome
            check_stop()
    yield run_scenario(scenario, policy=policy, seed=seed, strategy=strategy, source=source)


def _keep(outcome: RunOutcome, scenario: Any, out: Path, exporter: Any, as_json: bool) -> None:
    from harness.scenarios import write_run

    write_run(outcome, scenario, out)
    if exporter is not None:
        exporter.submit(outcome.trace)
    if as_json:
        click.echo(json.dumps(outcome.to_json()))


def _run_exporter(endpoint: str | None, protocol: str | None) -> Any:
    """A ``RunExporter`` when the flags or ``OTEL_*`` variables name a collector."""
    if endpoint is None and protocol is None and not _otel_env():
        return None  # keeps the OTLP exporter packages unimported on the common path
    from harness.telemetry.export import RunExporter, exporter_from_settings

    exporter = exporter_from_settings(endpoint, protocol)
    return RunExporter(exporter) if exporter is not None else None


def _otel_env() -> bool:
    import os

    return any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _close_exporter(exporter: Any, endpoint: str | None) -> None:
    where = endpoint or "the OTEL_EXPORTER_OTLP_* endpoint"
    finished = exporter.close(timeout_millis=30_000)
    if exporter.refused or not finished:
        lost = f"{exporter.refused} span(s) refused or unreachable"
        late = "" if finished else "; the rest did not finish within 30 s"
        click.echo(f"warning: OTLP export to {where}: {lost}{late}", err=True)
    else:
        click.echo(f"exported {exporter.sent} spans to {where}", err=True)


@contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A transient progress bar on a terminal for runs that take a while; silent otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda _label: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("running", total=total)
        first = True

        def tick(label: str) -> None:
            nonlocal first
            if not first:
                progress.advance(task)
            first = False
            progress.update(task, description=label)

        yield tick


@click.command("replay")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--allow-commands",
    is_flag=True,
    help="Start the programs the run's scenario names (servers with command:). Without it, "
    "replaying such a run is refused with the list of them: a run directory from elsewhere "
    "must not start a program on its own.",
)
def replay_cmd(run_dir: Path, allow_commands: bool) -> None:
    """Re-run RUN_DIR's scenario, policy and seed; compare outcome and trace."""
    from harness.scenarios import run_scenario
    from harness.scenarios.saved import load_saved_run
    from harness.telemetry.otlp_json import flatten, read_trace_file

    saved = load_saved_run(run_dir)
    _allow_commands(saved, allow_commands)
    meta, scenario = saved.run, saved.scenario
    if meta.mode == "live":
        from harness.scenarios.live import run_scenario_live

        live = run_scenario_live(
            scenario,
            policy=meta.policy,
            seed=meta.seed,
            time_scale=_time_scale(meta, run_dir),
            source=meta.scenario_source,
        )
        click.echo(f"outcome: {live.outcome} (recorded {meta.outcome})")
        click.echo("trace: not compared (live runs use real time and real ids)")
        raise SystemExit(0 if live.outcome == meta.outcome else 1)
    outcome = run_scenario(
        scenario,
        policy=meta.policy,
        seed=meta.seed,
        strategy=meta.strategy,
        source=meta.scenario_source,
    )
    saved_trace = read_trace_file(run_dir / "trace.jsonl")
    same_trace = flatten(outcome.trace) == saved_trace
    same_outcome = outcome.outcome == meta.outcome
    click.echo(f"outcome: {outcome.outcome} (recorded {meta.outcome})")
    click.echo(f"trace: {'identical' if same_trace else 'DIFFERENT'} ({len(saved_trace)} spans)")
    raise SystemExit(0 if same_trace and same_outcome else 1)


def _allow_commands(saved: Any, allowed: bool) -> None:
    """Name every program the replay would start; refuse (exit 2) unless ``allowed``."""
    from harness._text import printable
    from harness.errors import ConfigError

    commands = saved.commands()
    if not commands:
        return
    shown = "; ".join(f"server {name}: {printable(' '.join(cmd))}" for name, cmd in commands)
    if not allowed:
        raise ConfigError(
            f"replaying this run starts {len(commands)} program(s) its scenario names "
            f"({shown}); pass --allow-commands to start them",
            path=saved.run_dir,
        )
    for name, command in commands:
        click.echo(f"note: replay starts server {name}: {printable(' '.join(command))}", err=True)


def _time_scale(meta: Any, run_dir: Path) -> float:
    from harness.errors import ConfigError

    scale = meta.stats.get("time_scale", 0.01)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 10:
        raise ConfigError(
            "must be a number in (0, 10]",
            path=run_dir / "run.json",
            field="stats.time_scale",
            value=scale,
        )
    return float(scale)


@click.command("check")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--oracle", "oracles", multiple=True, help="Oracle to run (default: the run's).")
def check_cmd(target: Path, oracles: tuple[str, ...]) -> None:
    """Run oracles on a saved run directory (RUN_DIR) or a bare trace.jsonl."""
    from harness._text import printable
    from harness.oracles import ORACLES, RunRecord, check, load_record
    from harness.run_file import read_run_file
    from harness.telemetry.otlp_json import read_trace_file

    if target.is_dir():
        record = load_record(target)
        meta = read_run_file(target)
        names = list(oracles) or [o.name for o in meta.oracles]
        record.secrets = _secrets_of(meta)
    else:
        record = RunRecord(scenario="", policy="", seed=0, spans=read_trace_file(target))
        names = list(oracles) or ["no_secrets_in_telemetry"]
    unknown = [n for n in names if n not in ORACLES]
    if unknown:
        raise click.BadParameter(f"unknown oracle(s) {unknown}", param_hint="--oracle")
    verdicts = check(record, names)
    for v in verdicts:
        mark = "holds" if v.holds else "FAILS"
        click.echo(f"{v.name:<36} {mark:<6} {printable(v.explanation)}")
    raise SystemExit(0 if all(v.holds for v in verdicts) else 1)


def _secrets_of(meta: Any) -> list[str]:
    """Re-derive the vault's values from the run's scenario and seed (never stored)."""
    from harness.chaos_random import ChaosRandom
    from harness.scenarios import Scenario

    try:
        scenario = Scenario.model_validate(meta.scenario_definition)
    except ValueError:
        return []
    from fake_servers.mcp.vault import SECRET_NAMES, secret_value

    rng = ChaosRandom(meta.seed)
    return [
        secret_value(rng.fork(f"fake-mcp-{name}"), secret)
        for name, server in scenario.servers.items()
        if server.fake == "vault"
        for secret in SECRET_NAMES
    ]


@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    from harness.scenarios import Scenario

    click.echo(json.dumps(Scenario.model_json_schema(), indent=2))
