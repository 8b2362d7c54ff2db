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

A tool's ``latency`` in a fake server's script is the exception that stays a distribution: the
server draws it per call, and the draw here is its first call's (``first``); ``draw: per_run``
makes it a plain per-run draw like any other.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, ClassVar, Final, Literal, Self, cast, get_args

from pydantic import BaseModel, ConfigDict, Field

from harness._copy import json_copy
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

SECTIONS: Final = ("runtime", "model", "servers", "faults")
# Keys whose values are data passed through to tools or matched against: never distributions.
_DATA_KEYS: Final = frozenset({"input", "args", "input_schema"})


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


Number = int | float


def _kind_of(cls: type[BaseModel]) -> str:
    default: str = cls.model_fields["kind"].default
    return default


class _Distribution(BaseModel):
    """One parsed distribution; ``parse`` checks the written mapping (errors located at
    ``loc``), ``draw`` takes one value from an ``rng``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    companions: ClassVar[frozenset[str]] = frozenset()
    """The keys its mapping may hold beside its kind's."""

    @classmethod
    def parse(cls, value: Mapping[str, Any], loc: tuple[int | str, ...]) -> Self:
        raise NotImplementedError

    @property
    def low(self) -> Any:
        """The simplest value: the lower bound, the first choice, or ``then`` for chance."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def draw(self, rng: ChaosRandom) -> Any:
        raise NotImplementedError

    def value_of(self, drawn: Any) -> Any:
        """The value placed in the scenario for a draw (``REMOVED`` for a chance left out)."""
        return drawn


class _Range(_Distribution):
    range: tuple[Number, Number]

    @classmethod
    def parse(cls, value: Mapping[str, Any], loc: tuple[int | str, ...]) -> Self:
        kind = _kind_of(cls)
        arg = value[kind]
        here = (*loc, kind)
        if isinstance(arg, list):
            _too_large(arg, kind, here)
        if not (isinstance(arg, list) and len(arg) == 2 and all(_number(v) for v in arg)):
            raise DistributionError(here, f"{kind} takes [low, high] (two numbers)")
        cls._check(arg, here)
        if arg[0] > arg[1]:
            raise DistributionError(here, f"{kind} low {arg[0]} is above high {arg[1]}")
        return cls(range=(arg[0], arg[1]))

    @classmethod
    def _check(cls, arg: list[Any], here: tuple[int | str, ...]) -> None:
        """Kind-specific checks of ``[low, high]``."""

    @property
    def low(self) -> Any:
        return self.range[0]

    def to_json(self) -> dict[str, Any]:
        return {_kind_of(type(self)): list(self.range)}


class Uniform(_Range):
    kind: Literal["uniform"] = "uniform"

    def draw(self, rng: ChaosRandom) -> Any:
        return rng.uniform(*self.range)


class RandInt(_Range):
    kind: Literal["randint"] = "randint"

    @classmethod
    def _check(cls, arg: list[Any], here: tuple[int | str, ...]) -> None:
        if not all(isinstance(v, int) for v in arg):
            raise DistributionError(here, "randint takes two integers")

    def draw(self, rng: ChaosRandom) -> Any:
        low, high = self.range
        return rng.randint(int(low), int(high))


class _Bounded(_Distribution):
    """A distribution with named parameters, clamped to ``[min, max]`` when given."""

    required: ClassVar[tuple[str, ...]]
    optional: ClassVar[tuple[str, ...]] = ("min", "max")
    min: Number | None = None
    max: Number | None = None

    @classmethod
    def parse(cls, value: Mapping[str, Any], loc: tuple[int | str, ...]) -> Self:
        kind = _kind_of(cls)
        arg = value[kind]
        here = (*loc, kind)
        required, optional = cls.required, cls.optional
        if not isinstance(arg, Mapping):
            raise DistributionError(here, f"{kind} takes a mapping with {', '.join(required)}")
        for key in arg:
            if key not in required and key not in optional:
                raise DistributionError(
                    (*here, key),
                    f"unknown {kind} parameter {key!r} "
                    f"(accepted: {', '.join(required + optional)})",
                )
        for key in required:
            if key not in arg:
                raise DistributionError(here, f"{kind} needs {key!r}")
        _too_large(arg.values(), kind, here)
        for key, v in arg.items():
            if not _number(v):
                raise DistributionError((*here, key), f"{kind} {key} must be a number")
        spec = cls(**arg)
        spec._check(here)
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            raise DistributionError(here, f"{kind} min {spec.min} is above max {spec.max}")
        return spec

    def _check(self, here: tuple[int | str, ...]) -> None:
        """Kind-specific checks of the parameters."""

    def _clamp(self, value: float) -> float:
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return value

    @property
    def low(self) -> Any:
        return self.min if self.min is not None else self._centre()

    def _centre(self) -> Any:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        fields = self.model_dump(exclude={"kind"}, exclude_none=True)
        return {_kind_of(type(self)): fields}


class _MuSigma(_Bounded):
    required: ClassVar[tuple[str, ...]] = ("mu", "sigma")
    mu: Number
    sigma: Number

    def _check(self, here: tuple[int | str, ...]) -> None:
        if self.sigma < 0:
            kind = _kind_of(type(self))
            raise DistributionError((*here, "sigma"), f"{kind} sigma must not be negative")


class Normal(_MuSigma):
    kind: Literal["normal"] = "normal"

    def _centre(self) -> Any:
        return self.mu

    def draw(self, rng: ChaosRandom) -> Any:
        return self._clamp(rng.gauss(self.mu, self.sigma))


class LogNormal(_MuSigma):
    kind: Literal["lognormal"] = "lognormal"

    def _check(self, here: tuple[int | str, ...]) -> None:
        super()._check(here)
        if self.mu + 10 * self.sigma > _LOG_LIMIT:
            raise DistributionError(
                here,
                f"lognormal mu {self.mu} and sigma {self.sigma} overflow: mu is the log "
                f"of the value, so mu + 10 sigma must stay below {_LOG_LIMIT:g}",
            )

    def _centre(self) -> Any:
        return self._clamp(math.exp(self.mu))

    def draw(self, rng: ChaosRandom) -> Any:
        return self._clamp(_or_inf(lambda: rng.lognormvariate(self.mu, self.sigma)))


class Pareto(_Bounded):
    kind: Literal["pareto"] = "pareto"
    required: ClassVar[tuple[str, ...]] = ("alpha",)
    optional: ClassVar[tuple[str, ...]] = ("min", "max", "scale")
    alpha: Number
    scale: Number = 1.0

    def _check(self, here: tuple[int | str, ...]) -> None:
        if self.alpha <= 0 or self.scale <= 0:
            raise DistributionError(here, "pareto alpha and scale must be positive")

    def _centre(self) -> Any:
        return self._clamp(self.scale)

    def draw(self, rng: ChaosRandom) -> Any:
        return self._clamp(_or_inf(lambda: self.scale * rng.paretovariate(self.alpha)))


class Choice(_Distribution):
    kind: Literal["choice"] = "choice"
    companions: ClassVar[frozenset[str]] = frozenset({"weights"})
    options: tuple[Any, ...]
    weights: tuple[Number, ...] | None = None

    @classmethod
    def parse(cls, value: Mapping[str, Any], loc: tuple[int | str, ...]) -> Self:
        arg = value["choice"]
        here = (*loc, "choice")
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
        return cls(options=tuple(arg), weights=None if weights is None else tuple(weights))

    @property
    def low(self) -> Any:
        return self.options[0]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"choice": list(self.options)}
        if self.weights is not None:
            out["weights"] = list(self.weights)
        return out

    def draw(self, rng: ChaosRandom) -> Any:
        if self.weights is None:
            return rng.choice(self.options)
        mark, total = rng.random() * sum(self.weights), 0.0
        for option, weight in zip(self.options, self.weights, strict=True):
            total += weight
            if mark < total:
                return option
        return self.options[-1]


class Chance(_Distribution):
    """``then`` with probability ``p``, else ``otherwise`` (written ``else``; without it the
    entry is removed)."""

    kind: Literal["chance"] = "chance"
    companions: ClassVar[frozenset[str]] = frozenset({"then", "else"})
    p: float
    then: Any
    otherwise: Any = REMOVED

    @classmethod
    def parse(cls, value: Mapping[str, Any], loc: tuple[int | str, ...]) -> Self:
        arg = value["chance"]
        if not _number(arg) or not 0 <= arg <= 1:
            raise DistributionError((*loc, "chance"), "chance takes a probability between 0 and 1")
        if "then" not in value:
            raise DistributionError(loc, "a chance distribution needs 'then'")
        if _contains_spec(value["then"]) or _contains_spec(value.get("else")):
            raise DistributionError(loc, "distributions do not nest")
        return cls(p=float(arg), then=value["then"], otherwise=value.get("else", REMOVED))

    @property
    def low(self) -> Any:
        return self.then

    def to_json(self) -> dict[str, Any]:
        out = {"chance": self.p, "then": self.then}
        if self.otherwise is not REMOVED:
            out["else"] = self.otherwise
        return out

    def draw(self, rng: ChaosRandom) -> Any:
        """True when ``then`` was taken."""
        return rng.chance(self.p)

    def value_of(self, drawn: Any) -> Any:
        return self.then if drawn else self.otherwise


Spec = Annotated[
    Uniform | RandInt | Normal | LogNormal | Pareto | Choice | Chance,
    Field(discriminator="kind"),
]
"""A parsed distribution; pydantic picks the class from ``kind``."""

_BY_KIND: Final[dict[str, type[_Distribution]]] = {
    _kind_of(cls): cls for cls in get_args(get_args(Spec)[0])
}
KINDS: Final = tuple(_BY_KIND)


def parse_spec(value: Mapping[str, Any], loc: tuple[int | str, ...] = ()) -> Spec:
    """Check one distribution mapping; a problem raises ``DistributionError`` at ``loc``."""
    kinds = [str(k) for k in value if k in KINDS]
    if len(kinds) != 1:
        raise DistributionError(loc, f"one distribution per value (got {', '.join(kinds)})")
    kind = _BY_KIND[kinds[0]]
    extra = sorted(str(k) for k in value if k != kinds[0] and k not in kind.companions)
    if extra:
        raise DistributionError(
            (*loc, extra[0]), f"unexpected key {extra[0]!r} in a {kinds[0]} distribution"
        )
    return cast("Spec", kind.parse(value, loc))


def draw(spec: Spec, rng: ChaosRandom) -> Any:
    """One value of ``spec`` from ``rng``; for ``chance``, True when ``then`` was taken."""
    return spec.draw(rng)


def _or_inf(sample: Callable[[], float]) -> float:
    # A heavy tail (a tiny pareto alpha) can leave float range; the draw is then infinite, a
    # ``max`` clamps it, and a field that needs a finite number names itself and the seed.
    try:
        return sample()
    except (OverflowError, ZeroDivisionError):
        return math.inf


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
        if _server_latency(loc):
            # A fake server draws a tool's latency per call (the script keeps the
            # distribution); the first call's value is the run's draw here, so a seed's
            # draws are listed, overridable and shrinkable like any other. ``draw: per_run``
            # makes it a plain number for every call.
            spec = parse_spec({k: v for k, v in raw.items() if k not in ("draw", "first")}, loc)
            if "first" in raw:
                continue  # its first call's value is given (gathered before, or written)
            if raw.get("draw", "per_call") == "per_call":
                specs[pointer(loc)] = spec
                set_at(out, loc, {**raw, "first": spec.low})
                continue
        else:
            spec = parse_spec(raw, loc)
        specs[pointer(loc)] = spec
        set_at(out, loc, spec.low)
    return out, specs


def _server_latency(loc: tuple[int | str, ...]) -> bool:
    """A latency in a fake server's script (``servers.NAME.script.tools...latency``)."""
    return loc[:1] == ("servers",) and loc[2:4] == ("script", "tools") and loc[-1] == "latency"


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
    """Draw every distribution for ``seed`` into a copy of ``data`` (JSON data).

    Returns the data with plain values and the draws by pointer (for ``chance``: whether
    ``then`` was taken). ``overrides`` maps pointers to draws to use instead.
    """
    out = json_copy(data)
    root = ChaosRandom(seed).fork("scenario")
    draws: dict[str, Any] = {}
    removed: list[tuple[int | str, ...]] = []
    for ptr, spec in specs.items():
        if overrides is not None and ptr in overrides:
            drawn = overrides[ptr]
        else:
            drawn = draw(spec, root.fork(ptr))
        draws[ptr] = drawn
        value = spec.value_of(drawn)
        loc: tuple[int | str, ...] = split_pointer(ptr)
        if value is REMOVED:
            removed.append(loc)
        elif _server_latency(loc) and isinstance(_value_at(out, loc), dict):
            _value_at(out, loc)["first"] = value  # drawn per call after the first
        else:
            _place(out, loc, value)
    # Deepest and last first, so removing a list item never shifts one still to remove.
    for loc in sorted(removed, key=_removal_order, reverse=True):
        _place(out, loc, REMOVED)
    return out, draws


def _value_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    try:
        for part in loc:
            data = data[int(part)] if isinstance(data, list) else data[_key(data, part)]
    except (LookupError, TypeError, ValueError):
        return None
    return data


def _place(data: dict[str, Any], loc: tuple[int | str, ...], value: Any) -> None:
    try:
        set_at(data, loc, value)
    except (LookupError, TypeError, ValueError):
        raise DistributionError(loc, "the distribution points to no value here") from None


def _removal_order(loc: tuple[int | str, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((1, int(p), "") if str(p).isdigit() else (0, 0, str(p)) for p in loc)
