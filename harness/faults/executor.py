"""Carrying out ``FrameEngine`` verdicts, once for every transport.

The engine decides what happens to a frame; ``VerdictExecutor`` does it in the same order for
the in-process transport and the stdio interposer, through an ``Actuator`` that knows how to
move, corrupt and inject that transport's frames and how to kill or freeze its server. Each
behaviour is decided here once:

- a released response (``late_response``) is sent downstream after its delay;
- a frozen server is stopped before the frame that triggered the freeze moves on, so it sees
  that frame only once it thaws; every other action runs after the frame was delivered;
- a delayed frame carries its actions with it (they run after its delivery);
- ``corrupt`` leaves the receiver a frame it cannot parse: on the wire the first part of its
  bytes, in process what an SDK transport hands on for such a line (the parse error);
- a signal with ``after`` waits that long, in the background.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

from harness.clock import Clock
from harness.faults.frame_engine import Inject, Signal, Verdict

__all__ = ["Actuator", "VerdictExecutor"]

Item = TypeVar("Item")


class Actuator(Protocol[Item]):
    """What a transport does for the executor."""

    async def send(self, stream: str, item: Item) -> None:
        """Deliver ``item`` in ``stream`` (``upstream``: to the server)."""

    def corrupted(self, item: Item, keep: float) -> Item:
        """``item`` as a frame the receiver cannot parse (``keep``: the share of bytes left)."""

    def injected(self, action: Inject) -> Item:
        """The frame ``action`` injects."""

    async def kill(self, how: str) -> None:
        """End the server: ``SIGKILL``, ``SIGTERM`` or ``close_stdin``."""

    def freeze(self, seconds: float) -> None:
        """Stop the server from now for ``seconds``."""

    def spawn(self, work: Awaitable[None], stream: str | None) -> None:
        """Run ``work`` in the background (``stream``: the frames it will deliver there)."""


class VerdictExecutor(Generic[Item]):
    """Applies verdicts to the frames of one connection through ``actuator``."""

    def __init__(self, actuator: Actuator[Item], clock: Clock) -> None:
        self._actuator = actuator
        self._clock = clock
        self._held: dict[Any, Item] = {}

    async def apply(self, verdict: Verdict, item: Item, stream: str) -> None:
        """Deliver ``item`` (a frame of ``stream``) as ``verdict`` says."""
        actuator = self._actuator
        if verdict.untouched:
            await actuator.send(stream, item)
            return
        for request, delay in verdict.release:
            held = self._held.pop(request, None)
            if held is not None:
                self._later(delay, "downstream", [held], [])
        if verdict.hold is not None:
            self._held[verdict.hold] = item
            return
        items: list[Item] = []
        if not verdict.drop:
            frame = item if verdict.corrupt is None else actuator.corrupted(item, verdict.corrupt)
            items = [frame] * (1 + verdict.copies)
        if verdict.delay > 0:
            self._later(verdict.delay, stream, items, verdict.after)
            return
        now = [action for action in verdict.after if _freezes_now(action)]
        await self.act(now)
        for frame in items:
            await actuator.send(stream, frame)
        await self.act([action for action in verdict.after if action not in now])

    async def act(self, actions: list[Inject | Signal]) -> None:
        """Inject frames and signal the server, in order."""
        for action in actions:
            if isinstance(action, Inject):
                await self._actuator.send(action.stream, self._actuator.injected(action))
            elif action.after > 0:
                self._later(action.after, None, [], [replace(action, after=0)])
            elif action.action == "freeze":
                self._actuator.freeze(action.seconds)
            else:
                await self._actuator.kill(action.signal or "SIGKILL")

    def _later(
        self, delay: float, stream: str | None, items: list[Item], after: list[Inject | Signal]
    ) -> None:
        async def run() -> None:
            await self._clock.sleep(delay)
            for item in items:
                await self._actuator.send(stream or "downstream", item)
            await self.act(after)

        self._actuator.spawn(run(), stream)


def _freezes_now(action: Inject | Signal) -> bool:
    return isinstance(action, Signal) and action.action == "freeze" and action.after == 0
