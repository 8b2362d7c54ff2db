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
   ``trace.jsonl`` with the harness's own run-file writer; the sides alternate, one send each
   a round.
3. Encoding a run's trace into the request bytes: the harness's encoder (OTLP JSON straight to
   protobuf) against the SDK's path (``readable_spans`` then ``encode_spans``), alternating.
   The hand-written encoder is kept only while it is measured faster: target <= 0.5x.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from benchmarks._alternate import Samples, alternate, compared, per_round_ratio
from benchmarks._figures import Figure
from benchmarks._otlp_receiver import Received, SharedCount, otlp_receiver
from harness.scenarios import Scenario, resolve, run_scenario
from harness.scenarios.artifacts import write_jsonl
from harness.telemetry.components import regroup_by_service
from harness.telemetry.export import (
    PROTOCOLS,
    ExportSettings,
    Protocol,
    RunExporter,
    build_exporter,
    encode_request,
    export_traces_data,
    readable_spans,
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


def wall_per_run(rounds: int, runs: int) -> Samples:
    """Seconds per run of each side ("off" and each protocol), one block per side a round."""
    scenario, _ = resolve(NAME)
    with (
        otlp_receiver("grpc", process=True) as grpc_rx,
        otlp_receiver("http/protobuf", process=True) as http_rx,
    ):
        targets: dict[str, tuple[Protocol, str, Received | SharedCount] | None] = {
            "off": None,
            "grpc": ("grpc", grpc_rx[0], grpc_rx[1]),
            "http/protobuf": ("http/protobuf", http_rx[0], http_rx[1]),
        }
        return alternate(
            {side: partial(_block, scenario, runs, target) for side, target in targets.items()},
            rounds,
        )


def spans_per_second(sends: int) -> Samples:
    """Spans/s of one run's trace sent at once over each protocol, and written to
    ``trace.jsonl`` by the harness's writer; one send of each side a round."""
    scenario, _ = resolve(NAME)
    trace: Mapping[str, Any] = run_scenario(scenario, policy="buggy", source=NAME).trace
    spans = sum(len(s["spans"]) for rs in trace["resourceSpans"] for s in rs["scopeSpans"])
    with ExitStack() as stack:
        path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "trace.jsonl"
        sides: dict[str, Callable[[], float]] = {
            "trace.jsonl": partial(_seconds, lambda: write_jsonl(path, [trace]))
        }
        receivers = {}
        for protocol in PROTOCOLS:
            url, receivers[protocol] = stack.enter_context(otlp_receiver(protocol, process=True))
            exporter = build_exporter(_settings(protocol, url))
            stack.callback(exporter.shutdown)
            sides[protocol] = partial(_seconds, partial(export_traces_data, trace, exporter))
        seconds = alternate(sides, sends)
        for protocol, received in receivers.items():
            # One warm-up send and ``sends`` timed ones, each delivered in full.
            if received.spans != spans * (sends + 1):
                raise RuntimeError(
                    f"the {protocol} receiver got {received.spans} of {spans * (sends + 1)} spans"
                )
    return {side: [spans / s for s in values] for side, values in seconds.items()}


def encoding(rounds: int) -> Samples:
    """Seconds to encode one run's trace into request bytes: "harness" and "sdk"."""
    scenario, _ = resolve(NAME)
    trace: Mapping[str, Any] = run_scenario(scenario, policy="buggy", source=NAME).trace

    def sdk() -> bytes:
        spans = readable_spans(regroup_by_service(dict(trace)))
        return bytes(encode_spans(spans).SerializeToString())

    if encode_request(trace) != sdk():
        raise RuntimeError("the harness's encoder and the SDK's disagree on this trace")
    return alternate(
        {
            "harness": partial(_seconds, partial(encode_request, trace)),
            "sdk": partial(_seconds, sdk),
        },
        rounds,
    )


def _seconds(send: Callable[[], object]) -> float:
    started = time.perf_counter()
    send()
    return time.perf_counter() - started


def figures(*, quick: bool = False) -> list[Figure]:
    """Sim run wall time with export on vs off per protocol; spans/s per protocol vs file."""
    rounds, runs, sends = (3, 10, 20) if quick else (9, 20, 100)
    walls = wall_per_run(rounds, runs)
    rates = spans_per_second(sends)
    encoded = encoding(sends)
    return (
        [
            compared(
                f"sim run {NAME} with OTLP export ({protocol}), median wall",
                walls,
                protocol,
                "off",
                "ms",
                scale=1000,
                target="<= 1.10x",
            )
            for protocol in PROTOCOLS
        ]
        + [
            compared(
                f"spans/s sent at once over OTLP ({protocol}) vs written to trace.jsonl",
                rates,
                protocol,
                "trace.jsonl",
                "spans/s",
            )
            for protocol in PROTOCOLS
        ]
        + [
            compared(
                f"OTLP request of a {NAME} trace: harness encoder vs SDK encode_spans",
                encoded,
                "harness",
                "sdk",
                "us",
                scale=1e6,
                target="<= 0.5x",
            )
        ]
    )


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
        ratio = per_round_ratio(walls, protocol, "off")
        print(
            f"  {'export ' + protocol:<24} {on * 1000:8.2f} ms  {ratio:5.3f}x  "
            f"({(ratio - 1) * 100:+.1f} %, target <= +10 %; median of per-round ratios)"
        )
    rates = spans_per_second(args.sends)
    print(f"one run's spans sent at once, {args.sends} times")
    for side, rate in rates.items():
        print(f"  {side:<24} {statistics.median(rate):10,.0f} spans/s")
    encoded = encoding(args.sends)
    print(
        f"encoding the trace: harness {statistics.median(encoded['harness']) * 1e6:,.0f} us, "
        f"SDK {statistics.median(encoded['sdk']) * 1e6:,.0f} us, "
        f"{per_round_ratio(encoded, 'harness', 'sdk'):.2f}x"
    )


if __name__ == "__main__":
    main()
