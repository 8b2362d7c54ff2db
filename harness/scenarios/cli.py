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

__all__ = ["check_cmd", "list_cmd", "new_cmd", "replay_cmd", "run_cmd", "schema_cmd"]

# harness.scenarios.failure_db.DEFAULT_ROOT, spelled here so listing options imports nothing heavy.
DEFAULT_FAILURE_DB = Path(".harness") / "failures"

_OUTCOME_STYLE = {
    "reproduced": "bold yellow",
    "held": "bold green",
    "unexpected": "bold red",
    "inconclusive": "bold red",
    "interrupted": "bold magenta",
    "error": "bold red",
}


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per scenario.")
@click.option(
    "--bugs", is_flag=True, help="List the public bugs written as scenario files instead."
)
def list_cmd(as_json: bool, bugs: bool) -> None:
    """List the built-in scenarios (or, with --bugs, the bug files) with one-line descriptions.

    Either runs by name: harness run NAME."""
    from harness.scenarios.registry import BUGS_DIR, BUILTIN_DIR, bug_names, builtin_names

    directory, names = (BUGS_DIR, bug_names()) if bugs else (BUILTIN_DIR, builtin_names())
    width = max((len(n) for n in names), default=0) + 2 if bugs else 28
    for name in names:
        path = directory / f"{name}.yaml"
        description = _description(path)
        if as_json:
            click.echo(json.dumps({"name": name, "description": description, "path": str(path)}))
        else:
            first = description.split(". ")[0].rstrip(".")
            click.echo(f"{name:<{width}} {first}.")


@click.command("new")
@click.argument("builtin")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
def new_cmd(builtin: str, dest: Path, force: bool) -> None:
    """Copy the built-in scenario (or bug file) BUILTIN to DEST as a starting point of your own.

    The copy keeps the file's comments; its name becomes DEST's (my_cascade.yaml names it
    my_cascade), so its runs and failure-database entries stay apart from the built-in's.
    """
    import re

    from harness.scenarios.registry import bug_names, builtin_names, builtin_path

    source = builtin_path(builtin)
    if source is None:
        hint = _did_you_mean(builtin, [*builtin_names(), *bug_names()])
        raise click.BadParameter(
            f"no built-in scenario {builtin!r}{hint} (see harness list, harness list --bugs)",
            param_hint="BUILTIN",
        )
    if dest.suffix not in (".yaml", ".yml"):
        raise click.BadParameter(f"{dest} should end in .yaml", param_hint="DEST")
    if dest.exists() and not force:
        raise click.BadParameter(f"{dest} exists (--force overwrites it)", param_hint="DEST")
    name = re.sub(r"[^a-z0-9_\-]+", "_", dest.stem.lower()).strip("_-") or "my_scenario"
    text = source.read_text(encoding="utf-8")
    text = re.sub(rf"^name: {re.escape(builtin)}$", f"name: {name}", text, count=1, flags=re.M)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    click.echo(f"wrote {dest} (scenario {name}, from {builtin}); run it: harness run {dest}")


def _description(path: Path) -> str:
    """A built-in scenario's description, read without validating the whole scenario (the
    validators import the fake servers; listing stays instant)."""
    import yaml

    # libyaml's loader when PyYAML has it: the pure-Python one costs most of a listing.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return " ".join(str(data.get("description", "")).split())


def _table(outcomes: list[RunOutcome], *, links: bool = False, console: Any = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from harness._text import printable

    if console is None:
        console = Console()
        if not console.is_terminal:
            # Piped output (CI logs) should not be cut to 80 columns.
            console = Console(width=160)
    table = Table(box=None, pad_edge=False)
    # On a narrow terminal the two long names fold onto a second line; the short columns
    # (the outcome and the times a reader compares) are never cut.
    for column in ("scenario", "policy", "seed", "outcome", "deciding oracle", "virtual", "wall"):
        long = column in ("scenario", "deciding oracle")
        table.add_column(
            column,
            no_wrap=not long,
            overflow="fold" if long else "ellipsis",
            min_width=None if long else len(column),
            justify="right" if column in ("seed", "virtual", "wall") else "left",
        )
    for o in outcomes:
        table.add_row(
            o.scenario,
            o.policy,
            str(o.seed),  # seeds from the failure database run first, beside --seed
            # A run its watchdog (or the sim's deadlock detector) ended says so beside why.
            f"[{_OUTCOME_STYLE[o.outcome]}]{o.outcome}[/]"
            + (", [b]hung[/]" if o.record.hung else ""),
            "" if o.error else o.deciding.name if o.deciding else "",
            f"{o.virtual_s:.1f} s",
            f"{o.wall_s * 1000:.0f} ms",
        )
    console.print(table)
    console.print()
    for o in outcomes:
        # Oracle sentences quote the scenario's own names: shown, never obeyed as markup or
        # terminal control sequences.
        why = escape(printable(o.deciding.explanation)) if o.deciding else ""
        if o.error:
            why = f"[bold red]error:[/] {escape(printable(o.error))}"
        console.print(f"[b]{o.scenario}[/b] ({o.policy}): {why}", highlight=False)
        console.print(f"  [dim]{escape(printable(str(o.run_dir)))}[/dim]", highlight=False)
        if links and o.trace_id:
            from harness.telemetry.export import jaeger_link

            console.print(f"  [dim]jaeger: {jaeger_link(o.trace_id)}[/dim]", highlight=False)
        if o.record.mode == "live":
            startup = o.stats.get("startup_s")
            spawn = f"; servers started in {startup:.1f} s, before its clock" if startup else ""
            scale = o.stats.get("time_scale", 0.0)
            console.print(
                f"  [dim]live: 1 scenario second = {scale:.3g} s{spawn}[/dim]", highlight=False
            )
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
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Run this seed only. Default: seed 0, after the failing seeds stored for the "
    "scenario (sim mode).",
)
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
    help="Live mode: real seconds per scenario second (default: the scenario's "
    "budget.time_scale, else 0.01, less when its virtual budget needs it; a scale its "
    "schedule cannot fit is refused).",
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
    "--otlp-keep-timestamps",
    is_flag=True,
    help="Export the runs' own timestamps (a sim run's virtual clock) instead of moving each "
    "run to end when it finished.",
)
@click.option(
    "--failure-db",
    "failure_db_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_FAILURE_DB,
    show_default=True,
    help="The failure database (harness explore stores failing seeds there); without --seed, "
    "sim mode replays a scenario's stored seeds under each policy first.",
)
@click.option(
    "--no-failure-db", is_flag=True, help="Do not replay the failing seeds stored for a scenario."
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
    otlp_keep_timestamps: bool,
    failure_db_root: Path,
    no_failure_db: bool,
) -> None:
    """Run scenarios (built-in names or files) and judge each run.

    Without --seed, in sim mode, the failing seeds an exploration stored for a scenario run
    first, under buggy and under fixed (as Hypothesis replays its example database: a stored
    seed that holds under fixed proves the fix), then seed 0. Exit status 0 when every run
    met its expectation (bug reproduced under buggy, held under fixed), 1 when one did not
    (or was inconclusive, or the runtime under test failed: "error"), 2 on bad input, 130 when
    interrupted.
    """
    if not targets and not run_all:
        raise click.UsageError("name a scenario (or a file), or pass --all")
    from harness._text import printable
    from harness.errors import ScenarioError
    from harness.scenarios.registry import builtin_names, resolve

    if run_all and targets:
        builtin = [t for t in targets if t in builtin_names()]
        extra = [t for t in targets if t not in builtin]
        said = [f"{', '.join(builtin)} already among them"] if builtin else []
        said += [f"{', '.join(extra)} run too"] if extra else []
        click.echo(f"warning: --all runs every built-in scenario; {'; '.join(said)}", err=True)
    if mode == "sim" and time_scale is not None:
        click.echo("warning: --time-scale applies to --mode live only; sim ignores it", err=True)
    names = list(targets) + (builtin_names() if run_all else [])
    loaded = [resolve(name) for name in dict.fromkeys(names)]

    for scenario, _ in loaded:
        if mode not in scenario.modes:
            click.echo(
                f"skipped: {printable(scenario.name)} runs in {' and '.join(scenario.modes)} "
                f"mode only (modes:), not {mode}",
                err=True,
            )
    loaded = [(scenario, source) for scenario, source in loaded if mode in scenario.modes]
    if not loaded:
        raise ScenarioError(f"no scenario to run in {mode} mode")
    from harness._files import check_writable_dir

    check_writable_dir(out, what="run directories", option="--out")
    exporter = _run_exporter(otlp_endpoint, otlp_protocol, keep=otlp_keep_timestamps)
    replay_db = None if no_failure_db or seed is not None else failure_db_root
    policies: list[Any] = ["buggy", "fixed"] if policy == "both" else [policy]
    jobs = [(scenario, source, pol) for scenario, source in loaded for pol in policies]
    outcomes: list[RunOutcome] = []
    refused: list[str] = []
    slow = mode == "live" or len(jobs) > 40  # sim runs take ~20 ms each
    stopped = False
    try:
        with _progress(len(jobs), enabled=slow and not as_json) as tick:
            for scenario, source, pol in jobs:
                tick(f"{scenario.name} ({pol})")
                try:
                    for outcome in _runs(
                        scenario,
                        source,
                        pol,
                        seed=seed or 0,
                        strategy=strategy,
                        mode=mode,
                        time_scale=time_scale,
                        failure_db=replay_db,
                    ):
                        _keep(outcome, scenario, out, exporter, as_json)
                        outcomes.append(outcome)
                        if outcome.interrupted:
                            stopped = True
                            break
                except ScenarioError as exc:
                    # One scenario's bad draw for this seed (or its live setup) stops that
                    # scenario only: the others still run, and the command exits 2 after them.
                    refused.append(f"{scenario.name} ({pol})")
                    click.echo(f"error: {printable(str(exc))}", err=True)
                if stopped:
                    break
    except KeyboardInterrupt:
        stopped = True  # between two runs: every run above was recorded whole
    finally:
        exported = _close_exporter(exporter, otlp_endpoint) if exporter is not None else False
    if not as_json:
        _table(outcomes, links=exported)
    if stopped or (outcomes and outcomes[-1].interrupted):
        click.echo("interrupted: the runs above were recorded", err=True)
        raise SystemExit(130)
    if refused:
        click.echo(f"not run, bad input (above): {', '.join(refused)}", err=True)
        raise SystemExit(2)
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
    failure_db: Path | None,
) -> Iterator[RunOutcome]:
    """The failing seeds stored in ``failure_db`` first (sim mode), then the asked-for seed. A
    stop signal that arrived during the previous run stops before the next one."""
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
        if scenario.runtime.command is not None:
            shown = printable(" ".join(scenario.runtime.command))
            click.echo(f"note: {scenario.name} runs agent process: {shown}", err=True)
        yield run_scenario_live(
            scenario, policy=policy, seed=seed, time_scale=time_scale, source=source
        )
        return
    from harness.scenarios import run_scenario

    if failure_db is not None:
        from harness.scenarios.failure_db import replay_stored

        for outcome in replay_stored(
            scenario, policy=policy, strategy=strategy, source=source, skip=seed, root=failure_db
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


def _run_exporter(endpoint: str | None, protocol: str | None, *, keep: bool) -> Any:
    """A ``RunExporter`` when the flags or ``OTEL_*`` variables name a collector that
    answers; a collector that does not is one warning line, and the runs go on."""
    if endpoint is None and protocol is None and not _otel_env():
        return None  # keeps the OTLP exporter packages unimported on the common path
    from harness.telemetry.export import (
        RunExporter,
        build_exporter,
        reachable,
        resolve_settings,
        unreachable_error,
    )

    settings = resolve_settings(endpoint, protocol, flags=("--otlp-endpoint", "--otlp-protocol"))
    if settings is None:
        return None
    why = reachable(settings)
    if why is not None:
        click.echo(f"warning: {unreachable_error(settings, why)}; runs not exported", err=True)
        return None
    return RunExporter(build_exporter(settings), shift=not keep)


def _otel_env() -> bool:
    import os

    return any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _close_exporter(exporter: Any, endpoint: str | None) -> bool:
    """Send what is queued; say in one line what the collector took. True when it took all."""
    where = endpoint or "the OTEL_EXPORTER_OTLP_* endpoint"
    finished = exporter.close(timeout_millis=30_000)
    if exporter.refused or not finished:
        lost = f"{exporter.refused} span(s) refused or unreachable"
        late = "" if finished else "; the rest did not finish within 30 s"
        click.echo(f"warning: OTLP export to {where}: {lost}{late}", err=True)
        return False
    click.echo(f"exported {exporter.sent} spans to {where}", err=True)
    return True


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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def replay_cmd(run_dir: Path, allow_commands: bool, as_json: bool) -> None:
    """Re-run RUN_DIR's scenario, policy and seed; compare outcome and trace.

    The trace is compared by what it means (ids, names, attributes, timestamps, events and
    statuses), not byte for byte: stack traces and per-process resource attributes depend on
    the install and the caller, so a run recorded by another install or by the pytest plugin
    replays as identical when it did the same thing. Exit status 0 when outcome and trace are
    the same, 1 when not, 2 on bad input. Live runs are re-run and their outcomes compared.
    """
    from harness.scenarios import run_scenario
    from harness.scenarios.saved import load_saved_run
    from harness.telemetry.compare import first_difference
    from harness.telemetry.otlp_json import flatten, read_trace_file

    saved_run = load_saved_run(run_dir)
    _allow_commands(saved_run, allow_commands)
    meta, scenario = saved_run.run, saved_run.scenario
    if meta.mode == "live":
        from harness.scenarios.live import run_scenario_live

        live = run_scenario_live(
            scenario,
            policy=meta.policy,
            seed=meta.seed,
            time_scale=_time_scale(meta, run_dir),
            source=meta.scenario_source,
        )
        same = live.outcome == meta.outcome
        _replayed(as_json, live.outcome, meta.outcome, None, "live runs use real time")
        raise SystemExit(0 if same else 1)
    outcome = run_scenario(
        scenario,
        policy=meta.policy,
        seed=meta.seed,
        strategy=meta.strategy,
        source=meta.scenario_source,
    )
    saved = read_trace_file(run_dir / "trace.jsonl")
    difference = first_difference(saved, flatten(outcome.trace))
    _replayed(as_json, outcome.outcome, meta.outcome, difference, None, spans=len(saved))
    same = difference is None and outcome.outcome == meta.outcome
    raise SystemExit(0 if same else 1)


def _replayed(
    as_json: bool,
    outcome: str,
    recorded: str,
    difference: str | None,
    not_compared: str | None,
    *,
    spans: int = 0,
) -> None:
    from harness._text import printable

    if not_compared is not None:
        trace = "not compared"
        shown = f"trace: not compared ({not_compared})"
    else:
        trace = "identical" if difference is None else "different"
        shown = f"trace: {'identical' if difference is None else 'DIFFERENT'} ({spans} spans)"
        if difference is not None:
            # It quotes the names and attribute keys of the saved trace, which may hold anything.
            shown += f"\n  first difference: {printable(difference)}"
    if as_json:
        summary = {
            "outcome": outcome,
            "recorded_outcome": recorded,
            "trace": trace,
            "spans": spans,
            "difference": difference or not_compared,
        }
        click.echo(json.dumps(summary))
        return
    click.echo(f"outcome: {outcome} (recorded {recorded})")
    click.echo(shown)


CHECK_CANNOT_JUDGE = 4


def _allow_commands(saved: Any, allowed: bool) -> None:
    """Name every program the replay would start; refuse (exit 2) unless ``allowed``."""
    from harness._text import printable
    from harness.errors import ConfigError

    commands = saved.commands()
    if not commands:
        return
    shown = "; ".join(f"{what}: {printable(' '.join(cmd))}" for what, cmd in commands)
    if not allowed:
        raise ConfigError(
            f"replaying this run starts {len(commands)} program(s) its scenario names "
            f"({shown}); pass --allow-commands to start them",
            path=saved.run_dir,
        )
    for what, command in commands:
        click.echo(f"note: replay starts {what}: {printable(' '.join(command))}", err=True)


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
@click.option(
    "--oracle",
    "oracles",
    multiple=True,
    help="Oracle to run (repeatable; default: the scenario's oracles), with parameters "
    "spelt as in a scenario file: 'answer_contains: {text: done}'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def check_cmd(target: Path, oracles: tuple[str, ...], as_json: bool) -> None:
    """Run oracles on a saved run directory (RUN_DIR) or a bare trace (trace.jsonl).

    Without --oracle the scenario's oracles run: the run directory's, or for a bare trace
    those of the scenario named in the trace (its run.json beside it, else the built-in
    scenario of that name, else every oracle). A bare trace holds no journal, no final answers
    and no processes: what an oracle needs is rebuilt from the spans where they carry it
    (reconnects, compactions, scopes, the API's errors), and an oracle whose evidence is
    missing says "cannot judge" and why; it never passes for lack of evidence.

    \b
    Exit status:
      0  every oracle holds
      1  an oracle fails
      2  bad input: no such run directory or trace, an unreadable file, an unknown oracle
      4  none fails, but at least one cannot judge (its evidence is missing)
    """
    from harness._text import printable
    from harness.oracles import ORACLES, base_name, check

    if not target.exists():
        kind = "trace file" if target.suffix == ".jsonl" else "run directory"
        raise click.BadParameter(f"no such {kind}: {target}", param_hint="TARGET")
    given = _oracle_options(oracles)
    record, default_oracles, note = _check_record(target)
    names = list(given) or default_oracles or sorted(ORACLES)
    unknown = [n for n in names if base_name(n) not in ORACLES]
    if unknown:
        hint = _did_you_mean(unknown[0], ORACLES)
        raise click.BadParameter(f"unknown oracle(s) {unknown}{hint}", param_hint="--oracle")
    for label, params in given.items():
        if params is not None:
            _check_oracle_params(label, params)
            record.params[label] = params
    verdicts = check(record, names)
    if any(v.fails for v in verdicts):
        code = 1
    elif all(v.judged for v in verdicts):
        code = 0
    else:
        code = CHECK_CANNOT_JUDGE
    if as_json:
        summary = {
            "target": str(target),
            "scenario": record.scenario or None,
            "policy": record.policy or None,
            "seed": record.seed,
            "note": note,
            "oracles": [v.to_dict() for v in verdicts],
            "exit_status": code,
        }
        click.echo(json.dumps(summary))
        raise SystemExit(code)
    if note:
        click.echo(f"note: {note}", err=True)
    width = max(len(v.name) for v in verdicts) + 2
    for v in verdicts:
        mark = {"holds": "holds", "fails": "FAILS", "cannot judge": "CANNOT JUDGE"}[v.status]
        text = printable(v.explanation.removeprefix("cannot judge: "))
        click.echo(f"{v.name:<{width}} {mark:<12} {text}")
    raise SystemExit(code)


def _oracle_options(values: tuple[str, ...]) -> dict[str, dict[str, Any] | None]:
    """``--oracle`` values by label: ``NAME`` (the run's own parameters, if any) or
    ``NAME: {param: value}`` as a scenario file lists it (YAML or JSON)."""
    from harness._yaml import parse_yaml
    from harness.errors import ConfigError

    given: dict[str, dict[str, Any] | None] = {}
    for value in values:
        label, colon, rest = value.partition(":")
        label = label.strip()
        params = None
        if colon:
            try:
                params = parse_yaml(rest, path="--oracle", error=ConfigError)
            except ConfigError as exc:
                raise click.BadParameter(f"{label}: {exc.message}", param_hint="--oracle") from None
            if not isinstance(params, dict):
                raise click.BadParameter(
                    f"{label}: the parameters must be a mapping, as in '{label}: {{name: value}}'",
                    param_hint="--oracle",
                )
        if label in given:
            raise click.BadParameter(
                f"{label} is given twice; list it again under a label: '{label}#other: {{...}}'",
                param_hint="--oracle",
            )
        given[label] = params
    return given


def _check_oracle_params(label: str, params: dict[str, Any]) -> None:
    """Refuse parameters the oracle would not take, naming the bad one (click's error)."""
    from harness.oracles import PARAMS, base_name
    from harness.oracles._registry import ACCEPTS, params_error

    name = base_name(label)
    model = PARAMS.get(name)
    takes = list(model.model_fields) if model is not None else list(ACCEPTS.get(name, ()))
    if not takes:
        raise click.BadParameter(f"oracle {name} takes no parameters", param_hint="--oracle")
    problem = params_error(label, params)
    if problem is not None:
        message, loc = problem
        if loc and loc[0] not in takes:
            message = f"oracle {label}: unknown parameter {str(loc[0])!r}; it takes "
            message += ", ".join(takes)
        raise click.BadParameter(message, param_hint="--oracle")


def _check_record(target: Path) -> tuple[Any, list[str], str | None]:
    """The record to judge, the scenario's oracles, and a note on where they came from."""
    from harness.oracles import load_record
    from harness.oracles.from_spans import record_from_trace
    from harness.oracles.record import read_run_json
    from harness.telemetry.export import read_traces_data

    if target.is_dir():
        record = load_record(target)
        meta = read_run_json(target / "run.json")
        _give_secrets(record, meta)
        return record, [o["name"] for o in meta.get("oracles", [])], None
    record = record_from_trace(read_traces_data(target))
    beside = target.parent / "run.json"
    if beside.exists():
        meta = read_run_json(beside)
        if meta.get("scenario") == record.scenario or not record.scenario:
            _give_secrets(record, meta)
            record.params = dict(meta.get("oracle_params") or {})
            note = (
                f"judged from the trace alone; the run directory has all the evidence: "
                f"harness check {target.parent}"
            )
            return record, [o["name"] for o in meta.get("oracles", [])], note
    if record.scenario:
        from harness.errors import ScenarioError
        from harness.scenarios import builtin_names, resolve

        if record.scenario in builtin_names():
            try:
                scenario, _ = resolve(record.scenario)
            except ScenarioError:
                pass
            else:
                record.params = scenario.oracle_params
                note = f"the oracles of the built-in scenario {record.scenario}"
                return record, scenario.oracle_names, note
    return record, [], "the trace names no known scenario: every oracle runs"


def _give_secrets(record: Any, meta: dict[str, Any]) -> None:
    """Re-derive the secrets a run handed out from its scenario and seed (never stored)."""
    secrets = _secrets_of(meta)
    if secrets is not None:
        record.secrets = secrets
        record.missing.pop("secrets", None)


def _did_you_mean(name: str, choices: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _secrets_of(meta: dict[str, Any]) -> list[str] | None:
    """Re-derive the vault's values from the run's scenario and seed (never stored); ``None``
    when run.json has no scenario definition to derive them from."""
    from harness.chaos_random import ChaosRandom
    from harness.scenarios import Scenario

    try:
        scenario = Scenario.model_validate(meta["scenario_definition"])
    except (KeyError, ValueError):
        return None
    from fake_servers.mcp.vault import SECRET_NAMES, secret_value

    rng = ChaosRandom(int(meta.get("seed", 0)))
    return [
        secret_value(rng.fork(f"fake-mcp-{name}"), secret)
        for name, server in scenario.servers.items()
        if server.fake == "vault"
        for secret in SECRET_NAMES
    ]


@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    # The shipped schema file (held equal to the models' schema by a test): no model imports.
    schema = Path(__file__).with_name("schema.json")
    click.echo(schema.read_text(encoding="utf-8"), nl=False)
