"""The seed space of an exploration and its deterministic split into shards."""

from __future__ import annotations

import re

from harness.errors import ConfigError

__all__ = ["parse_shard", "shard_seeds"]


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (1 <= I <= N) as ``(I, N)``; anything else is a ``ConfigError``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ConfigError("expected I/N, e.g. 2/4", field="--shard", value=text)
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise ConfigError("shard index must be between 1 and N", field="--shard", value=text)
    return index, count


def shard_seeds(runs: int, *, shard: tuple[int, int] = (1, 1), first_seed: int = 0) -> range:
    """The seeds shard ``I/N`` runs out of ``first_seed .. first_seed + runs - 1``.

    Seeds are dealt round-robin (shard I takes every N-th seed from the (I-1)-th), so the N
    shards together run every seed exactly once and each gets the same number, +-1.
    """
    index, count = shard
    return range(first_seed + index - 1, first_seed + runs, count)
