"""The live, ordered set of toxics of one target (a proxy), watched by its links."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import anyio

from harness.errors import FaultConfigError
from harness.faults.toxics import ToxicSpec

__all__ = ["ToxicEntry", "ToxicSet"]


@dataclass(frozen=True, slots=True)
class ToxicEntry:
    """A toxic as installed: ``generation`` changes on every add or update, so a link knows to
    draw a new toxicity decision for it."""

    spec: ToxicSpec
    generation: int


class ToxicSet:
    """Toxics by name, in the order they were added (the order they are chained)."""

    def __init__(self) -> None:
        self._entries: dict[str, ToxicEntry] = {}
        self._generation = 0
        self._changed: anyio.Event | None = None

    def __iter__(self) -> Iterator[ToxicSpec]:
        return iter([entry.spec for entry in self._entries.values()])

    def __len__(self) -> int:
        return len(self._entries)

    def changed(self) -> anyio.Event:
        """An event set at the next change of the set."""
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def chain(self, stream: str) -> list[ToxicEntry]:
        return [entry for entry in self._entries.values() if entry.spec.stream == stream]

    def get(self, name: str) -> ToxicSpec:
        entry = self._entries.get(name)
        if entry is None:
            raise FaultConfigError("toxic not found", status=404, field="name", value=name)
        return entry.spec

    def add(self, spec: ToxicSpec) -> None:
        if spec.name in self._entries:
            raise FaultConfigError(
                "toxic already exists", status=409, field="name", value=spec.name
            )
        self._put(spec)

    def replace(self, spec: ToxicSpec) -> None:
        """Install a changed version of an existing toxic (keeps its place in the chain)."""
        self.get(spec.name)
        self._put(spec)

    def remove(self, name: str) -> ToxicSpec:
        spec = self.get(name)
        del self._entries[name]
        self._notify()
        return spec

    def clear(self) -> list[ToxicSpec]:
        removed = [entry.spec for entry in self._entries.values()]
        if removed:
            self._entries.clear()
            self._notify()
        return removed

    def _put(self, spec: ToxicSpec) -> None:
        self._generation += 1
        self._entries[spec.name] = ToxicEntry(spec, self._generation)
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
