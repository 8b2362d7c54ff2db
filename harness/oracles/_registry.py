"""Oracle registry: a name maps to a function from a ``RunRecord`` to a ``Verdict``.

An oracle declares the evidence it reads (``needs``, names from ``record.EVIDENCE``). When the
record lacks one (a bare trace has no API journal or final answers), ``check`` answers
"cannot judge" with what is missing instead of calling the oracle: a verdict without its
evidence is never a pass.

An oracle with parameters (``@parameterised(name, params=Model)``) takes them from the
scenario (``- answer_contains: {text: done}``), validated by ``Model`` when the scenario loads.
The same oracle may be listed more than once under labels, ``name#label``
(``- answer_never_contains#canary: {text: XYZZY}``): each label is its own verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from harness._yaml import validation_error
from harness.errors import ConfigError
from harness.oracles.record import EVIDENCE, RunRecord

__all__ = [
    "NEEDS",
    "ORACLES",
    "PARAMS",
    "Oracle",
    "Verdict",
    "base_name",
    "check",
    "oracle",
    "parameterised",
    "params_error",
]

Status = Literal["holds", "fails", "cannot judge"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """An oracle's answer: does the invariant hold, why (one sentence), and the evidence.

    ``judged`` is false when the record lacked what the oracle needs: then ``holds`` is
    false too and the sentence says what was missing."""

    name: str
    holds: bool
    explanation: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    judged: bool = True

    @classmethod
    def cannot_judge(cls, name: str, missing: str) -> Verdict:
        return cls(name, False, f"cannot judge: {missing}", judged=False)

    @property
    def status(self) -> Status:
        if not self.judged:
            return "cannot judge"
        return "holds" if self.holds else "fails"

    @property
    def fails(self) -> bool:
        """Judged, and the invariant was broken."""
        return self.judged and not self.holds

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.status,
            "explanation": self.explanation,
            "evidence": self.evidence,
        }


Oracle = Callable[[RunRecord], Verdict]
P = TypeVar("P", bound=BaseModel)
# (record, validated parameters, the label it is listed under) -> verdict
ParamOracle = Callable[[RunRecord, P, str], Verdict]

ORACLES: dict[str, Oracle] = {}
NEEDS: dict[str, tuple[str, ...]] = {}
# The parameter model of each oracle that takes parameters.
PARAMS: dict[str, type[BaseModel]] = {}
_WITH_PARAMS: dict[str, Callable[[RunRecord, Any, str], Verdict]] = {}
# The parameter names of each oracle that reads its parameters itself: any other is refused at
# load, so a misspelt parameter never leaves the oracle judging something else.
ACCEPTS: dict[str, tuple[str, ...]] = {}


def _checked_needs(name: str, needs: Iterable[str]) -> tuple[str, ...]:
    required = tuple(needs)
    unknown = [n for n in required if n not in EVIDENCE]
    if unknown:
        raise ValueError(f"oracle {name!r} needs unknown evidence {unknown}")
    if name in ORACLES:
        raise ValueError(f"oracle {name!r} is registered twice")
    return required


def oracle(
    name: str, *, needs: Iterable[str] = (), accepts: Iterable[str] | None = None
) -> Callable[[Oracle], Oracle]:
    """Register an oracle under ``name`` (the name scenario files use); ``needs`` names the
    evidence it reads (keys of ``harness.oracles.record.EVIDENCE``); ``accepts`` the parameters
    it reads from the listing itself (others are refused at load)."""

    def register(fn: Oracle) -> Oracle:
        NEEDS[name] = _checked_needs(name, needs)
        if accepts is not None:
            ACCEPTS[name] = tuple(accepts)
        ORACLES[name] = fn
        return fn

    return register


def parameterised(
    name: str, *, params: type[P], needs: Iterable[str] = ()
) -> Callable[[ParamOracle[P]], ParamOracle[P]]:
    """Register an oracle that takes parameters (validated by ``params``, a pydantic model)
    from the scenario's listing, and the label it is listed under (``name`` or
    ``name#label``), which its verdict carries."""

    def register(fn: ParamOracle[P]) -> ParamOracle[P]:
        NEEDS[name] = _checked_needs(name, needs)
        PARAMS[name] = params
        _WITH_PARAMS[name] = fn
        ORACLES[name] = lambda record: _run(record, name)
        return fn

    return register


def base_name(label: str) -> str:
    """The oracle a listing names: ``answer_contains#done`` -> ``answer_contains``."""
    return label.split("#", 1)[0]


def params_error(label: str, params: object) -> tuple[str, tuple[int | str, ...]] | None:
    """Why ``params`` do not fit the oracle ``label`` names, and where (``None``: they fit).
    An unknown oracle is the caller's to report."""
    name = base_name(label)
    model = PARAMS.get(name)
    if model is None:
        if label != name:
            return f"{label}: only an oracle with parameters can be listed under a label", ()
        accepts = ACCEPTS.get(name)
        if accepts is not None and params is not None:
            if not isinstance(params, dict):
                return f"oracle {label}: takes a mapping of parameters ({', '.join(accepts)})", ()
            for key in params:
                if key not in accepts:
                    return (
                        f"oracle {label}: unknown parameter {str(key)!r}; it takes "
                        f"{', '.join(accepts)}",
                        (str(key),),
                    )
        return None
    try:
        model.model_validate(params if params is not None else {})
    except ValidationError as exc:
        # The caller names the field (oracles.<index>.<label>.<loc>) and its line.
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"oracle {label}: {message}", tuple(error["loc"])
    return None


def _run(record: RunRecord, label: str) -> Verdict:
    name = base_name(label)
    fn = _WITH_PARAMS.get(name)
    if fn is None:
        verdict = ORACLES[name](record)
    else:
        raw = record.params.get(label)
        try:
            params = PARAMS[name].model_validate(raw if raw is not None else {})
        except ValidationError as exc:
            given = "no parameters" if raw is None else "parameters that do not fit"
            why = validation_error(exc, text=None, path=None, error=ConfigError, quote=False)
            return Verdict.cannot_judge(label, f"{given} ({why})")
        verdict = fn(record, params, label)
    return verdict if verdict.name == label else replace(verdict, name=label)


def check(record: RunRecord, names: list[str]) -> list[Verdict]:
    """Run the named oracles in order (``name`` or ``name#label``); an unknown name is a
    ``ConfigError``."""
    unknown = [n for n in names if base_name(n) not in ORACLES]
    if unknown:
        raise ConfigError(
            f"unknown oracle; choose from {', '.join(sorted(ORACLES))}",
            field="oracles",
            value=unknown,
        )
    verdicts = []
    for label in names:
        needs = NEEDS.get(base_name(label), ())
        missing = [record.missing[n] for n in needs if n in record.missing]
        if missing:
            verdicts.append(Verdict.cannot_judge(label, "; ".join(dict.fromkeys(missing))))
        else:
            verdicts.append(_run(record, label))
    return verdicts
