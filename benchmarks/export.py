"""Benchmark: what exporting a run over OTLP costs.

Run ``python -m benchmarks.export``. In one run, against a real OTLP receiver in a child
process (gRPC and HTTP/protobuf on 127.0.0.1, decoding every request), as a collector runs
beside the harness: its decoding is the collector's cost, not the harness's, so it does not
take the measured process's interpreter lock:

1. The wall time of a sim run of ``cascade`` (buggy) with export off, and with export on
   through ``RunExporter`` (batched, in the background) over each protocol. Each measurement
   is a block of runs that ends when the exporter has flushed and shut down, so every span the
   block produced has reached the receiver; the sides alternate, in a rotating order, and the
   ratio is the median of the per-round ratios (so drift between rounds cancels). Target:
   export on <= 1.10x off.
2. Spans per second of a whole run's trace sent at once (``export_traces_data``: conversion,
   protobuf encoding, the request, the receiver's decoding) against writing it to
   ``trace.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks._figures import Figure, make
from benchmarks._otlp_receiver import Received, SharedCount, otlp_receiver
from harness.scenarios import Scenario, resolve, run_scenario
from harness.telemetry.export import (
    PROTOCOLS,
    ExportSettings,
    Protocol,
    RunExporter,
    build_exporter,
    export_traces_data,
)

NAME = "cascade"
_TRACES_PATH = "/v1/traces"


def _settings(protocol: Protocol, url: str) -> ExportSettings:
    return ExportSettings(
        endpoint=url if protocol == "grpc" else url + _TRACES_PATH, protocol=protocol
    )


def _block(
    scenario: Scenario,
    runs: int,
    target: tuple[Protocol, str, Received | SharedCount] | None,
) -> float:
    """Seconds per run for ``runs`` sim runs, each exported when ``target`` is given; the
    block ends when the receiver has every span."""
    started = time.perf_counter()
    if target is None:
        for _ in range(runs):
            run_scenario(scenario, policy="buggy", source=NAME)
        return (time.perf_counter() - started) / runs
    protocol, url, received = target
    before = received.spans
    runner = RunExporter(build_exporter(_settings(protocol, url)))
    queued = 0
    for _ in range(runs):
        outcome = run_scenario(scenario, policy="buggy", source=NAME)
        queued += runner.submit(outcome.trace)
    if not runner.close(timeout_millis=30_000):
        raise RuntimeError(f"the {protocol} exporter did not flush within 30 s")
    if not received.wait_for(before + queued, timeout=10):
        raise RuntimeError(f"the {protocol} receiver got {received.spans - before} of {queued}")
    return (time.perf_counter() - started) / runs


def wall_per_run(rounds: int, runs: int) -> dict[str, list[float]]:
    """Seconds per run of each side ("off" and each protocol), one block per side a round."""
    scenario, _ = resolve(NAME)
    samples: dict[str, list[float]] = {"off": [], **{p: [] for p in PROTOCOLS}}
    with (
        otlp_receiver("grpc", process=True) as grpc_rx,
        otlp_receiver("http/protobuf", process=True) as http_rx,
    ):
        targets: dict[str, tuple[Protocol, str, Received | SharedCount] | None] = {
            "off": None,
            "grpc": ("grpc", grpc_rx[0], grpc_rx[1]),
            "http/protobuf": ("http/protobuf", http_rx[0], http_rx[1]),
        }
        order = list(targets)
        for side in order:  # warm-up: imports, channels, caches
            _block(scenario, 2, targets[side])
        for round_ in range(rounds):
            # Rotate the order so no side always runs first after the machine was idle.
            for side in order[round_ % 3 :] + order[: round_ % 3]:
                samples[side].append(_block(scenario, runs, targets[side]))
    return samples


def spans_per_second(sends: int) -> dict[str, float]:
    """Spans/s of one run's trace sent at once over each protocol, and written to a file
    (the median send)."""
    scenario, _ = resolve(NAME)
    trace: Mapping[str, Any] = run_scenario(scenario, policy="buggy", source=NAME).trace
    spans = sum(len(s["spans"]) for rs in trace["resourceSpans"] for s in rs["scopeSpans"])
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.jsonl"

        def write() -> None:
            path.write_text(json.dumps(trace, separators=(",", ":")) + "\n", encoding="utf-8")

        out["trace.jsonl"] = _median_seconds(write, sends)
    for protocol in PROTOCOLS:
        with otlp_receiver(protocol, process=True) as (url, received):
            exporter = build_exporter(_settings(protocol, url))
            try:
                out[protocol] = _median_seconds(partial(export_traces_data, trace, exporter), sends)
            finally:
                exporter.shutdown()
            # One warm-up send and ``sends`` timed ones, each delivered in full.
            if received.spans != spans * (sends + 1):
                raise RuntimeError(
                    f"the {protocol} receiver got {received.spans} of {spans * (sends + 1)} spans"
                )
    return {side: spans / seconds for side, seconds in out.items()}


def _ratio(walls: Mapping[str, list[float]], side: str) -> float:
    """Median of the per-round ratios ``side / off``: each round's blocks ran back to back, so
    drift of a shared machine between rounds cancels."""
    return statistics.median(on / off for on, off in zip(walls[side], walls["off"], strict=True))


def _median_seconds(send: Callable[[], object], times: int) -> float:
    """Median seconds of ``send()`` over ``times`` calls, after one warm-up call."""
    send()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        send()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def figures(*, quick: bool = False) -> list[Figure]:
    """Sim run wall time with export on vs off per protocol; spans/s per protocol vs file."""
    rounds, runs, sends = (3, 10, 20) if quick else (9, 20, 100)
    walls = wall_per_run(rounds, runs)
    off = statistics.median(walls["off"]) * 1000
    rates = spans_per_second(sends)
    rows = [
        make(
            f"sim run {NAME} with OTLP export ({protocol}), median wall",
            statistics.median(walls[protocol]) * 1000,
            "ms",
            baseline=off,
            ratio=_ratio(walls, protocol),
            target="<= 1.10x",
        )
        for protocol in PROTOCOLS
    ]
    rows += [
        make(
            f"spans/s sent at once over OTLP ({protocol}) vs written to trace.jsonl",
            rates[protocol],
            "spans/s",
            baseline=rates["trace.jsonl"],
        )
        for protocol in PROTOCOLS
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="blocks per side")
    parser.add_argument("--runs", type=int, default=20, help="sim runs per block")
    parser.add_argument("--sends", type=int, default=100, help="traces sent per protocol")
    args = parser.parse_args()
    walls = wall_per_run(args.rounds, args.runs)
    off = statistics.median(walls["off"])
    print(f"sim run of {NAME} (buggy), median of {args.rounds} blocks of {args.runs} runs")
    print(f"  {'export off':<24} {off * 1000:8.2f} ms")
    for protocol in PROTOCOLS:
        on = statistics.median(walls[protocol])
        ratio = _ratio(walls, protocol)
        print(
            f"  {'export ' + protocol:<24} {on * 1000:8.2f} ms  {ratio:5.3f}x  "
            f"({(ratio - 1) * 100:+.1f} %, target <= +10 %; median of per-round ratios)"
        )
    rates = spans_per_second(args.sends)
    print(f"one run's spans sent at once, {args.sends} times")
    for side, rate in rates.items():
        print(f"  {side:<24} {rate:10,.0f} spans/s")


if __name__ == "__main__":
    main()
