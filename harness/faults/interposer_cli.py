"""``harness interpose``: run an MCP server command behind the fault-injecting stdio relay.

Point any stdio MCP client at ``harness interpose [OPTIONS] -- COMMAND [ARGS...]`` instead of
``COMMAND [ARGS...]``. Stdout carries only the server's JSON-RPC frames; messages of the
interposer itself go to stderr. The exit status is the server's (``128+N`` after signal ``N``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from harness.errors import ConfigError

__all__ = ["interpose"]


@click.command(context_settings={"allow_interspersed_args": False})
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fault plan (YAML or JSON); entries for other targets are ignored.",
)
@click.option(
    "--control",
    metavar="URL",
    help="A running Toxiproxy API (harness proxy serve, or Toxiproxy): register this "
    "interposer there as proxy NAME and mirror that proxy's toxics while running.",
)
@click.option(
    "--api",
    metavar="URL",
    help="Serve this interposer's own control API (Toxiproxy routes + /faults) at this "
    "loopback URL, e.g. http://127.0.0.1:0 (port 0 = any); the bound URL goes to stderr.",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append every fault record to this JSON-lines file.",
)
@click.option(
    "--spans",
    "spans_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append the harness.fault spans as OTLP JSON Lines to this file. With "
    "OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT set they also go to that collector.",
)
@click.option(
    "--counts",
    "counts_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Share the plan's counts (nth, count, draws) with every interposer given this file: "
    "a server started anew by its client goes on counting, so a one-shot fault fires once.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random draw.")
@click.option(
    "--name",
    default="stdio",
    show_default=True,
    help="The target name: plan entries with another target are ignored; the proxy name in "
    "the control API.",
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=float,
    help="Real seconds per scenario second (plan times and toxic waits are scenario time).",
)
@click.option(
    "--max-frame-bytes",
    default=32 << 20,
    show_default=True,
    type=click.IntRange(min=1024),
    help="The largest frame relayed either way; a larger one is refused and the client gets a "
    "JSON-RPC error for it.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def interpose(
    plan_path: Path | None,
    control: str | None,
    api: str | None,
    events_path: Path | None,
    spans_path: Path | None,
    counts_path: Path | None,
    seed: int,
    name: str,
    time_scale: float,
    max_frame_bytes: int,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (an stdio MCP server) behind a relay that injects the plan's faults.

    Use it in place of the server command: harness interpose [OPTIONS] -- COMMAND [ARGS]...
    Stdout carries the server's frames only; the exit status is the server's.
    """
    import anyio

    from harness.faults.plan import FaultPlan
    from harness.telemetry.providers import process_tracer_provider

    plan = FaultPlan.load(plan_path) if plan_path is not None else FaultPlan()
    if not time_scale > 0:
        raise ConfigError("must be a positive number", field="--time-scale", value=time_scale)
    address = _api_address(api) if api is not None else None
    if control is not None:
        _check_url(control)
    # Fault spans are parented on the span of the request they hit (``_meta.traceparent``),
    # so they join the client's trace.
    provider = process_tracer_provider("harness-interposer", spans_path)
    try:
        status = anyio.run(
            _run,
            list(command),
            plan,
            control,
            address,
            events_path,
            counts_path,
            provider,
            seed,
            name,
            time_scale,
            max_frame_bytes,
        )
    finally:
        provider.shutdown()
    sys.exit(status)


def _api_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or parts.hostname is None:
        raise ConfigError("expected http://127.0.0.1:PORT", field="--api", value=url)
    try:
        port = parts.port or 0
    except ValueError:
        raise ConfigError("bad port", field="--api", value=url) from None
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError("the control API listens on loopback only", field="--api", value=url)
    return ("127.0.0.1" if parts.hostname == "localhost" else parts.hostname), port


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or not port:
        raise ConfigError("expected http://HOST:PORT", field="--control", value=url)


async def _run(
    command: list[str],
    plan: Any,
    control: str | None,
    api: tuple[str, int] | None,
    events_path: Path | None,
    counts_path: Path | None,
    provider: Any,
    seed: int,
    name: str,
    time_scale: float,
    max_frame_bytes: int,
) -> int:
    import anyio

    from harness.chaos_random import ChaosRandom
    from harness.clock import Clock, LoopClock, ScaledClock
    from harness.faults.interposer import Interposer
    from harness.faults.records import FaultRecorder

    clock: Clock = LoopClock() if time_scale == 1.0 else ScaledClock(time_scale)
    from harness.faults.shared_counts import SharedCounts

    recorder = FaultRecorder(
        events_path=events_path, clock=clock, tracer_provider=provider, wall_clock=True
    )
    interposer = Interposer(
        command,
        plan=plan,
        name=name,
        clock=clock,
        rng=ChaosRandom(seed).fork("interposer"),
        recorder=recorder,
        max_frame_bytes=max_frame_bytes,
        counts=SharedCounts(counts_path) if counts_path is not None else None,
    )
    status = 0
    try:
        with (
            _first_harness_error(),
            anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
        ):
            async with anyio.create_task_group() as tg:
                if api is not None:
                    url = await tg.start(_serve_api, interposer, api)
                    click.echo(f"control listening on {url}", err=True)
                if control is not None:
                    from harness.faults.registration import register_and_mirror

                    # Polling the API is plumbing: real time, whatever the scenario scale.
                    poll = partial(register_and_mirror, control, interposer, clock=LoopClock())
                    await tg.start(poll)

                async def on_signal() -> None:
                    async for _ in signals:
                        await interposer.terminate()

                tg.start_soon(on_signal)
                await tg.start(_run_timed, interposer)
                status = await interposer.run()
                tg.cancel_scope.cancel()
    finally:
        recorder.close()
    return status


@contextlib.contextmanager
def _first_harness_error() -> Iterator[None]:
    """Raise a ``HarnessError`` from the task group by itself (the CLI prints it as one line)."""
    from harness.errors import HarnessError

    try:
        yield
    except BaseExceptionGroup as group:
        found = group.subgroup(lambda exc: isinstance(exc, HarnessError))
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        if found is None:
            raise
        raise found from None


async def _run_timed(interposer: Any, *, task_status: Any) -> None:
    task_status.started()
    await interposer.run_timed()


async def _serve_api(interposer: Any, address: tuple[str, int], *, task_status: Any) -> None:
    import logging
    import socket

    import uvicorn

    from harness.errors import ServerError
    from harness.faults.interposer_api import build_control_app

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    host, port = address
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    config = uvicorn.Config(
        build_control_app(interposer),
        lifespan="off",
        log_level=logging.WARNING,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)
    shown = f"[{host}]" if ":" in host else host
    task_status.started(f"http://{shown}:{sock.getsockname()[1]}")
    try:
        await server.serve([sock])
    finally:
        sock.close()
