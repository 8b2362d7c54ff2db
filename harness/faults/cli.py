"""``harness proxy``: the Toxiproxy-compatible proxy as a process."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from harness.errors import ConfigError, FaultConfigError

__all__ = ["load_proxy_config", "proxy"]


@click.group()
def proxy() -> None:
    """Toxiproxy-compatible TCP proxy with toxics."""


@proxy.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="API address (loopback).")
@click.option("--port", default=8474, show_default=True, type=int, help="API port; 0 = any.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Proxies to create at start: a JSON or YAML list, as for POST /populate.",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append every fault record to this JSON-lines file.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random draw.")
def serve(
    host: str, port: int, config_path: Path | None, events_path: Path | None, seed: int
) -> None:
    """Serve the Toxiproxy HTTP API until SIGINT or SIGTERM."""
    import anyio

    proxies = load_proxy_config(config_path) if config_path is not None else []
    anyio.run(_serve, host, port, proxies, config_path, events_path, seed)


async def _serve(
    host: str,
    port: int,
    proxies: list[Any],
    config_path: Path | None,
    events_path: Path | None,
    seed: int,
) -> None:
    import anyio

    from harness.faults.proxy.server import ToxiproxyServer

    # Signals are received before the server starts, so an early SIGTERM still exits cleanly.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            server = ToxiproxyServer(
                host=host, port=port, seed=seed, events_path=events_path, proxies=proxies
            )
            async with server as url:
                print(f"listening on {url}", flush=True)
                async for _ in signals:
                    break
        except FaultConfigError as exc:
            if config_path is None or exc.path is not None:
                raise
            raise FaultConfigError(
                exc.message, path=config_path, field=exc.field, value=exc.value
            ) from None


def load_proxy_config(path: Path) -> list[Any]:
    """Read a populate-style list of proxies from a JSON or YAML file."""
    from harness._files import read_text
    from harness._yaml import parse_yaml

    data = parse_yaml(read_text(path, what="proxy config"), path=path, error=ConfigError)
    if isinstance(data, dict) and "proxies" in data:
        data = data["proxies"]
    if not isinstance(data, list):
        raise ConfigError(
            "expected a list of proxies (or a mapping with 'proxies')",
            path=path,
            value=type(data).__name__,
        )
    return data
