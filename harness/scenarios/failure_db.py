"""The failure database: failing seeds per scenario hash, replayed first by later explorations.

One JSON file per scenario content hash under ``.harness/failures/`` (as Hypothesis keeps its
example database): a changed scenario gets a new hash and starts empty. Entries are kept sorted
and written atomically, so a reader never sees a torn file; writers (any number of processes:
CI shards, parallel explorations) take an exclusive lock on the directory for their
read-modify-write, so no writer loses another's seeds. Rows are validated when read: a
hand-edited seed that is not a whole number from 0 to 2**63-1 is a ``ConfigError``, never a
run of seed ``1e300``.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness._files import check_writable_dir, read_bytes
from harness._yaml import validation_error
from harness.errors import ConfigError
from harness.run_file import MAX_SEED

if TYPE_CHECKING:
    from harness.scenarios import RunOutcome, Scenario

__all__ = ["DEFAULT_ROOT", "FailureDB", "FailureEntry", "replay_stored"]

DEFAULT_ROOT = Path(".harness") / "failures"


@dataclass(frozen=True, slots=True)
class FailureEntry:
    """One failing seed: enough to replay it and to tell its failure apart."""

    policy: str
    strategy: str
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)]
    oracle: str
    signature: str
    replay: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.policy, self.strategy, self.seed)


class _File(BaseModel):
    """A database file as written by ``FailureDB._write``."""

    model_config = ConfigDict(strict=True)

    scenario: str = ""
    scenario_hash: str = ""
    failures: list[FailureEntry]


class FailureDB:
    """Failing seeds stored by scenario hash under ``root``."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def path_for(self, scenario_hash: str) -> Path:
        return self.root / f"{scenario_hash}.json"

    def check_writable(self) -> None:
        """Raise ``ConfigError`` now if the database cannot be written (before any run)."""
        check_writable_dir(self.root, what="the failure database", option="--db")

    def entries(self, scenario_hash: str) -> list[FailureEntry]:
        path = self.path_for(scenario_hash)
        if not path.exists():
            return []
        data = read_bytes(path, what="failure database file")
        try:
            return _File.model_validate_json(data).failures
        except ValidationError as exc:
            raise validation_error(
                exc,
                text=None,
                path=path,
                error=ConfigError,
                lead=lambda _: "malformed failure database file: ",
            ) from None

    def seeds(self, scenario_hash: str, *, policy: str | None, strategy: str) -> list[int]:
        """The stored failing seeds for this strategy and policy (any policy: ``None``), in
        ascending order."""
        return sorted(
            {
                e.seed
                for e in self.entries(scenario_hash)
                if policy in (None, e.policy) and e.strategy == strategy
            }
        )

    def add(self, scenario_hash: str, scenario: str, new: Iterable[FailureEntry]) -> None:
        with self._locked():
            entries = {e.key: e for e in self.entries(scenario_hash)}
            before = len(entries)
            entries.update((e.key, e) for e in new)
            if len(entries) != before:
                self._write(scenario_hash, scenario, entries.values())

    def discard(
        self, scenario_hash: str, scenario: str, *, policy: str, strategy: str, seeds: Iterable[int]
    ) -> None:
        """Forget seeds that no longer fail (the runtime changed under the same scenario)."""
        drop = {(policy, strategy, s) for s in seeds}
        with self._locked():
            entries = self.entries(scenario_hash)
            kept = [e for e in entries if e.key not in drop]
            if len(kept) != len(entries):
                self._write(scenario_hash, scenario, kept)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the database directory for one read-modify-write (released
        on exit, also when the process dies)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the failure database: {exc.strerror}", path=self.root
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, scenario_hash: str, scenario: str, entries: Iterable[FailureEntry]) -> None:
        path = self.path_for(scenario_hash)
        data: dict[str, Any] = {
            "scenario": scenario,
            "scenario_hash": scenario_hash,
            "failures": [asdict(e) for e in sorted(entries, key=lambda e: e.key)],
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            # A failed or interrupted write leaves the previous file and no stray temporary.
            tmp.unlink(missing_ok=True)
            raise


def replay_stored(
    scenario: Scenario,
    *,
    policy: str,
    strategy: str = "fifo",
    source: str | None = None,
    root: Path = DEFAULT_ROOT,
    skip: int | None = None,
) -> Iterator[RunOutcome]:
    """Run the failing seeds stored for ``scenario`` and this strategy (``skip`` excepted)
    under ``policy``, one by one, as ``harness run`` does before the seed it was asked for.
    Seeds stored under either policy run: a seed that broke the buggy runtime is where a
    regression of the fix shows."""
    from harness.scenarios import run_scenario

    seeds = FailureDB(root).seeds(scenario.content_hash(), policy=None, strategy=strategy)
    for seed in seeds:
        if seed != skip:
            yield run_scenario(
                scenario,
                policy=policy,  # type: ignore[arg-type]
                seed=seed,
                strategy=strategy,
                source=source,
            )
