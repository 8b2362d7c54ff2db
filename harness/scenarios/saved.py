"""A saved run read back: its validated ``run.json``, the scenario it ran, and the programs a
re-run would start.

A run directory can come from anywhere (a CI artefact, an attachment), so reading one never
starts anything: ``commands()`` lists the programs its scenario names, and ``replay`` refuses
to start them unless the user allowed it by name (``--allow-commands``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from harness._yaml import validation_error
from harness.errors import ConfigError
from harness.run_file import RUN_FILE, RunFile, read_run_file
from harness.scenarios.model import ENV_REDACTED, Scenario, load_scenario

__all__ = ["SavedRun", "load_saved_run"]


@dataclass(frozen=True, slots=True)
class SavedRun:
    """A run directory's ``run.json`` and its scenario, ready to re-run."""

    run_dir: Path
    run: RunFile
    scenario: Scenario

    def commands(self) -> list[tuple[str, list[str]]]:
        """``(what, command)`` for every program the scenario runs: its servers' commands
        (``server NAME``), its agent process, and its adapter (imported: code runs too)."""
        found = [
            (f"server {name}", list(server.command))
            for name, server in self.scenario.servers.items()
            if server.command is not None
        ]
        runtime = self.scenario.runtime
        if runtime.command is not None:
            found.append(("runtime.command", list(runtime.command)))
        if runtime.adapter is not None:
            found.append(("runtime.adapter (imported)", [runtime.adapter]))
        return found


def load_saved_run(run_dir: Path) -> SavedRun:
    """Read ``run_dir``; any problem is a ``ConfigError`` naming the file and field."""
    run = read_run_file(run_dir)
    path = Path(run_dir) / RUN_FILE
    try:
        scenario = Scenario.model_validate(run.scenario_definition)
    except ValidationError as exc:
        raise validation_error(
            exc,
            text=None,
            path=path,
            error=ConfigError,
            prefix=("scenario_definition",),
            data={"scenario_definition": run.scenario_definition},
            quote=False,
            lead=lambda _: "not a valid scenario: ",
        ) from None
    redacted = sorted(
        name
        for name, server in scenario.servers.items()
        if server.env and ENV_REDACTED in server.env.values()
    )
    if redacted:
        scenario = _from_source(run, path, redacted)
    return SavedRun(Path(run_dir), run, scenario)


def _from_source(run: RunFile, path: Path, servers: list[str]) -> Scenario:
    """The scenario file the run came from, when it is unchanged: ``run.json`` keeps no env
    values (they hold keys), so a replay of a run that sets some reads them from there."""
    why = f"run.json keeps no env values (server {', '.join(servers)}); a replay reads them"
    source = run.scenario_source
    if not source or not source.endswith((".yaml", ".yml")):
        raise ConfigError(f"{why} from the scenario file, which the run does not name", path=path)
    try:
        original = load_scenario(source)
    except ConfigError as exc:
        raise ConfigError(f"{why} from {source}: {exc.message}", path=path) from None
    if original.content_hash() != run.scenario_hash:
        raise ConfigError(f"{why} from {source}, which has changed since the run", path=path)
    return original
