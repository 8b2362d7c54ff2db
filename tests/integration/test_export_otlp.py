"""A real OTLP receiver (gRPC and HTTP/protobuf, on loopback port 0) receives a sim run; the
spans it decodes equal ``trace.jsonl`` span for span, each on its component's resource."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.errors import ExportError
from harness.scenarios import resolve, run_scenario, write_run
from harness.telemetry.cli_push import push
from harness.telemetry.export import (
    RunExporter,
    encode_traces_data,
    export_traces_data,
    exporter_from_settings,
)
from harness.telemetry.otlp_json import FlatSpan, flatten, read_trace_file
from harness.telemetry.semconv import HARNESS_VIRTUAL_START
from tests._inner_suite import strict_inner_suite
from tests.integration._otlp import Received

pytestmark = pytest.mark.integration

SERVICE = "service.name"


@pytest.fixture(scope="module")
def cascade_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario, source = resolve("cascade")
    outcome = run_scenario(scenario, policy="buggy", seed=3, source=source)
    return write_run(outcome, scenario, tmp_path_factory.mktemp("runs"))


_SAME = ("trace_id", "span_id", "parent_id", "name", "kind", "start_ns", "end_ns")
_SAME += ("attributes", "events", "status", "status_message", "scope")


def _unshifted(received: list[FlatSpan], *, now_ns: int | None = None) -> list[FlatSpan]:
    """``received`` moved back to the run's own clock: export moves a run by one offset so
    it ends now, and each span keeps its recorded start in harness.virtual.start_unix_nano."""
    deltas = {s["start_ns"] - s["attributes"][HARNESS_VIRTUAL_START] for s in received}
    assert len(deltas) == 1, "every span is moved by the same offset"
    [delta] = deltas
    if now_ns is not None:
        assert max(s["end_ns"] for s in received) <= now_ns  # the run ends by the push
        assert delta > 0
    out = []
    for span in received:
        attributes = {k: v for k, v in span["attributes"].items() if k != HARNESS_VIRTUAL_START}
        events = [{**e, "time_ns": e["time_ns"] - delta} for e in span["events"]]
        out.append(
            {
                **span,
                "start_ns": span["start_ns"] - delta,
                "end_ns": span["end_ns"] - delta,
                "attributes": attributes,
                "events": events,
            }
        )
    return out


def _assert_same_spans(received: list[FlatSpan], saved: list[FlatSpan]) -> None:
    assert len(received) == len(saved) > 20
    for got, want in zip(received, saved, strict=True):
        assert {k: got[k] for k in _SAME} == {k: want[k] for k in _SAME}
    services = {s["span_id"]: s["service"] for s in received}
    for span in saved:
        service = services[span["span_id"]]
        if span["scope"] == "fake_servers.anthropic":
            assert service == "fake-anthropic"
        elif span["scope"] == "mcp-python-sdk" and span["kind"] == 2:
            assert service == "fake-mcp-ssh", span["name"]
        else:
            assert service == "harness-runtime", span["name"]
    assert len({s["trace_id"] for s in received}) == 1


def test_grpc_receiver_gets_the_run_span_for_span(
    cascade_run: Path, grpc_receiver: tuple[str, Received]
) -> None:
    url, received = grpc_receiver
    exporter = exporter_from_settings(url, "grpc", env={})
    assert exporter is not None
    trace = json.loads((cascade_run / "trace.jsonl").read_text())
    try:
        sent = export_traces_data(trace, exporter)
    finally:
        exporter.shutdown()
    saved = read_trace_file(cascade_run / "trace.jsonl")
    assert sent == len(saved)
    _assert_same_spans(received.flat(), saved)
    resources = [rs.resource for rs in received.requests[0].resource_spans]
    names = [a.value.string_value for r in resources for a in r.attributes if a.key == SERVICE]
    assert names == ["harness-runtime", "fake-anthropic", "fake-mcp-ssh"]


def test_push_over_http_sends_the_saved_run(
    cascade_run: Path, http_receiver: tuple[str, Received]
) -> None:
    url, received = http_receiver
    result = CliRunner().invoke(push, [str(cascade_run), "--otlp-endpoint", url])
    assert result.exit_code == 0, result.output
    saved = read_trace_file(cascade_run / "trace.jsonl")
    assert f"pushed {len(saved)} spans" in result.output
    assert f"{url}/v1/traces over http/protobuf, moved to end now" in result.output
    _assert_same_spans(_unshifted(received.flat(), now_ns=time.time_ns()), saved)
    [trace_id] = {s["trace_id"] for s in saved}
    assert f"trace {trace_id}: http://localhost:16686/trace/{trace_id}" in result.output


def test_push_reads_the_endpoint_and_protocol_from_the_environment(
    cascade_run: Path, grpc_receiver: tuple[str, Received]
) -> None:
    url, received = grpc_receiver
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    result = CliRunner(env=env).invoke(push, [str(cascade_run / "trace.jsonl")])
    assert result.exit_code == 0, result.output
    assert "over grpc" in result.output
    _assert_same_spans(_unshifted(received.flat()), read_trace_file(cascade_run / "trace.jsonl"))


def test_headers_and_compression_from_the_environment_apply_to_the_encoded_request(
    cascade_run: Path, http_receiver: tuple[str, Received], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = http_receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=heisen,x-token=a%20b")
    exporter = exporter_from_settings(url, None, env={})
    assert exporter is not None
    trace = json.loads((cascade_run / "trace.jsonl").read_text())
    try:
        export_traces_data(trace, exporter)
    finally:
        exporter.shutdown()
    assert received.arrived.wait(10)
    [headers] = received.headers
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/x-protobuf"
    assert (headers["x-tenant"], headers["x-token"]) == ("heisen", "a b")
    assert received.requests == [encode_traces_data(trace)]


@pytest.mark.parametrize("http_receiver", [400], indirect=True)
def test_a_refusing_collector_is_an_export_error(
    cascade_run: Path, http_receiver: tuple[str, Received]
) -> None:
    url, received = http_receiver
    exporter = exporter_from_settings(url, None, env={})
    assert exporter is not None
    data = json.loads((cascade_run / "trace.jsonl").read_text())
    try:
        with pytest.raises(ExportError, match=r"the collector did not accept the \d+ spans"):
            export_traces_data(data, exporter)
    finally:
        exporter.shutdown()
    assert received.requests == []


pytest_plugins = ["pytester"]


def test_the_pytest_plugin_sends_each_run_with_harness_otlp(
    pytester: pytest.Pytester, http_receiver: tuple[str, Received]
) -> None:
    url, received = http_receiver
    strict_inner_suite(pytester)
    pytester.makepyfile(
        """
        def test_run(harness_run):
            assert harness_run("scope_leak", policy="buggy").outcome == "reproduced"
        """
    )
    out = pytester.path / "runs"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--harness-otlp", url, "--harness-out", str(out)
    )
    result.assert_outcomes(passed=1)
    (trace_file,) = out.glob("*/scope_leak-buggy-s0-*/trace.jsonl")
    saved = read_trace_file(trace_file)
    got = received.flat()
    assert [s["span_id"] for s in got] == [s["span_id"] for s in saved]
    assert {s["service"] for s in got} == {"harness-runtime", "fake-anthropic", "fake-mcp-chat"}


def test_harness_trace_push_from_the_command_line(
    cascade_run: Path, grpc_receiver: tuple[str, Received]
) -> None:
    url, received = grpc_receiver
    done = subprocess.run(
        [sys.executable, "-m", "harness", "trace", "push", str(cascade_run), "--protocol", "grpc",
         "--endpoint", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(harness-runtime, fake-anthropic, fake-mcp-ssh)" in done.stdout
    _assert_same_spans(_unshifted(received.flat()), read_trace_file(cascade_run / "trace.jsonl"))


def test_push_of_a_bad_file_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "trace.jsonl"
    bad.write_text('{"resourceSpans": 5}\n')
    done = subprocess.run(
        [sys.executable, "-m", "harness", "trace", "push", str(bad), "--endpoint", "http://x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert str(bad) in done.stderr
    assert "Traceback" not in done.stderr


def test_run_exporter_batches_several_runs_in_the_background(
    http_receiver: tuple[str, Received],
) -> None:
    url, received = http_receiver
    exporter = exporter_from_settings(url, None, env={})
    assert exporter is not None
    runner = RunExporter(exporter)
    scenario, _ = resolve("scope_leak")
    traces = [run_scenario(scenario, policy=p, seed=1).trace for p in ("buggy", "fixed")]
    queued = [runner.submit(trace) for trace in traces]
    assert runner.close(timeout_millis=10_000)
    assert (runner.sent, runner.refused) == (sum(queued), 0)
    saved = sorted((s for t in traces for s in flatten(t)), key=lambda s: s["span_id"])
    by_trace: dict[str, list[FlatSpan]] = {}
    for span in received.flat():
        by_trace.setdefault(span["trace_id"], []).append(span)
    assert len(by_trace) == 2  # each run moved by its own offset, as it was submitted
    got = sorted(
        (s for spans in by_trace.values() for s in _unshifted(spans)), key=lambda s: s["span_id"]
    )
    assert sum(queued) == len(got) == len(saved)
    assert [(s["span_id"], s["name"], s["start_ns"]) for s in got] == [
        (s["span_id"], s["name"], s["start_ns"]) for s in saved
    ]
    assert {s["service"] for s in got} == {"harness-runtime", "fake-anthropic", "fake-mcp-chat"}


def test_harness_run_sends_each_run_to_the_collector(
    tmp_path: Path, grpc_receiver: tuple[str, Received]
) -> None:
    from harness.scenarios.cli import run_cmd

    url, received = grpc_receiver
    args = ["cascade", "--policy", "buggy", "--out", str(tmp_path), "--no-failure-db"]
    args += ["--otlp-endpoint", url, "--otlp-protocol", "grpc"]
    result = CliRunner().invoke(run_cmd, args)
    assert result.exit_code == 0, result.output
    assert f"exported {len(received.flat())} spans to {url}" in result.output
    [run_dir] = tmp_path.iterdir()
    saved = sorted(read_trace_file(run_dir / "trace.jsonl"), key=lambda s: s["span_id"])
    got = sorted(_unshifted(received.flat()), key=lambda s: s["span_id"])
    [trace_id] = {s["trace_id"] for s in saved}
    assert f"jaeger: http://localhost:16686/trace/{trace_id}" in result.output
    assert [(s["span_id"], s["name"], s["start_ns"], s["service"]) for s in got] == [
        (s["span_id"], s["name"], s["start_ns"], s["service"]) for s in saved
    ]
    assert {s["service"] for s in got} == {"harness-runtime", "fake-anthropic", "fake-mcp-ssh"}


def test_harness_run_with_a_bad_otlp_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "cascade", "--out", str(out),
         "--otlp-endpoint", "localhost:4317"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert "--otlp-endpoint" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()  # nothing ran


def test_push_can_keep_the_recorded_timestamps(
    cascade_run: Path, http_receiver: tuple[str, Received]
) -> None:
    url, received = http_receiver
    result = CliRunner().invoke(push, [str(cascade_run), "--endpoint", url, "--keep-timestamps"])
    assert result.exit_code == 0, result.output
    assert "as recorded" in result.output
    _assert_same_spans(received.flat(), read_trace_file(cascade_run / "trace.jsonl"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_missing_collector_is_one_line_at_once(cascade_run: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "trace", "push", str(cascade_run),
         "--otlp-endpoint", url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: no OTLP collector at {url}/v1/traces (")
    assert "docker compose up -d" in done.stderr
    assert "retrying" not in done.stderr


def test_a_run_with_a_missing_collector_warns_once_and_runs(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "scope_leak", "--no-failure-db",
         "--out", str(tmp_path / "runs"), "--otlp-endpoint", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"warning: no OTLP collector at {url}/v1/traces (")
    assert lines[0].endswith("runs not exported")
    assert len(list((tmp_path / "runs").iterdir())) == 2
