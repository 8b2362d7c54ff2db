"""The TCP proxy with a Toxiproxy-compatible HTTP API."""

from __future__ import annotations

from harness.faults.proxy.api import TOXIPROXY_VERSION, build_app
from harness.faults.proxy.proxy import Proxy
from harness.faults.proxy.registry import ProxyRegistry
from harness.faults.proxy.server import ToxiproxyServer

__all__ = ["TOXIPROXY_VERSION", "Proxy", "ProxyRegistry", "ToxiproxyServer", "build_app"]
