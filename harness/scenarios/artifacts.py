"""Run directories: ``runs/<id>/`` with ``run.json``, ``trace.jsonl``, ``journal.jsonl``,
``events.jsonl`` and ``report.html``. A run directory alone is enough to replay the run and to
check it again.

Every run gets a directory of its own, created exclusively: when its name is taken (the same
run again, or another process writing the same run into the same place at the same moment)
it is ``<id>-2``, ``<id>-3``, ... so no run ever replaces another's files.

Every file is written to a hidden temporary file in the run directory and renamed into place
(``os.replace``), so a run killed or crashed while writing never leaves a truncated line or a
half-written ``run.json`` (a killed writer may leave a ``.NAME.PID.tmp`` behind). The data files
are all staged before any is renamed, ``run.json`` is renamed last and ``report.html`` is drawn
from the renamed files. ``run.json`` is validated against the model that reads it back before
anything is written.

``run.json`` keeps each agent's final answer (oracles read it); the vault secret values a run
handed out are replaced there by ``[redacted secret]``, and the values of a command server's
``env`` by ``[redacted]`` (a replay reads them from the scenario file). The telemetry files are
written as recorded: ``no_secrets_in_telemetry`` judges them, and a replay compares the trace.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import suppress
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from harness._signals import deferred_interrupts
from harness.errors import ConfigError
from harness.run_file import RunFile
from harness.scenarios.model import ENV_REDACTED, Scenario
from harness.scenarios.runner import RunOutcome
from harness.telemetry.redact import MIN_SECRET_LENGTH, REDACTED
from harness.views import REPORT_NAME, build_view

__all__ = ["ENV_REDACTED", "REDACTED", "run_id", "write_run"]

# Shorter values would match ordinary text; the secrets oracle uses the same floor.
_MIN_SECRET_LENGTH = MIN_SECRET_LENGTH


def run_id(outcome: RunOutcome, scenario: Scenario) -> str:
    """``<scenario>-<policy>-s<seed>-<strategy|live>-<hash>``: every part that makes two runs
    differ, so runs of one scenario under other modes or strategies never share a name."""
    how = "live" if outcome.record.mode == "live" else outcome.strategy
    return (
        f"{outcome.scenario}-{outcome.policy}-s{outcome.seed}-{how}-{scenario.content_hash()[:8]}"
    )


# Runs of the same name in one output directory get -2, -3, ...; past this, the directory is
# a place where something loops.
_MAX_SAME_NAME = 10_000


def _new_run_dir(root: Path, name: str) -> Path:
    """Create and return a run directory that no other run (this process or another one
    writing to ``root`` at the same moment) has: the first free ``name``, ``name-2``, ..."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, _MAX_SAME_NAME + 1):
        candidate = root / (name if n == 1 else f"{name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise ConfigError(
        f"{_MAX_SAME_NAME} runs named {name} already exist here; use another --out",
        path=root,
    )


def _definition(scenario: Scenario) -> dict[str, Any]:
    """The scenario as loaded, with the values of command servers' ``env`` redacted (they
    are where API keys go; a replay takes them from the scenario file again)."""
    data = scenario.model_dump(mode="json")
    for server in (data.get("servers") or {}).values():
        if isinstance(server, dict) and isinstance(server.get("env"), dict):
            server["env"] = {key: ENV_REDACTED for key in server["env"]}
    return data


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("heisenharness", "mcp", "anthropic", "opentelemetry-sdk"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _jsonl(rows: Iterable[Any]) -> Callable[[IO[str]], object]:
    def write(fh: IO[str]) -> None:
        for row in rows:
            fh.write(json.dumps(row, default=str, separators=(",", ":")) + "\n")

    return write


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    """Write ``rows`` to ``path`` as a run's files are written: staged beside it, then renamed
    into place."""
    os.replace(_stage(path, _jsonl(rows)), path)


def _stage(path: Path, write: Callable[[IO[str]], object]) -> Path:
    """Write ``path``'s new content to a hidden temporary file beside it; return that file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            write(fh)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def _redact(value: Any, secrets: list[str]) -> Any:
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, secrets) for v in value]
    return value


def write_run(outcome: RunOutcome, scenario: Scenario, root: Path) -> Path:
    """Write the run's artifacts under ``root`` and return the run directory."""
    # A stop signal waits until the directory is whole: one that landed between creating it
    # and renaming run.json into place would leave a directory without its run.json.
    with deferred_interrupts():
        run_dir = _new_run_dir(root, run_id(outcome, scenario))
        try:
            staged = _stage_files(outcome, scenario, run_dir)
        except BaseException:
            # Nothing was renamed into place: the new directory goes too (it is ours alone).
            with suppress(OSError):
                run_dir.rmdir()
            raise
        # run.json last: a run directory whose run.json is new has every new data file.
        for tmp, path in staged:
            os.replace(tmp, path)
    _write_report(run_dir)
    outcome.run_dir = run_dir
    return run_dir


def _stage_files(outcome: RunOutcome, scenario: Scenario, run_dir: Path) -> list[tuple[Path, Path]]:
    """Every file of the run written beside its final name (temporary, hidden); on any
    error the ones already staged are removed."""
    record = outcome.record
    secrets = sorted(
        {s for s in record.secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True
    )
    summary = {
        **outcome.to_json(),
        "run_dir": str(run_dir),
        "scenario_hash": scenario.content_hash(),
        "scenario_source": outcome.source,
    }
    meta = {
        **_redact(summary, secrets),
        # The scenario as loaded: the replay runs exactly this definition.
        "scenario_definition": _definition(scenario),
        "versions": _versions(),
        **_redact(
            {
                "stats": outcome.stats,
                "result": record.result,
                "pending": record.pending,
                "leaked": record.leaked,
                "oracle_params": record.params,
                "replay": outcome.replay_command(),
            },
            secrets,
        ),
    }
    meta_text = json.dumps(meta, indent=2, default=str) + "\n"
    RunFile.check_written(meta_text)
    events = list(record.runtime_events)
    for server_events in record.server_events.values():
        events.extend(server_events)
    events.extend(record.fault_events)
    files: list[tuple[str, Callable[[IO[str]], object]]] = [
        ("trace.jsonl", _jsonl([outcome.trace])),
        # With content capture on, the journal holds tool results as the model saw them (a
        # vault's secrets among them): like every artefact, it keeps none.
        ("journal.jsonl", _jsonl(_redact(row, secrets) for row in record.journal)),
        ("events.jsonl", _jsonl(_redact(row, secrets) for row in events)),
        ("run.json", lambda fh: fh.write(meta_text)),
    ]
    staged: list[tuple[Path, Path]] = []
    try:
        for name, write in files:
            staged.append((_stage(run_dir / name, write), run_dir / name))
    except BaseException:
        for tmp, _ in staged:
            with suppress(FileNotFoundError):
                tmp.unlink()
        raise
    return staged


def _write_report(run_dir: Path) -> None:
    from harness.views.html import render_html

    page = render_html(build_view(run_dir))
    path = run_dir / REPORT_NAME
    os.replace(_stage(path, lambda fh: fh.write(page)), path)
