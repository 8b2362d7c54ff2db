"""``host:port`` addresses as Toxiproxy writes them; listening is allowed on loopback only."""

from __future__ import annotations

import ipaddress

from harness.errors import FaultConfigError

__all__ = ["Address", "parse_address"]

Address = tuple[str, int]


def parse_address(value: object, *, field: str, listen: bool) -> Address:
    """Split ``host:port`` (``[::1]:port`` for IPv6); a listen address must be loopback."""
    if not isinstance(value, str) or ":" not in value:
        raise FaultConfigError("expected an address 'host:port'", field=field, value=value)
    host, _, port_text = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535 or (port == 0 and not listen):
        raise FaultConfigError("invalid port in address", field=field, value=value)
    if not host:
        raise FaultConfigError("address has no host", field=field, value=value)
    if listen:
        if host == "localhost":
            host = "127.0.0.1"
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise FaultConfigError(
                "the proxy listens on loopback only (127.0.0.1, ::1 or localhost)",
                field=field,
                value=value,
            )
    return host, port


def format_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
