"""``json_copy``: a deep copy of JSON data (conversations, journal records) several times as
fast as ``copy.deepcopy``, which dispatches on every value and keeps a memo of each."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

__all__ = ["json_copy"]

T = TypeVar("T")

_ATOMS = (str, int, float, bool, type(None))


def json_copy(value: T) -> T:
    """A copy of ``value`` sharing no dict or list with it; plain dicts, lists and scalars are
    copied directly, anything else (a tuple, a dict subclass, an object) by ``copy.deepcopy``.
    Unlike ``deepcopy``, a dict or list reached twice is copied twice (JSON has no sharing)."""
    return _copy(value)  # type: ignore[no-any-return]


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)
