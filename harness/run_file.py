"""``run.json``: one model writes it and validates it when it is read back.

A run directory may come from anywhere (a CI artefact, a colleague, a hand edit), so every
command that reads one (``replay``, ``check``, ``trace show|html``, ``explore --shrink``) reads
``run.json`` through ``read_run_file``: a missing field, a value of the wrong type (``seed:
"abc"``, ``pending: 5``) or a file that is not JSON is one ``ConfigError`` naming the file and
the field, never a traceback from deep inside a command. ``scenario_definition`` is checked
here as a mapping only; the scenario layer validates it as a scenario when it runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness._files import ARTEFACT_LIMIT, read_bytes
from harness._yaml import validation_error
from harness.errors import ConfigError, HarnessDefect

__all__ = ["MAX_SEED", "RUN_FILE", "Outcome", "RunFile", "VerdictRecord", "read_run_file"]

RUN_FILE = "run.json"
MAX_SEED = 2**63 - 1

# "error": the runtime under test could not be run or failed outside its answers (an adapter
# that does not import, a factory or run() that raises, an agent process that exits non-zero,
# writes what is not text, or hangs): never a reproduction, never a pass.
Outcome = Literal["reproduced", "held", "unexpected", "inconclusive", "interrupted", "error"]


class VerdictRecord(BaseModel):
    """One oracle's verdict as ``run.json`` keeps it."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    name: str
    verdict: str
    explanation: str = ""
    evidence: list[dict[str, Any]] = Field(default_factory=list)


class RunFile(BaseModel):
    """The content of ``run.json`` (``RunOutcome.to_json()`` plus what replay needs)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    scenario: str = Field(min_length=1)
    policy: Literal["buggy", "fixed"]
    seed: int = Field(ge=0, le=MAX_SEED)
    mode: Literal["sim", "live"] = "sim"
    strategy: str = "fifo"
    outcome: Outcome
    expected: Outcome | None = None
    met: bool | None = None
    deciding_oracle: str | None = None
    explanation: str | None = None
    error: str | None = None
    oracles: list[VerdictRecord]
    virtual_s: float = 0.0
    wall_s: float = 0.0
    run_dir: str | None = None
    hung: bool = False
    interrupted: bool = False
    draws: dict[str, Any] = Field(default_factory=dict)
    scenario_hash: str | None = None
    scenario_source: str | None = None
    scenario_definition: dict[str, Any]
    versions: dict[str, str] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] = Field(default_factory=dict)
    pending: list[str] = Field(default_factory=list)
    leaked: list[str] = Field(default_factory=list)
    oracle_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    replay: str | None = None

    @classmethod
    def check_written(cls, text: str) -> RunFile:
        """Validate the ``run.json`` text ``write_run`` is about to write: a file that would
        not read back is a harness defect, caught before anything is written."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            error = validation_error(exc, text=None, path=None, error=ConfigError, quote=False)
            raise HarnessDefect(f"run.json would not read back: {error}") from None

    def meta(self) -> dict[str, Any]:
        """Plain JSON data (what the views read)."""
        return self.model_dump(mode="json")


def read_run_file(run_dir: Path) -> RunFile:
    """``RUN_DIR/run.json``, validated; a missing directory, a file that is not a regular file
    of at most ``ARTEFACT_LIMIT`` bytes, not JSON or of the wrong shape is a ``ConfigError``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "no such directory" if not run_dir.exists() else "not a directory"
        raise ConfigError(f"not a run directory ({what})", path=run_dir)
    path = run_dir / RUN_FILE
    if not path.exists():
        raise ConfigError(f"not a run directory (no {RUN_FILE})", path=run_dir)
    data = read_bytes(path, what=RUN_FILE, limit=ARTEFACT_LIMIT)
    try:
        return RunFile.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ConfigError(f"not valid JSON: {first['msg']}", path=path) from None
        if first["type"] == "model_type":
            raise ConfigError("must hold a JSON object", path=path) from None
        raise validation_error(exc, text=None, path=path, error=ConfigError) from None
