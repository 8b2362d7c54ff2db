"""``harness fake-api``: serve the fake Anthropic Messages API on loopback.

Heavy modules (the app, uvicorn, OpenTelemetry SDK) are imported inside the command so that
``harness --help`` stays fast.
"""

from __future__ import annotations

import signal
from pathlib import Path

import click

__all__ = ["fake_api"]


@click.group("fake-api")
def fake_api() -> None:
    """Fake Anthropic Messages API (serve it on loopback, or record a session for it)."""


@fake_api.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address only.")
@click.option("--port", default=0, show_default=True, type=int, help="0 picks a free port.")
@click.option(
    "--script",
    "script_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Model script (YAML or JSON). Default: one agent answering a short text.",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the request journal here as JSON Lines.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for ids.")
@click.option(
    "--capture-content", is_flag=True, help="Record full messages in the journal, not only ids."
)
@click.option(
    "--spans",
    "spans_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append finished SERVER spans here as OTLP JSON Lines.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    help="Open connections at most (default: 512, less under a low file limit).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.001),
    default=10.0,
    show_default=True,
    help="Seconds a new connection has to send its request headers.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.001),
    default=30.0,
    show_default=True,
    help="Seconds a request body may stall between bytes.",
)
def serve(
    host: str,
    port: int,
    script_path: Path | None,
    journal_path: Path | None,
    seed: int,
    capture_content: bool,
    spans_path: Path | None,
    max_connections: int | None,
    header_timeout: float,
    body_timeout: float,
) -> None:
    """Serve the fake API on loopback until SIGINT or SIGTERM.

    The first line printed is ``listening on http://127.0.0.1:PORT``.
    """
    import anyio

    from fake_servers.anthropic._serve import check_loopback
    from fake_servers.anthropic.script import ModelScript

    check_loopback(host)
    script = ModelScript.load(script_path) if script_path is not None else ModelScript.default()
    from fake_servers.anthropic._serve import ConnectionGuard

    guard = ConnectionGuard(
        max_connections=max_connections, header_timeout=header_timeout, body_timeout=body_timeout
    )
    anyio.run(_serve, host, port, script, journal_path, seed, capture_content, spans_path, guard)


async def _serve(
    host: str,
    port: int,
    script: object,
    journal_path: Path | None,
    seed: int,
    capture_content: bool,
    spans_path: Path | None,
    guard: object,
) -> None:
    import anyio

    from fake_servers.anthropic._serve import ConnectionGuard
    from fake_servers.anthropic.app import FakeAnthropic
    from fake_servers.anthropic.journal import Journal
    from fake_servers.anthropic.script import ModelScript
    from harness.chaos_random import ChaosRandom
    from harness.telemetry.providers import process_tracer_provider
    from harness.telemetry.semconv import SERVICE_FAKE_ANTHROPIC

    assert isinstance(script, ModelScript)
    assert isinstance(guard, ConnectionGuard)
    journal = Journal(capture_content=capture_content, path=journal_path)
    provider = process_tracer_provider(SERVICE_FAKE_ANTHROPIC, spans_path, collector=False)
    fake = FakeAnthropic(script, rng=ChaosRandom(seed), tracer_provider=provider, journal=journal)
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with fake.serve(host=host, port=port, guard=guard) as url:
                # Flushed at once: a parent process waits for this first line on a pipe.
                print(f"listening on {url}", flush=True)
                async for _ in signals:
                    break
    finally:
        journal.close()
        provider.shutdown()


@fake_api.command("record")
@click.option("--upstream", required=True, help="Base URL of the Messages API to record.")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model script to write (YAML), rewritten after every recorded turn.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address only.")
@click.option("--port", default=0, show_default=True, type=int, help="0 picks a free port.")
def record(upstream: str, out_path: Path, host: str, port: int) -> None:
    """Proxy a client to UPSTREAM and write what it answered as a script the fake replays.

    The first line printed is ``recording on http://127.0.0.1:PORT``; point the client's
    ``ANTHROPIC_BASE_URL`` there. SIGINT / SIGTERM stop it. API keys and known secret shapes
    are redacted from the script.
    """
    import anyio

    from fake_servers.anthropic._serve import check_loopback

    check_loopback(host)
    if not upstream.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--upstream")
    parent = out_path.parent if str(out_path.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"directory {parent} does not exist", param_hint="--out")
    anyio.run(_record, upstream, out_path, host, port)


async def _record(upstream: str, out_path: Path, host: str, port: int) -> None:
    import anyio

    from fake_servers.anthropic._serve import serve_app
    from fake_servers.anthropic.record import Recorder

    recorder = Recorder(upstream, out_path)
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with serve_app(recorder, {}, host=host, port=port) as url:
                print(f"recording on {url} (upstream {upstream})", flush=True)
                async for _ in signals:
                    break
    finally:
        await recorder.aclose()
