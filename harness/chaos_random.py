"""``ChaosRandom``: the one seeded source of randomness of a run.

Every random decision (ids, jitter, toxicity, scheduling) draws from a ``ChaosRandom`` passed
explicitly. Components take a named child stream (``fork("fake-anthropic")``) so adding draws
in one component never shifts the draws of another: the same seed gives the same ids and the
same schedule. The global ``random`` module is never used.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["ChaosRandom"]

T = TypeVar("T")

_ID_ALPHABET = string.ascii_letters + string.digits


class ChaosRandom:
    """A seeded random source with independent named sub-streams."""

    __slots__ = ("_rng", "name", "seed")

    def __init__(self, seed: int, *, name: str = "root") -> None:
        self.seed = seed
        self.name = name
        digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
        self._rng = random.Random(int.from_bytes(digest[:8], "big"))

    def fork(self, name: str) -> ChaosRandom:
        """An independent stream derived from this seed and ``name`` (not from draws so far)."""
        return ChaosRandom(self.seed, name=f"{self.name}/{name}")

    def getstate(self) -> list[Any]:
        """The stream's position as JSON-ready data (``setstate`` goes back to it)."""
        version, internal, gauss = self._rng.getstate()
        return [version, list(internal), gauss]

    def setstate(self, state: list[Any]) -> None:
        version, internal, gauss = state
        self._rng.setstate((version, tuple(internal), gauss))

    def random(self) -> float:
        """A float in [0, 1)."""
        return self._rng.random()

    def uniform(self, low: float, high: float) -> float:
        return self._rng.uniform(low, high)

    def randint(self, low: int, high: int) -> int:
        """An int in [low, high], both ends included."""
        return self._rng.randint(low, high)

    def gauss(self, mu: float, sigma: float) -> float:
        return self._rng.gauss(mu, sigma)

    def lognormvariate(self, mu: float, sigma: float) -> float:
        return self._rng.lognormvariate(mu, sigma)

    def paretovariate(self, alpha: float) -> float:
        return self._rng.paretovariate(alpha)

    def choice(self, options: Sequence[T]) -> T:
        return self._rng.choice(options)

    def shuffle(self, items: list[T]) -> None:
        self._rng.shuffle(items)

    def chance(self, probability: float) -> bool:
        """True with the given probability (1.0 always, 0.0 never, no draw at either end)."""
        if probability >= 1.0:
            return True
        if probability <= 0.0:
            return False
        return self._rng.random() < probability

    def token(self, length: int = 24) -> str:
        """A random alphanumeric string, e.g. the tail of a ``msg_…`` or ``toolu_…`` id."""
        return "".join(self._rng.choice(_ID_ALPHABET) for _ in range(length))

    def hex(self, nbytes: int) -> str:
        """``nbytes`` random bytes as lowercase hex (for trace and span ids)."""
        return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def getrandbits(self, k: int) -> int:
        return self._rng.getrandbits(k)
