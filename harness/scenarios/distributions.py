"""Distributions in scenario files: timing drawn from the run seed instead of written down.

Wherever a scenario gives a number under ``runtime``, ``model``, ``servers`` or ``faults`` (tool
latencies, model turn latencies, scheduled task times, server timeouts, fault triggers, durations,
probabilities and toxic parameters), it may give a distribution instead. A distribution is a
mapping with one of these keys::

    latency: {uniform: [100, 200]}                      # float in [100, 200]
    at: {randint: [3600, 7200]}                         # int in [3600, 7200], both included
    latency: {normal: {mu: 150, sigma: 20, min: 0}}      # clamped to [min, max] when given
    latency: {lognormal: {mu: 3.0, sigma: 0.5, max: 300}}   # exp(N(mu, sigma)), clamped
    latency: {pareto: {alpha: 2.0, scale: 10}}          # scale * Pareto(alpha), >= scale
    oversized_bytes: {choice: [500, 4000], weights: [3, 1]}  # weights optional
    fail:                                                # a fault present with probability p
      - {chance: 0.3, then: {kind: rate_limit, retry_after: 2}}
    faults:
      - {type: freeze, target: ssh, seconds: {uniform: [100, 200]}, at: {uniform: [0, 60]}}
      - {chance: 0.5, then: {type: kill, target: ssh, at: 30}}

``chance`` takes ``then`` (used with probability p) and optional ``else``; without ``else`` the
entry is removed (a list item, or a mapping key so the field takes its default). Distributions
do not nest. Tool-call ``input``, match ``args`` and a declared tool's ``input_schema`` are data,
never read as distributions.

A ``Scenario`` keeps each distribution under its JSON pointer (``/servers/ssh/timeout``) and a
*nominal* value in place (the lower end; ``then`` for ``chance``), so the scripts validate at
load. ``resolve_data`` draws every value from ``ChaosRandom(seed).fork("scenario")``, one
sub-stream per pointer: a value depends only on the seed and where it is, so adding a
distribution never shifts the others, and a draw can be overridden alone (shrinking does).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from harness.chaos_random import ChaosRandom
from harness.errors import ScenarioError

__all__ = [
    "KINDS",
    "REMOVED",
    "DistributionError",
    "Spec",
    "draw",
    "extract",
    "json_schemas",
    "parse_spec",
    "pointer",
    "resolve_data",
    "set_at",
    "split_pointer",
]

KINDS: Final = ("uniform", "randint", "normal", "lognormal", "pareto", "choice", "chance")
SECTIONS: Final = ("runtime", "model", "servers", "faults")
# Keys whose values are data passed through to tools or matched against: never distributions.
_DATA_KEYS: Final = frozenset({"input", "args", "input_schema"})
_BOUNDED: Final = {"normal": ("mu", "sigma"), "lognormal": ("mu", "sigma"), "pareto": ("alpha",)}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of distributions, for ``harness schema``: ``Distribution`` (any kind, where
    a number is expected) and ``Pick`` (``choice`` or ``chance``, which stand for any value)."""
    number = {"type": "number"}
    pair = {"type": "array", "items": number, "minItems": 2, "maxItems": 2}
    bounds = {"min": number, "max": number}

    def one(kind: str, arg: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {kind: arg, **extra},
            "required": [kind],
            "additionalProperties": False,
        }

    def params(*required: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
        names = (*required, *optional)
        return {
            "type": "object",
            "properties": {**{k: number for k in names}, **bounds},
            "required": list(required),
            "additionalProperties": False,
        }

    choice = one("choice", {"type": "array", "minItems": 1}, weights={"type": "array"})
    chance = one("chance", {"type": "number", "minimum": 0, "maximum": 1}, then={}, **{"else": {}})
    chance["required"] = ["chance", "then"]
    return {
        "Distribution": {
            "description": "a number drawn from the run's seed (harness.scenarios.distributions)",
            "anyOf": [
                one("uniform", pair),
                one("randint", {**pair, "items": {"type": "integer"}}),
                one("normal", params("mu", "sigma")),
                one("lognormal", params("mu", "sigma")),
                one("pareto", params("alpha", optional=("scale",))),
                choice,
                chance,
            ],
        },
        "Pick": {
            "description": "choice or chance: a value drawn from the run's seed",
            "anyOf": [choice, chance],
        },
    }


class _Removed:
    def __repr__(self) -> str:
        return "REMOVED"


REMOVED: Final = _Removed()
"""A ``chance`` draw that left its entry out."""


class DistributionError(ScenarioError):
    """A malformed distribution at ``loc`` (the path of keys inside the scenario)."""

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message, field=".".join(map(str, loc)) or None)
        self.loc = loc


@dataclass(frozen=True, slots=True)
class Spec:
    """A parsed distribution: its kind and checked parameters."""

    kind: str
    params: Mapping[str, Any]

    @property
    def low(self) -> Any:
        """The simplest value: the lower bound, the first choice, or ``then`` for chance."""
        p = self.params
        if self.kind in ("uniform", "randint"):
            return p["range"][0]
        if self.kind == "choice":
            return p["options"][0]
        if self.kind == "chance":
            return p["then"]
        if p.get("min") is not None:
            return p["min"]
        if self.kind == "normal":
            return p["mu"]
        if self.kind == "lognormal":
            return _clamp(math.exp(p["mu"]), p)
        return _clamp(p["scale"], p)

    def to_json(self) -> dict[str, Any]:
        p = dict(self.params)
        if self.kind in ("uniform", "randint"):
            return {self.kind: list(p["range"])}
        if self.kind == "choice":
            out: dict[str, Any] = {"choice": list(p["options"])}
            if p.get("weights") is not None:
                out["weights"] = list(p["weights"])
            return out
        if self.kind == "chance":
            out = {"chance": p["p"], "then": p["then"]}
            if "else" in p:
                out["else"] = p["else"]
            return out
        return {self.kind: {k: v for k, v in p.items() if v is not None}}


# The largest magnitude a distribution parameter may have: 10^12 seconds is 30,000 years, far
# past any run budget, and keeps every draw (and its conversion to float) finite.
MAX_MAGNITUDE: Final = 1e12
# exp() overflows a float past ~709.78: a lognormal needs mu plus ten sigmas below that.
_LOG_LIMIT: Final = 700.0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and _finite(value)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _too_large(values: Any, kind: str, here: tuple[int | str, ...]) -> None:
    for v in values:
        number = isinstance(v, int | float) and not isinstance(v, bool)
        if number and v != v:  # NaN
            raise DistributionError(here, f"{kind} value nan is not a number")
        if number and (not _finite(v) or abs(v) > MAX_MAGNITUDE):
            raise DistributionError(
                here, f"{kind} value {_short(v)} is too large (at most {MAX_MAGNITUDE:g})"
            )


def _short(value: int | float) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def _contains_spec(value: Any) -> bool:
    if isinstance(value, Mapping):
        return _is_spec(value) or any(_contains_spec(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_spec(v) for v in value)
    return False


def _is_spec(value: Any) -> bool:
    return isinstance(value, Mapping) and any(k in KINDS for k in value)


def parse_spec(value: Mapping[str, Any], loc: tuple[int | str, ...] = ()) -> Spec:
    """Check one distribution mapping; a problem raises ``DistributionError`` at ``loc``."""
    kinds = [str(k) for k in value if k in KINDS]
    if len(kinds) != 1:
        raise DistributionError(loc, f"one distribution per value (got {', '.join(kinds)})")
    kind = kinds[0]
    allowed = {"choice": {"choice", "weights"}, "chance": {"chance", "then", "else"}}.get(
        kind, {kind}
    )
    extra = sorted(str(k) for k in value if k not in allowed)
    if extra:
        raise DistributionError(
            (*loc, extra[0]), f"unexpected key {extra[0]!r} in a {kind} distribution"
        )
    arg = value[kind]
    here = (*loc, kind)
    if kind in ("uniform", "randint"):
        if isinstance(arg, list):
            _too_large(arg, kind, here)
        if not (isinstance(arg, list) and len(arg) == 2 and all(_number(v) for v in arg)):
            raise DistributionError(here, f"{kind} takes [low, high] (two numbers)")
        if kind == "randint" and not all(isinstance(v, int) for v in arg):
            raise DistributionError(here, "randint takes two integers")
        if arg[0] > arg[1]:
            raise DistributionError(here, f"{kind} low {arg[0]} is above high {arg[1]}")
        return Spec(kind, {"range": (arg[0], arg[1])})
    if kind in _BOUNDED:
        return Spec(kind, _bounded_params(kind, arg, here))
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise DistributionError(here, "choice takes a non-empty list of values")
        if any(_contains_spec(v) for v in arg):
            raise DistributionError(here, "distributions do not nest")
        weights = value.get("weights")
        if weights is not None and not (
            isinstance(weights, list)
            and len(weights) == len(arg)
            and all(_number(w) and w >= 0 for w in weights)
            and sum(weights) > 0
        ):
            raise DistributionError(
                (*loc, "weights"), "weights: one non-negative number per choice, not all zero"
            )
        return Spec(kind, {"options": tuple(arg), "weights": weights})
    # chance
    if not _number(arg) or not 0 <= arg <= 1:
        raise DistributionError(here, "chance takes a probability between 0 and 1")
    if "then" not in value:
        raise DistributionError(loc, "a chance distribution needs 'then'")
    params: dict[str, Any] = {"p": float(arg), "then": value["then"]}
    if "else" in value:
        params["else"] = value["else"]
    if _contains_spec(value["then"]) or _contains_spec(value.get("else")):
        raise DistributionError(loc, "distributions do not nest")
    return Spec(kind, params)


def _bounded_params(kind: str, arg: Any, here: tuple[int | str, ...]) -> dict[str, Any]:
    required = _BOUNDED[kind]
    optional = ("min", "max") + (("scale",) if kind == "pareto" else ())
    if not isinstance(arg, Mapping):
        raise DistributionError(here, f"{kind} takes a mapping with {', '.join(required)}")
    for key in arg:
        if key not in required and key not in optional:
            raise DistributionError(
                (*here, key),
                f"unknown {kind} parameter {key!r} (accepted: {', '.join(required + optional)})",
            )
    for key in required:
        if key not in arg:
            raise DistributionError(here, f"{kind} needs {key!r}")
    _too_large(arg.values(), kind, here)
    for key, v in arg.items():
        if not _number(v):
            raise DistributionError((*here, key), f"{kind} {key} must be a number")
    params: dict[str, Any] = {"min": arg.get("min"), "max": arg.get("max")}
    params.update({k: arg[k] for k in required})
    if kind == "pareto":
        params["scale"] = arg.get("scale", 1.0)
        if params["alpha"] <= 0 or params["scale"] <= 0:
            raise DistributionError(here, "pareto alpha and scale must be positive")
    elif params["sigma"] < 0:
        raise DistributionError((*here, "sigma"), f"{kind} sigma must not be negative")
    elif kind == "lognormal" and params["mu"] + 10 * params["sigma"] > _LOG_LIMIT:
        raise DistributionError(
            here,
            f"lognormal mu {params['mu']} and sigma {params['sigma']} overflow: mu is the log "
            f"of the value, so mu + 10 sigma must stay below {_LOG_LIMIT:g}",
        )
    if params["min"] is not None and params["max"] is not None and params["min"] > params["max"]:
        raise DistributionError(here, f"{kind} min {params['min']} is above max {params['max']}")
    return params


def _clamp(value: float, params: Mapping[str, Any]) -> float:
    if params.get("min") is not None:
        value = max(value, params["min"])
    if params.get("max") is not None:
        value = min(value, params["max"])
    return value


def draw(spec: Spec, rng: ChaosRandom) -> Any:
    """One value of ``spec`` from ``rng``; for ``chance``, True when ``then`` was taken."""
    p = spec.params
    if spec.kind == "uniform":
        return rng.uniform(*p["range"])
    if spec.kind == "randint":
        return rng.randint(*p["range"])
    if spec.kind == "normal":
        return _clamp(rng.gauss(p["mu"], p["sigma"]), p)
    if spec.kind == "lognormal":
        return _clamp(_or_inf(lambda: rng.lognormvariate(p["mu"], p["sigma"])), p)
    if spec.kind == "pareto":
        return _clamp(_or_inf(lambda: p["scale"] * rng.paretovariate(p["alpha"])), p)
    if spec.kind == "choice":
        options, weights = p["options"], p["weights"]
        if weights is None:
            return rng.choice(options)
        mark, total = rng.random() * sum(weights), 0.0
        for option, weight in zip(options, weights, strict=True):
            total += weight
            if mark < total:
                return option
        return options[-1]
    return rng.chance(p["p"])


def _or_inf(sample: Callable[[], float]) -> float:
    # A heavy tail (a tiny pareto alpha) can leave float range; the draw is then infinite, a
    # ``max`` clamps it, and a field that needs a finite number names itself and the seed.
    try:
        return sample()
    except (OverflowError, ZeroDivisionError):
        return math.inf


def value_of(spec: Spec, drawn: Any) -> Any:
    """The value placed in the scenario for a draw (``REMOVED`` for a chance left out)."""
    if spec.kind != "chance":
        return drawn
    if drawn:
        return spec.params["then"]
    return spec.params.get("else", REMOVED)


def pointer(loc: tuple[int | str, ...]) -> str:
    """RFC 6901 JSON pointer of a path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)


def split_pointer(ptr: str) -> tuple[str, ...]:
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in ptr.split("/")[1:])


def _walk(
    value: Any, loc: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], Mapping[str, Any]]]:
    if isinstance(value, Mapping):
        if _is_spec(value):
            yield loc, value
            return
        for key, child in value.items():
            if key not in _DATA_KEYS:
                yield from _walk(child, (*loc, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, (*loc, index))


def extract(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Spec]]:
    """Find the distributions in scenario ``data``: a copy with nominal values in place, and
    the specs by JSON pointer (document order). Raises ``DistributionError``."""
    found = [
        (loc, spec)
        for section in SECTIONS
        if section in data
        for loc, spec in _walk(data[section], (section,))
    ]
    if not found:
        return data, {}
    out = copy.deepcopy(data)
    specs: dict[str, Spec] = {}
    for loc, raw in found:
        spec = parse_spec(raw, loc)
        specs[pointer(loc)] = spec
        set_at(out, loc, spec.low)
    return out, specs


def set_at(data: Any, loc: tuple[int | str, ...], value: Any) -> None:
    """Put ``value`` at ``loc`` inside ``data`` (mappings and lists); ``REMOVED`` deletes."""
    node = data
    for part in loc[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[_key(node, part)]
    last = loc[-1]
    if isinstance(node, list):
        if value is REMOVED:
            del node[int(last)]
        else:
            node[int(last)] = value
    elif value is REMOVED:
        node.pop(_key(node, last), None)
    else:
        node[_key(node, last)] = value


def _key(node: dict[Any, Any], part: int | str) -> Any:
    # YAML may key a mapping by int (tool script ``calls: {1: ...}``); a pointer holds strings.
    if part in node:
        return part
    if isinstance(part, str) and part.lstrip("-").isdigit() and int(part) in node:
        return int(part)
    return part


def resolve_data(
    data: dict[str, Any],
    specs: Mapping[str, Spec],
    *,
    seed: int,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Draw every distribution for ``seed`` into a copy of ``data``.

    Returns the data with plain values and the draws by pointer (for ``chance``: whether
    ``then`` was taken). ``overrides`` maps pointers to draws to use instead.
    """
    out = copy.deepcopy(data)
    root = ChaosRandom(seed).fork("scenario")
    draws: dict[str, Any] = {}
    removed: list[tuple[int | str, ...]] = []
    for ptr, spec in specs.items():
        if overrides is not None and ptr in overrides:
            drawn = overrides[ptr]
        else:
            drawn = draw(spec, root.fork(ptr))
        draws[ptr] = drawn
        value = value_of(spec, drawn)
        loc: tuple[int | str, ...] = split_pointer(ptr)
        if value is REMOVED:
            removed.append(loc)
        else:
            _place(out, loc, value)
    # Deepest and last first, so removing a list item never shifts one still to remove.
    for loc in sorted(removed, key=_removal_order, reverse=True):
        _place(out, loc, REMOVED)
    return out, draws


def _place(data: dict[str, Any], loc: tuple[int | str, ...], value: Any) -> None:
    try:
        set_at(data, loc, value)
    except (LookupError, TypeError, ValueError):
        raise DistributionError(loc, "the distribution points to no value here") from None


def _removal_order(loc: tuple[int | str, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((1, int(p), "") if str(p).isdigit() else (0, 0, str(p)) for p in loc)
