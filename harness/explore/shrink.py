"""Shrinking: the simplest draws and schedule under which a failing seed still fails.

Starting from a failing seed's draws, one change at a time is tried and kept when the same
oracle still fails and the run is judged the same (reproduced / unexpected): the schedule
back to ``fifo`` (no scheduling deviations); every entry of the scenario's fault plan dropped,
last first; every tool call of a model turn that makes several dropped, last first (a dropped
``spawn_subagent`` takes the subagent's script with it: agents not needed go); every fault
drawn in (``chance``) dropped; every drawn number moved to its
distribution's lower end, else bisected toward it and rounded up to a whole number; every
``choice`` moved to an earlier option. Passes repeat until nothing
changes. Every step is a seeded sim run, so the result is deterministic. The output is a
scenario file with those values fixed (no distributions left) and the command that replays it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._signals import check_stop
from harness.explore.signature import deciding_failure
from harness.scenarios.distributions import Spec, parse_spec, split_pointer

if TYPE_CHECKING:
    from harness.scenarios import Scenario

__all__ = ["ShrinkResult", "shrink"]

_BISECT_STEPS = 6
_MAX_PASSES = 3


@dataclass(slots=True)
class ShrinkResult:
    """The minimal failing plan found and how to replay it."""

    scenario: str
    policy: str
    seed: int
    oracle: str
    strategy: str
    original_strategy: str
    original_draws: dict[str, Any]
    draws: dict[str, Any]
    faults_before: int
    faults_after: int
    attempts: int
    steps: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def replay(self) -> str:
        target = str(self.path) if self.path is not None else self.scenario
        command = f"harness run {target} --policy {self.policy} --seed {self.seed}"
        return command + f" --strategy {self.strategy}"

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "oracle": self.oracle,
            "strategy": self.strategy,
            "original_strategy": self.original_strategy,
            "faults_before": self.faults_before,
            "faults_after": self.faults_after,
            "draws": self.draws,
            "original_draws": self.original_draws,
            "attempts": self.attempts,
            "steps": self.steps,
            "path": str(self.path) if self.path else None,
            "replay": self.replay,
        }


def _faults(specs: dict[str, Spec], draws: dict[str, Any]) -> int:
    return sum(1 for p, s in specs.items() if s.kind == "chance" and draws.get(p))


def shrink(
    scenario: Scenario,
    *,
    policy: str,
    seed: int,
    oracle: str,
    strategy: str = "fifo",
    out_dir: Path | None = None,
    fails: Callable[[Scenario, dict[str, Any], str], bool] | None = None,
) -> ShrinkResult:
    """Shrink the run (``scenario``, ``policy``, ``seed``, ``strategy``) that fails ``oracle``.

    ``fails(scenario, draws, strategy)`` decides whether a candidate still fails (default: a
    sim run in which ``oracle`` fails). With ``out_dir`` the minimal scenario is written there.
    """
    from harness.errors import ScenarioError
    from harness.scenarios import run_scenario

    specs = {p: parse_spec(s, split_pointer(p)) for p, s in scenario.distributions.items()}
    _, original = scenario.resolve(seed)
    attempts = 0
    # The whole judgement must stay (e.g. "reproduced" needs every bug oracle failing), not
    # only the one oracle, or the minimal plan would show a different failure.
    judged: list[str] = []

    def default_fails(candidate: Scenario, draws: dict[str, Any], strat: str) -> bool:
        try:
            outcome = run_scenario(
                candidate,
                policy=policy,  # type: ignore[arg-type]
                seed=seed,
                strategy=strat,
                overrides=draws,
            )
        except ScenarioError:
            return False  # a value the scenario cannot take is not a simpler failing plan
        if outcome.interrupted:
            raise KeyboardInterrupt  # a run cut short says nothing about the candidate
        deciding = deciding_failure(outcome.verdicts, [oracle])
        if deciding is None or deciding.name != oracle:
            return False
        if not judged:
            judged.append(outcome.outcome)
        return outcome.outcome == judged[0]

    check = fails or default_fails
    current = [scenario]  # the scenario as shrunk so far (fault plan entries dropped)

    def still_fails(draws: dict[str, Any], strat: str) -> bool:
        nonlocal attempts
        check_stop()
        attempts += 1
        return check(current[0], draws, strat)

    result = ShrinkResult(
        scenario=scenario.name,
        policy=policy,
        seed=seed,
        oracle=oracle,
        strategy=strategy,
        original_strategy=strategy,
        original_draws=dict(original),
        draws=dict(original),
        faults_before=_faults(specs, original) + len(scenario.faults),
        faults_after=0,
        attempts=0,
    )
    if not still_fails(result.draws, strategy):
        raise ScenarioError(
            f"seed {seed} does not fail {oracle} under {policy} / {strategy}: nothing to shrink"
        )
    _shrink_schedule(result, still_fails)
    specs = _drop_plan_faults(result, current, specs, still_fails)
    specs = _drop_tool_calls(result, current, specs, still_fails)
    for _ in range(_MAX_PASSES):
        changed = False
        for ptr, spec in specs.items():
            changed |= _shrink_value(result, ptr, spec, still_fails)
        if not changed:
            break
    result.faults_after = _faults(specs, result.draws) + len(current[0].faults)
    result.attempts = attempts
    if out_dir is not None:
        result.path = _write_minimal(current[0], result, out_dir)
    return result


Check = Callable[[dict[str, Any], str], bool]


def _shrink_schedule(result: ShrinkResult, still_fails: Check) -> None:
    if result.strategy == "fifo":
        return
    if still_fails(result.draws, "fifo"):
        result.steps.append(f"schedule: {result.strategy} -> fifo")
        result.strategy = "fifo"


def _drop_plan_faults(
    result: ShrinkResult, current: list[Scenario], specs: dict[str, Spec], still_fails: Check
) -> dict[str, Spec]:
    """Drop each fault plan entry (last first) that the failure does not need; returns the
    distributions renumbered for the plan that is left."""
    for index in reversed(range(len(current[0].faults))):
        before = (current[0], result.draws)
        scenario, draws = _without_fault(current[0], result.draws, index)
        label = before[0].faults.faults[index].label
        current[0] = scenario
        if still_fails(draws, result.strategy):
            result.steps.append(f"faults: dropped {label}")
            result.draws = draws
        else:
            current[0] = before[0]
    return {p: parse_spec(s, split_pointer(p)) for p, s in current[0].distributions.items()}


def _drop_tool_calls(
    result: ShrinkResult, current: list[Scenario], specs: dict[str, Spec], still_fails: Check
) -> dict[str, Spec]:
    """Drop each tool call of a multi-call model turn (last first) that the failure does not
    need; a dropped subagent's own script goes too. Returns the renumbered distributions."""
    agents = list((current[0].model.get("agents") or {}).keys())
    for agent in agents:
        turns = ((current[0].model.get("agents") or {}).get(agent) or {}).get("turns") or []
        for turn_index in range(len(turns)):
            while True:
                dropped = False
                script = current[0].model["agents"].get(agent)
                if script is None:
                    break  # this agent's own script went with a dropped spawn
                calls = script["turns"][turn_index].get("tool_use") or []
                for call_index in reversed(range(len(calls))):
                    if len(calls) < 2:
                        break
                    candidate = _without_tool_call(
                        current[0], result.draws, agent, turn_index, call_index
                    )
                    if candidate is None:
                        continue
                    scenario, draws, label = candidate
                    before = current[0]
                    current[0] = scenario
                    if still_fails(draws, result.strategy):
                        result.steps.append(f"model: dropped {label}")
                        result.draws = draws
                        dropped = True
                        break
                    current[0] = before
                if not dropped:
                    break
    return {p: parse_spec(s, split_pointer(p)) for p, s in current[0].distributions.items()}


def _without_tool_call(
    scenario: Scenario, draws: dict[str, Any], agent: str, turn: int, index: int
) -> tuple[Scenario, dict[str, Any], str] | None:
    """``scenario`` without tool call ``index`` of ``agent``'s turn ``turn`` (and, for a
    ``spawn_subagent`` call, without the subagent's script when nothing else spawns it)."""
    import copy

    model = copy.deepcopy(scenario.model)
    calls = model["agents"][agent]["turns"][turn]["tool_use"]
    call = calls.pop(index)
    base = f"/model/agents/{agent}/turns/{turn}/tool_use"
    gone = [f"{base}/{index}"]
    label = f"{agent} turn {turn} {call.get('name')}"
    child = (call.get("input") or {}).get("name") if call.get("name") == "spawn_subagent" else None
    if isinstance(child, str) and child in model["agents"] and not _spawned(model, child):
        del model["agents"][child]
        gone.append(f"/model/agents/{child}")
        label += f" (agent {child})"

    def moved(ptr: str) -> str | None:
        if any(ptr == g or ptr.startswith(g + "/") for g in gone):
            return None
        if ptr.startswith(base + "/"):
            rest = ptr[len(base) + 1 :].split("/")
            if rest[0].isdigit() and int(rest[0]) > index:
                return "/".join([base, str(int(rest[0]) - 1), *rest[1:]])
        return ptr

    distributions = {
        new: spec for ptr, spec in scenario.distributions.items() if (new := moved(ptr))
    }
    kept = {new: value for ptr, value in draws.items() if (new := moved(ptr))}
    try:
        changed = scenario.model_copy(update={"model": model, "distributions": distributions})
    except ValueError:
        return None
    return changed, kept, label


def _spawned(model: dict[str, Any], name: str) -> bool:
    """Whether any remaining tool call spawns a subagent called ``name``."""
    for script in (model.get("agents") or {}).values():
        for turn in (script or {}).get("turns") or []:
            for call in turn.get("tool_use") or []:
                if (
                    call.get("name") == "spawn_subagent"
                    and (call.get("input") or {}).get("name") == name
                ):
                    return True
    return False


def _without_fault(
    scenario: Scenario, draws: dict[str, Any], index: int
) -> tuple[Scenario, dict[str, Any]]:
    """``scenario`` without fault plan entry ``index``: its distributions and draws go with
    it, the later entries' pointers move down by one."""
    from harness.faults.plan import FaultPlan

    prefix = f"/faults/{index}"

    def moved(ptr: str) -> str | None:
        parts = ptr.split("/")
        if len(parts) < 3 or parts[1] != "faults" or not parts[2].isdigit():
            return ptr
        if ptr == prefix or ptr.startswith(prefix + "/"):
            return None
        number = int(parts[2])
        return "/".join([*parts[:2], str(number - 1), *parts[3:]]) if number > index else ptr

    entries = [f for i, f in enumerate(scenario.faults.faults) if i != index]
    distributions = {
        new: spec for ptr, spec in scenario.distributions.items() if (new := moved(ptr))
    }
    kept = {new: value for ptr, value in draws.items() if (new := moved(ptr))}
    changed = scenario.model_copy(
        update={"faults": FaultPlan.model_construct(entries), "distributions": distributions}
    )
    return changed, kept


def _try(result: ShrinkResult, ptr: str, value: Any, still_fails: Check) -> bool:
    if value == result.draws.get(ptr):
        return False
    candidate = {**result.draws, ptr: value}
    if still_fails(candidate, result.strategy):
        result.steps.append(f"{ptr}: {_show(result.draws.get(ptr))} -> {_show(value)}")
        result.draws = candidate
        return True
    return False


def _shrink_value(result: ShrinkResult, ptr: str, spec: Spec, still_fails: Check) -> bool:
    current = result.draws.get(ptr)
    if spec.kind == "chance":
        return bool(current) and _try(result, ptr, False, still_fails)
    if spec.kind == "choice":
        options = list(spec.options)
        index = options.index(current) if current in options else len(options)
        return any(_try(result, ptr, option, still_fails) for option in options[:index])
    if not isinstance(current, int | float):
        return False
    low = spec.low
    if current <= low:
        return False
    if _try(result, ptr, low, still_fails):
        return True
    # low passes, current fails: bisect for the smallest failing value in between.
    passing, failing = float(low), float(current)
    for _ in range(_BISECT_STEPS):
        middle = (passing + failing) / 2
        value: float = round(middle) if spec.kind == "randint" else middle
        if value in (passing, failing):
            break
        if still_fails({**result.draws, ptr: value}, result.strategy):
            failing = value
        else:
            passing = value
    # Prefer a round number just above the smallest failing value found; keep a round current.
    whole = math.ceil(failing)
    if whole < current and _try(result, ptr, whole, still_fails):
        return True
    if float(current).is_integer():
        return False
    return failing < current and _try(result, ptr, failing, still_fails)


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _write_minimal(scenario: Scenario, result: ShrinkResult, out_dir: Path) -> Path:
    import yaml

    fixed, _ = scenario.resolve(result.seed, overrides=result.draws)
    data = fixed.model_dump(mode="json", exclude_defaults=True)
    if len(fixed.faults):
        # A fault's ``type`` is its default and the tag the plan needs: keep it.
        data["faults"] = fixed.faults.model_dump(mode="json", exclude_none=True)
    data["name"] = f"{scenario.name}_s{result.seed}_min"[:80]
    data["description"] = (
        f"Shrunk from {scenario.name} seed {result.seed} ({result.policy}, "
        f"{result.original_strategy}): {result.oracle} still fails with these fixed values. "
        + scenario.description
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{data['name']}.yaml"
    header = (
        f"# Minimal failing plan: replay with\n#   harness run {path} --policy {result.policy} "
        f"--seed {result.seed} --strategy {result.strategy}\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def shrink_run_dir(run_dir: Path, *, out_dir: Path | None = None) -> ShrinkResult:
    """Shrink a saved failing run (``runs/<id>/``): its scenario, policy, seed and strategy come
    from ``run.json``; the oracle shrunk for is the run's deciding failing one."""
    from harness.errors import ConfigError
    from harness.scenarios.saved import load_saved_run

    saved = load_saved_run(run_dir)
    run_json = run_dir / "run.json"
    meta, scenario = saved.run, saved.scenario
    if meta.mode != "sim":
        raise ConfigError("only sim runs can be shrunk", path=run_json, field="mode")
    failing = [o.name for o in meta.oracles if o.verdict == "fails"]
    preferred = [n for n in scenario.expect.buggy if n in failing]
    if not failing:
        raise ConfigError("the run did not fail: nothing to shrink", path=run_json)
    return shrink(
        scenario,
        policy=meta.policy,
        seed=meta.seed,
        oracle=(preferred or failing)[0],
        strategy=meta.strategy,
        out_dir=out_dir,
    )
