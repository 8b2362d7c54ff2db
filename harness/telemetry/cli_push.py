"""``harness trace push``: send a saved run to an OTLP collector."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["push"]


@click.command("push")
@click.argument("target", type=click.Path(path_type=Path))
@click.option(
    "--otlp-endpoint",
    "endpoint",
    default=None,
    metavar="URL",
    help="Collector URL (default: OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT, else "
    "http://localhost:4318, or :4317 for gRPC).",
)
@click.option("--endpoint", "old_endpoint", default=None, hidden=True)
@click.option(
    "--otlp-protocol",
    "protocol",
    type=click.Choice(["grpc", "http/protobuf"]),
    default=None,
    help="OTLP protocol (default: OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL, else http/protobuf).",
)
@click.option(
    "--protocol", "old_protocol", type=click.Choice(["grpc", "http/protobuf"]), hidden=True
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the collector.",
)
@click.option(
    "--keep-timestamps",
    is_flag=True,
    help="Send the run's own timestamps (a sim run's virtual clock, from the scenario's "
    "start) instead of moving the run to end now.",
)
def push(
    target: Path,
    endpoint: str | None,
    old_endpoint: str | None,
    protocol: str | None,
    old_protocol: str | None,
    timeout: float,
    keep_timestamps: bool,
) -> None:
    """Send TARGET (a run directory or a trace.jsonl) to an OTLP collector and print the
    trace's Jaeger link.

    Spans keep their ids, one service per component (harness-runtime, fake-anthropic,
    fake-mcp-NAME, harness-proxy), so Jaeger shows the run as one trace across services. The
    run is moved in time to end now (Jaeger searches the last hour by default); each span
    keeps its recorded start in harness.virtual.start_unix_nano. Exit status 0 when the
    collector took every span, 1 when it is unreachable or refused them, 2 on bad input.
    """
    import time

    from harness.telemetry.components import regroup_by_service, service_names
    from harness.telemetry.export import (
        build_exporter,
        export_traces_data,
        jaeger_link,
        quiet_exporter_logs,
        reachable,
        read_traces_data,
        resolve_settings,
        unreachable_error,
    )
    from harness.telemetry.timeshift import shift_to_now, trace_ids

    grouped = regroup_by_service(read_traces_data(target))
    settings = resolve_settings(
        endpoint or old_endpoint,
        protocol or old_protocol,
        default_endpoint=True,
        flags=("--otlp-endpoint", "--otlp-protocol"),
    )
    if settings is None:  # pragma: no cover - default_endpoint always resolves
        raise click.UsageError("no OTLP endpoint")
    why = reachable(settings, timeout=min(timeout, 2.0))
    if why is not None:
        raise unreachable_error(settings, why)
    if not keep_timestamps:
        grouped = shift_to_now(grouped, time.time_ns())
    exporter = build_exporter(settings, timeout=timeout)
    try:
        with quiet_exporter_logs():
            sent = export_traces_data(grouped, exporter, regroup=False)
    finally:
        exporter.shutdown()
    when = "as recorded" if keep_timestamps else "moved to end now"
    click.echo(
        f"pushed {sent} spans ({', '.join(service_names(grouped))}) "
        f"to {settings.endpoint} over {settings.protocol}, {when}"
    )
    for trace_id in trace_ids(grouped):
        click.echo(f"trace {trace_id}: {jaeger_link(trace_id)}")
