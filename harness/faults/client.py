"""How the harness sends TCP faults: through ``toxiproxy-python`` to a Toxiproxy API.

With ``TOXIPROXY_URL`` set (e.g. ``http://127.0.0.1:8474``) the API of that server is used, so
a real Toxiproxy can take the faults; otherwise an embedded ``ToxiproxyServer`` is started. The
same client code drives both. (No Toxiproxy binary can be installed on the machines this was
built on: the switch is tested against a second embedded server on another port.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio

from harness.errors import ConfigError, FaultConfigError, FaultError

__all__ = ["TOXIPROXY_URL_ENV", "ToxiproxyClient", "toxiproxy_client"]

TOXIPROXY_URL_ENV = "TOXIPROXY_URL"

T = TypeVar("T")

# toxiproxy-python keeps the API host and port as class attributes: calls are serialized so two
# clients for different servers never mix them up.
_API_LOCK = threading.Lock()


class ToxiproxyClient:
    """Async facade over the synchronous ``toxiproxy-python`` client, bound to one API URL.

    Calls run in a worker thread. Errors become ``FaultConfigError`` (status 400/404/409, the
    server's message) or ``FaultError``.
    """

    def __init__(self, api_url: str) -> None:
        parts = urlsplit(api_url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ConfigError(
                "a Toxiproxy API URL looks like http://HOST:PORT", field="url", value=api_url
            )
        self.url = api_url
        self._host, self._port = parts.hostname, parts.port

    async def version(self) -> str:
        raw = await self._call(lambda server: server.version())
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def create_proxy(
        self, *, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> str:
        """Create a proxy; returns the address it listens on (the bound port for port 0)."""
        proxy = await self._call(
            lambda server: server.create(
                upstream=upstream, name=name, listen=listen, enabled=enabled
            )
        )
        return str(proxy.listen)

    async def add_toxic(
        self,
        proxy: str,
        *,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a toxic; returns its name (Toxiproxy's default ``<type>_<stream>``)."""
        toxic_name = name or f"{type}_{stream}"
        await self._call(
            lambda server: self._proxy(server, proxy).add_toxic(
                type=type,
                stream=stream,
                toxicity=toxicity,
                name=toxic_name,
                attributes=dict(attributes or {}),
            )
        )
        return toxic_name

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._call(lambda server: self._proxy(server, proxy).destroy_toxic(name))

    async def toxics(self, proxy: str) -> dict[str, dict[str, Any]]:
        """The proxy's toxics by name, as ``{type, stream, toxicity, attributes}``."""
        found = await self._call(lambda server: self._proxy(server, proxy).toxics())
        return {
            name: {
                "type": toxic.type,
                "stream": toxic.stream,
                "toxicity": toxic.toxicity,
                "attributes": toxic.attributes,
            }
            for name, toxic in found.items()
        }

    async def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Enable a proxy, or disable it (closes its listener and connections)."""

        def call(server: Any) -> None:
            handle = self._proxy(server, proxy)
            handle.enable() if enabled else handle.disable()

        await self._call(call)

    async def delete_proxy(self, proxy: str) -> None:
        await self._call(lambda server: self._proxy(server, proxy).destroy())

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        await self._call(lambda server: server.reset())

    @staticmethod
    def _proxy(server: Any, name: str) -> Any:
        proxy = server.get_proxy(name)
        if proxy is None:
            raise FaultConfigError("proxy not found", status=404, field="name", value=name)
        return proxy

    async def _call(self, action: Callable[[Any], T]) -> T:
        return await anyio.to_thread.run_sync(self._call_sync, action)

    def _call_sync(self, action: Callable[[Any], T]) -> T:
        from toxiproxy import Toxiproxy
        from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

        statuses: dict[type[Exception], int] = {InvalidToxic: 400, NotFound: 404, ProxyExists: 409}
        with _API_LOCK:
            server = Toxiproxy()
            server.update_api_consumer(self._host, self._port)
            try:
                return action(server)
            except (InvalidToxic, NotFound, ProxyExists) as exc:
                raise FaultConfigError(_message(exc), status=statuses[type(exc)]) from None
            except FaultConfigError:
                raise
            except Exception as exc:
                raise FaultError(
                    f"Toxiproxy API at {self.url} failed: {type(exc).__name__}: {exc}"
                ) from None


def _message(exc: Exception) -> str:
    import json

    raw = exc.args[0] if exc.args else b""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        body = json.loads(text)
    except ValueError:
        return text
    return str(body.get("error", text)) if isinstance(body, dict) else text


@asynccontextmanager
async def toxiproxy_client(
    *, env: Mapping[str, str] | None = None, **server_options: Any
) -> AsyncIterator[ToxiproxyClient]:
    """A client for the Toxiproxy named by ``TOXIPROXY_URL``, or for an embedded server
    (started with ``server_options``, stopped on exit) when the variable is unset."""
    url = (os.environ if env is None else env).get(TOXIPROXY_URL_ENV, "").strip()
    if url:
        yield ToxiproxyClient(url)
        return
    from harness.faults.proxy.server import ToxiproxyServer

    async with ToxiproxyServer(**server_options) as api_url:
        yield ToxiproxyClient(api_url)
