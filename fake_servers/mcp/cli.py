"""``harness fake-mcp NAME``: run a scripted fake MCP server over stdio or streamable HTTP.

In stdio mode stdout is the protocol channel: nothing else is ever printed there (diagnostics
go to stderr). In HTTP mode the first stdout line is ``listening on http://HOST:PORT/mcp``.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Literal

import click

from fake_servers.mcp._limits import MAX_SESSIONS, SESSION_IDLE_TIMEOUT
from fake_servers.mcp._names import SERVER_NAMES
from harness.errors import ConfigError

__all__ = ["fake_mcp", "run_module"]

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("fake-mcp")
@click.argument("name")
@click.option("--script", type=_FILE, help="YAML or JSON script of tool behaviours.")
@click.option("--events", type=_FILE, help="Append the event log here as JSON Lines.")
@click.option("--spans", type=_FILE, help="Append finished spans here as OTLP JSON Lines.")
@click.option(
    "--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address.")
@click.option("--port", type=int, default=0, show_default=True, help="HTTP port (0: any free).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of generated values.")
@click.option("--chat-fixture", type=_FILE, help="Chat history YAML (chat server).")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.00001, max=10.0),
    default=1.0,
    show_default=True,
    help="Real seconds per scripted second (latencies, slow start).",
)
@click.option(
    "--session-idle-timeout",
    type=click.FloatRange(min=0.1, max=86400),
    default=SESSION_IDLE_TIMEOUT,
    show_default=True,
    help="HTTP: close a session no request has used for this many seconds.",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(min=1, max=100_000),
    default=MAX_SESSIONS,
    show_default=True,
    help="HTTP: at most this many sessions open at once (the next client gets a 503).",
)
def fake_mcp(
    name: str,
    script: Path | None,
    events: Path | None,
    spans: Path | None,
    transport: Literal["stdio", "http"],
    host: str,
    port: int,
    seed: int,
    chat_fixture: Path | None,
    time_scale: float,
    session_idle_timeout: float,
    max_sessions: int,
) -> None:
    """Run the fake MCP server NAME (ssh, vault, traffic, cameras, chat, or declared: every
    tool declared in --script).

    Stops on stdin EOF (stdio) or SIGTERM / SIGINT, with the event log flushed.
    """
    if name not in SERVER_NAMES:
        raise ConfigError(
            f"unknown fake MCP server '{name}' (choose from {', '.join(SERVER_NAMES)})",
            field="NAME",
        )
    if transport == "http":
        _check_loopback(host)
    from fake_servers.mcp._script import ServerScript

    loaded = ServerScript.load(script) if script is not None else ServerScript()
    # Imported here: importing mcp costs seconds, not worth paying for --help or a bad script.
    from fake_servers.mcp._process import run_process

    run_process(
        name,
        script=loaded,
        transport=transport,
        host=host,
        port=port,
        seed=seed,
        events_path=events,
        spans_path=spans,
        chat_fixture=chat_fixture,
        time_scale=time_scale,
        session_idle_timeout=session_idle_timeout,
        max_sessions=max_sessions,
    )


def _check_loopback(host: str) -> None:
    """Fake servers serve this machine only: a wildcard or outside address is refused."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            "the fake MCP server binds loopback only (use 127.0.0.1)", field="--host", value=host
        )


def run_module(name: str) -> None:
    """Entry of ``python -m fake_servers.mcp.NAME [OPTIONS]``: ``harness fake-mcp NAME``."""
    from harness.cli import main

    sys.argv[1:1] = ["fake-mcp", name]
    main()
