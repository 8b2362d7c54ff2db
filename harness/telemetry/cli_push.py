"""``harness trace push``: send a saved run to an OTLP collector."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["push"]


@click.command("push")
@click.argument("target", type=click.Path(path_type=Path))
@click.option(
    "--endpoint",
    default=None,
    help="Collector URL (default: OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT, else "
    "http://localhost:4318, or :4317 for gRPC).",
)
@click.option(
    "--protocol",
    type=click.Choice(["grpc", "http/protobuf"]),
    default=None,
    help="OTLP protocol (default: OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL, else http/protobuf).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the collector.",
)
def push(target: Path, endpoint: str | None, protocol: str | None, timeout: float) -> None:
    """Send TARGET (a run directory or a trace.jsonl) to an OTLP collector.

    Spans keep their ids and timestamps (a sim run's virtual clock), one service per component
    (harness-runtime, fake-anthropic, fake-mcp-NAME, harness-proxy), so Jaeger shows the run
    as one trace across services.
    """
    from harness.telemetry.components import regroup_by_service, service_names
    from harness.telemetry.export import (
        build_exporter,
        export_traces_data,
        read_traces_data,
        resolve_settings,
    )

    grouped = regroup_by_service(read_traces_data(target))
    settings = resolve_settings(endpoint, protocol, default_endpoint=True)
    if settings is None:  # pragma: no cover - default_endpoint always resolves
        raise click.UsageError("no OTLP endpoint")
    exporter = build_exporter(settings, timeout=timeout)
    try:
        sent = export_traces_data(grouped, exporter, regroup=False)
    finally:
        exporter.shutdown()
    click.echo(
        f"pushed {sent} spans ({', '.join(service_names(grouped))}) "
        f"to {settings.endpoint} over {settings.protocol}"
    )
