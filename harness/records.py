"""Run records: the one event shape the runtime, the fake servers, the faults and the fake API
write, so oracles and views read one thing (the schema is in ``docs/records.md``).

Every record is a JSON object whose envelope is the same for all four sources: ``source``
(``runtime``, ``server``, ``fault`` or ``api``), ``kind`` (what happened, per source), ``time``
(seconds; on the run's clock once merged) and, where the writer has them, ``seq`` (its own
order), ``wall`` (Unix time, the clock every process shares) and ``process`` (a pid). A record
another process wrote, moved onto the run's clock (``harness._run_clock``), also carries
``clock: "run"`` and its own time as ``process_time``. The rest is the source's payload, beside
the envelope (a server's ``server``, a fault's ``type`` and ``target``, a request's
``endpoint``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard, get_args

from harness._files import ARTEFACT_LIMIT, TOO_BIG_HINT, parse_json, read_text
from harness.errors import ConfigError

__all__ = ["ENVELOPE", "SOURCES", "Record", "Source", "read_records"]

Source = Literal["runtime", "server", "fault", "api"]
SOURCES: tuple[str, ...] = get_args(Source)
# The envelope's fields, in the order they are written; ``clock`` and ``process_time`` are
# added when a record is moved onto the run's clock.
ENVELOPE = ("source", "kind", "time", "seq", "wall", "process", "clock", "process_time")
_OPTIONAL = ("seq", "wall", "process", "clock", "process_time")


@dataclass(frozen=True, slots=True)
class Record:
    """One record: the common envelope and the source's own ``payload``."""

    source: Source
    kind: str
    time: float
    seq: int | None = None
    wall: float | None = None
    process: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as one flat JSON-ready object: the envelope first, then the payload."""
        data: dict[str, Any] = {"source": self.source, "kind": self.kind, "time": self.time}
        for key in ("seq", "wall", "process"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        clash = set(self.payload) & set(ENVELOPE)
        if clash:
            raise ValueError(f"a {self.source} record's payload reuses envelope fields {clash}")
        data.update(self.payload)
        return data

    @classmethod
    def from_json(
        cls, row: Mapping[str, Any], *, path: Path | None = None, line: int | None = None
    ) -> Record:
        """The record of a JSON object; one without a valid envelope is a ``ConfigError``
        naming the file, line, field and value."""

        def bad(name: str, want: str) -> ConfigError:
            return ConfigError(
                f"a run record's {name} must be {want}",
                path=path,
                line=line,
                field=name,
                value=row.get(name),
            )

        source, kind, time = row.get("source"), row.get("kind"), row.get("time")
        if source not in SOURCES:
            raise bad("source", " | ".join(SOURCES))
        if not isinstance(kind, str) or not kind:
            raise bad("kind", "a non-empty string")
        if not _number(time):
            raise bad("time", "a number (seconds)")
        seq = row.get("seq")
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
            raise bad("seq", "an integer")
        for name in ("wall", "process_time"):
            if row.get(name) is not None and not _number(row.get(name)):
                raise bad(name, "a number")
        return cls(
            source=source,
            kind=kind,
            time=float(time),
            seq=seq,
            wall=row.get("wall"),
            process=row.get("process"),
            payload={k: v for k, v in row.items() if k not in ENVELOPE},
        )


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file (``events.jsonl``, ``journal.jsonl``), each checked
    against the envelope; a missing file is empty. A file that is not a regular UTF-8 file
    within ``ARTEFACT_LIMIT``, or a line that is not a record, is a ``ConfigError`` naming the
    file, line and field."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    text = read_text(path, what=path.name, limit=ARTEFACT_LIMIT, hint=TOO_BIG_HINT)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = parse_json(line, path=path, line=number)
        if not isinstance(row, dict):
            raise ConfigError("each line must be a JSON object", path=path, line=number)
        Record.from_json(row, path=path, line=number)
        rows.append(row)
    return rows
