"""``explore``: run many seeds of one scenario and summarize how, and how often, it fails."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._signals import check_stop
from harness.errors import ConfigError
from harness.explore.seeds import shard_seeds
from harness.explore.stats import wilson_interval
from harness.explore.worker import SeedResult, SeedRunner, WorkerConfig, init_worker, run_seed
from harness.scenarios.failure_db import FailureDB, FailureEntry

if TYPE_CHECKING:
    from harness.explore.shrink import ShrinkResult
    from harness.scenarios import Scenario

__all__ = ["ExploreReport", "Signature", "explore", "replay_command"]

Progress = Callable[[SeedResult], None]

# What the forkserver imports once, before it forks workers: the worker, and what a run imports
# on first use (the scenario runner, the fake servers, the Anthropic SDK the runtime's client is),
# so no worker of any pool pays for those imports again.
WORKER_PRELOAD = (
    "harness.explore.worker",
    "harness.scenarios",
    "harness.scenarios.runner",
    "fake_servers.anthropic",
    "fake_servers.mcp",
    "anthropic",
)


def replay_command(source: str, policy: str, seed: int, strategy: str) -> str:
    return f"harness run {source} --policy {policy} --seed {seed} --strategy {strategy}"


@dataclass(slots=True)
class Signature:
    """A distinct way the scenario failed, how often, and its first seed."""

    signature: str
    oracle: str
    count: int
    seed: int
    explanation: str
    replay: str

    def to_json(self) -> dict[str, Any]:
        return {
            "oracle": self.oracle,
            "signature": self.signature,
            "count": self.count,
            "seed": self.seed,
            "explanation": self.explanation,
            "replay": self.replay,
        }


@dataclass(slots=True)
class ExploreReport:
    """The summary of an exploration (``to_json`` is what ``--json`` prints)."""

    scenario: str
    source: str
    scenario_hash: str
    policy: str
    strategy: str
    shard: tuple[int, int]
    requested: int
    runs: int = 0
    failures: int = 0
    # Runs whose runtime under test failed (outcome "error"): out of the hit rate both ways.
    errors: int = 0
    first_error: str | None = None
    first_failing_seed: int | None = None
    failing_seeds: list[int] = field(default_factory=list)
    signatures: list[Signature] = field(default_factory=list)
    elapsed_s: float = 0.0
    jobs: int = 1
    stopped_by_time_budget: bool = False
    interrupted: bool = False
    replayed: list[dict[str, Any]] = field(default_factory=list)
    nondeterministic: list[dict[str, Any]] = field(default_factory=list)
    shrunk: ShrinkResult | None = None
    # Why the failing seeds could not be stored (the summary is reported all the same).
    storage_error: str | None = None

    @property
    def judged(self) -> int:
        """Runs the oracles judged: every run but the errors."""
        return self.runs - self.errors

    @property
    def hit_rate(self) -> float:
        return self.failures / self.judged if self.judged else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.failures, self.judged)

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        low, high = self.ci95
        return {
            "scenario": self.scenario,
            "source": self.source,
            "scenario_hash": self.scenario_hash,
            "policy": self.policy,
            "strategy": self.strategy,
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "requested": self.requested,
            "runs": self.runs,
            "failures": self.failures,
            "errors": self.errors,
            "first_error": self.first_error,
            "hit_rate": self.hit_rate,
            "ci95": [low, high],
            "first_failing_seed": self.first_failing_seed,
            "failing_seeds": self.failing_seeds,
            "signatures": [s.to_json() for s in self.signatures],
            "runs_per_s": self.runs_per_s,
            "elapsed_s": self.elapsed_s,
            "jobs": self.jobs,
            "stopped_by_time_budget": self.stopped_by_time_budget,
            "interrupted": self.interrupted,
            "replayed": self.replayed,
            "nondeterministic": self.nondeterministic,
            "shrunk": self.shrunk.to_json() if self.shrunk else None,
            "storage_error": self.storage_error,
        }


def explore(
    scenario: Scenario,
    *,
    source: str,
    runs: int,
    policy: str = "buggy",
    strategy: str = "fifo",
    jobs: int = 1,
    shard: tuple[int, int] = (1, 1),
    first_seed: int = 0,
    time_budget: float | None = None,
    db: FailureDB | None = None,
    defects_dir: Path = Path(".harness") / "nondeterminism",
    progress: Progress | None = None,
) -> ExploreReport:
    """Run the shard's seeds of ``scenario`` (after the failure database's, if given).

    Seeds stored in ``db`` for this scenario hash, policy and strategy run first; they are
    reported in ``replayed`` and not counted in the hit rate (they were chosen for failing).
    New failing seeds are added to ``db``; stored seeds that pass now are removed.
    """
    scenario_hash = scenario.content_hash()
    config = WorkerConfig(
        definition=scenario.model_dump(mode="json"),
        source=source,
        policy=policy,
        strategy=strategy,
        defects_dir=str(defects_dir),
    )
    report = ExploreReport(
        scenario=scenario.name,
        source=source,
        scenario_hash=scenario_hash,
        policy=policy,
        strategy=strategy,
        shard=shard,
        requested=runs,
        jobs=jobs,
    )
    local = SeedRunner(config)
    if db is not None:
        _replay_db(report, local, db)
    seeds = shard_seeds(runs, shard=shard, first_seed=first_seed)
    failing: list[SeedResult] = []
    started = time.perf_counter()
    deadline = started + time_budget if time_budget is not None else None
    results = (
        _serial(local, seeds, deadline) if jobs <= 1 else _parallel(config, seeds, jobs, deadline)
    )
    try:
        for result in results:
            report.runs += 1
            if result.error is not None:
                report.errors += 1
                if report.first_error is None:
                    report.first_error = f"seed {result.seed}: {result.error}"
            if result.failed:
                failing.append(result)
                if result.nondeterministic is not None:
                    report.nondeterministic.append(
                        {
                            "seed": result.seed,
                            "difference": result.difference,
                            "runs": result.nondeterministic,
                        }
                    )
            if progress is not None:
                progress(result)
    except KeyboardInterrupt:
        # Ctrl-C: the runs finished so far are reported (and their failures stored).
        report.interrupted = True
    finally:
        results.close()  # stops the worker pool now, whatever ended the loop
    report.elapsed_s = time.perf_counter() - started
    report.stopped_by_time_budget = not report.interrupted and report.runs < len(seeds)
    _summarize(report, failing)
    if db is not None:
        _store(report, db, failing)
    return report


def _store(report: ExploreReport, db: FailureDB, failing: list[SeedResult]) -> None:
    """Add the failing seeds to ``db``; a failure to write is reported, the summary kept."""
    entries = [
        FailureEntry(
            policy=report.policy,
            strategy=report.strategy,
            seed=r.seed,
            oracle=r.oracle or "",
            signature=r.signature or "",
            replay=replay_command(report.source, report.policy, r.seed, report.strategy),
        )
        for r in failing
        if r.nondeterministic is None
    ]
    try:
        db.add(report.scenario_hash, report.scenario, entries)
    except ConfigError as exc:
        report.storage_error = f"the failing seeds were not stored: {exc}"
    except OSError as exc:
        report.storage_error = (
            f"the failing seeds were not stored in {db.root}: {exc.strerror or exc}"
        )


def _replay_db(report: ExploreReport, runner: SeedRunner, db: FailureDB) -> None:
    config = runner.config
    stored = db.seeds(report.scenario_hash, policy=config.policy, strategy=config.strategy)
    passing: list[int] = []
    for seed in stored:
        check_stop()
        result = runner.run(seed)
        report.replayed.append(
            {"seed": seed, "fails": result.failed, "signature": result.signature}
        )
        if not result.failed and result.error is None:
            passing.append(seed)
        if result.nondeterministic is not None:
            report.nondeterministic.append(
                {"seed": seed, "difference": result.difference, "runs": result.nondeterministic}
            )
    if passing:
        db.discard(
            report.scenario_hash,
            report.scenario,
            policy=config.policy,
            strategy=config.strategy,
            seeds=passing,
        )


def _serial(
    runner: SeedRunner, seeds: Iterable[int], deadline: float | None
) -> Generator[SeedResult, None, None]:
    for seed in seeds:
        check_stop()  # a stop signal whose interrupt the interpreter dropped mid-run
        if deadline is not None and time.perf_counter() >= deadline:
            return
        yield runner.run(seed)


def _parallel(
    config: WorkerConfig, seeds: range, jobs: int, deadline: float | None
) -> Generator[SeedResult, None, None]:
    import multiprocessing

    # forkserver: workers fork from a clean server that has imported the harness once
    # (never from this process, whose threads and event loop state must not be copied).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_PRELOAD))
    _start_forkserver_deaf_to_ctrl_c()
    # A run takes tens of milliseconds and a chunk's round trip well under one: small chunks
    # cost little and keep both workers busy to the end (and a time budget honoured).
    chunk = max(1, min(4, len(seeds) // (jobs * 8)))
    try:
        pool = context.Pool(jobs, initializer=init_worker, initargs=(config,))
    except BaseException:
        # Pool() stops the workers it started only on an Exception: after a Ctrl-C while they
        # were starting, stop them here, or they outlive this process. The fork server goes
        # too: it would still fork the workers it was asked for once done importing, and they
        # would fail with a traceback, this process and their queues gone.
        _stop_forkserver()
        starting = [p for p in multiprocessing.active_children() if "PoolWorker" in p.name]
        for process in starting:
            process.terminate()
        for process in starting:
            process.join()
        raise
    try:
        for result in pool.imap_unordered(run_seed, seeds, chunksize=chunk):
            check_stop()
            yield result
            if deadline is not None and time.perf_counter() >= deadline:
                return
        pool.close()
    finally:
        pool.terminate()
        pool.join()


# Signals a terminal or a service manager sends the whole process group: only this process
# acts on them (it stops the pool), not the fork server nor the resource tracker it starts.
_GROUP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _start_forkserver_deaf_to_ctrl_c() -> None:
    """Start the fork server (and multiprocessing's resource tracker with it) with SIGINT,
    SIGTERM and SIGHUP ignored: Ctrl-C at a terminal, a closed terminal or a service manager
    reach the whole process group, and only this process should act on them (by terminating
    the pool), not the server halfway through importing the harness, nor the tracker (whose
    death leaves the pool's semaphores to a new one that never saw them), nor the workers it
    forks (a child inherits an ignored signal across exec, and Python keeps it ignored;
    ``init_worker`` gives the workers SIGTERM back, which is how the pool stops them)."""
    import signal
    import threading
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    signums = [getattr(signal, name) for name in _GROUP_SIGNALS]
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in signums}
    try:
        forkserver.ensure_running()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_forkserver() -> None:
    """SIGKILL this process's fork server, deaf to SIGTERM (the next pool starts a new one)."""
    import os
    import signal
    from contextlib import suppress
    from multiprocessing import forkserver

    # The server's pid is not public API; without it the server ends when this process does.
    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if isinstance(pid, int):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _summarize(report: ExploreReport, failing: list[SeedResult]) -> None:
    report.failures = len(failing)
    # Results of parallel workers arrive in any order; the report must not depend on it.
    failing.sort(key=lambda r: r.seed)
    report.first_failing_seed = failing[0].seed if failing else None
    report.failing_seeds = [r.seed for r in failing]
    by_signature: dict[str, Signature] = {}
    for r in failing:
        key = r.signature or ""
        entry = by_signature.get(key)
        if entry is None:
            by_signature[key] = Signature(
                signature=key,
                oracle=r.oracle or "",
                count=1,
                seed=r.seed,
                explanation=r.explanation or "",
                replay=replay_command(report.source, report.policy, r.seed, report.strategy),
            )
        else:
            entry.count += 1
    report.signatures = sorted(by_signature.values(), key=lambda s: (-s.count, s.seed))
