"""All proxies of one server by name: the operations behind the Toxiproxy HTTP API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.errors import FaultConfigError
from harness.faults.proxy._addresses import parse_address
from harness.faults.proxy.proxy import Proxy
from harness.faults.records import FaultRecorder
from harness.faults.toxics import ToxicSpec

__all__ = ["ProxyRegistry"]

_PROXY_FIELDS = frozenset({"name", "listen", "upstream", "enabled", "toxics"})


class ProxyRegistry:
    """Creates, changes and deletes proxies; their listeners run in ``task_group``."""

    def __init__(
        self,
        *,
        task_group: TaskGroup,
        clock: Clock,
        rng: ChaosRandom,
        recorder: FaultRecorder,
    ) -> None:
        self._tg = task_group
        self._clock = clock
        self._rng = rng
        self._recorder = recorder
        self._proxies: dict[str, Proxy] = {}
        self._lock = anyio.Lock()

    def __iter__(self) -> Iterator[Proxy]:
        return iter(list(self._proxies.values()))

    def get(self, name: str) -> Proxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            raise FaultConfigError("proxy not found", status=404, field="name", value=name)
        return proxy

    async def create(self, data: object) -> Proxy:
        """Create and (unless ``enabled`` is false) start a proxy from its JSON."""
        async with self._lock:
            return await self._create(_validated(data))

    async def populate(self, items: object) -> list[Proxy]:
        """Toxiproxy's populate: create each proxy; one with a different listen or upstream is
        replaced, an identical one kept. Everything is validated before anything changes."""
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise FaultConfigError("populate expects a JSON array of proxies", value=items)
        specs = [_validated(item, index=index) for index, item in enumerate(items)]
        names = [spec["name"] for spec in specs]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise FaultConfigError("proxy listed twice", field="name", value=duplicate)
        result = []
        async with self._lock:
            for spec in specs:
                existing = self._proxies.get(spec["name"])
                if (
                    existing is not None
                    and existing.upstream == spec["upstream"]
                    and (
                        spec["listen"][1] in (0, existing.listen[1])
                        and spec["listen"][0] == existing.listen[0]
                    )
                ):
                    result.append(existing)
                    continue
                if existing is not None:
                    await self._delete(existing)
                result.append(await self._create(spec))
        return result

    async def update(self, name: str, data: object) -> Proxy:
        """Change ``listen``, ``upstream`` (both drop connections) or ``enabled``."""
        if not isinstance(data, Mapping):
            raise FaultConfigError("a proxy update must be a JSON object", value=data)
        async with self._lock:
            proxy = self.get(name)
            if "name" in data and data["name"] != name:
                raise FaultConfigError("a proxy's name cannot be changed", field="name")
            listen = (
                parse_address(data["listen"], field="listen", listen=True)
                if "listen" in data
                else proxy.listen
            )
            upstream = (
                parse_address(data["upstream"], field="upstream", listen=False)
                if "upstream" in data
                else proxy.upstream
            )
            enabled = data.get("enabled", proxy.enabled)
            if not isinstance(enabled, bool):
                raise FaultConfigError("enabled must be true or false", field="enabled")
            was_enabled = proxy.enabled
            if (listen, upstream) != (proxy.listen, proxy.upstream) or not enabled:
                await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
            if enabled:
                await proxy.start(self._tg)
            if enabled != was_enabled:
                proxy.record_down(not enabled)
            return proxy

    async def delete(self, name: str) -> None:
        async with self._lock:
            await self._delete(self.get(name))

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        async with self._lock:
            for proxy in self._proxies.values():
                proxy.remove_all_toxics()
                if not proxy.enabled:
                    await proxy.start(self._tg)
                    proxy.record_down(False)

    async def close(self) -> None:
        """Stop every proxy (listeners and connections)."""
        async with self._lock:
            for proxy in list(self._proxies.values()):
                await proxy.stop()

    async def _create(self, spec: dict[str, Any]) -> Proxy:
        if spec["name"] in self._proxies:
            raise FaultConfigError(
                "proxy already exists", status=409, field="name", value=spec["name"]
            )
        proxy = Proxy(
            name=spec["name"],
            listen=spec["listen"],
            upstream=spec["upstream"],
            clock=self._clock,
            rng=self._rng.fork(f"proxy-{spec['name']}"),
            recorder=self._recorder,
        )
        for toxic in spec["toxics"]:
            proxy.add_toxic(toxic)
        if spec["enabled"]:
            await proxy.start(self._tg)
        self._proxies[proxy.name] = proxy
        return proxy

    async def _delete(self, proxy: Proxy) -> None:
        await proxy.stop()
        self._proxies.pop(proxy.name, None)


def _validated(data: object, *, index: int | None = None) -> dict[str, Any]:
    where = "" if index is None else f"proxies[{index}]."
    if not isinstance(data, Mapping):
        raise FaultConfigError("a proxy must be a JSON object", field=where.rstrip(".") or None)
    unknown = sorted(set(data) - _PROXY_FIELDS)
    if unknown:
        raise FaultConfigError(
            f"unknown proxy field; known: {', '.join(sorted(_PROXY_FIELDS))}",
            field=where + unknown[0],
        )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise FaultConfigError("missing required field: name", field=where + "name", value=name)
    if "upstream" not in data:
        raise FaultConfigError("missing required field: upstream", field=where + "upstream")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise FaultConfigError("enabled must be true or false", field=where + "enabled")
    toxics_data = data.get("toxics") or []
    if not isinstance(toxics_data, Sequence) or isinstance(toxics_data, str | bytes):
        raise FaultConfigError("toxics must be a list", field=where + "toxics")
    toxics: list[ToxicSpec] = []
    for position, item in enumerate(toxics_data):
        try:
            toxics.append(ToxicSpec.parse(item))
        except FaultConfigError as exc:
            raise FaultConfigError(
                exc.message,
                field=f"{where}toxics[{position}].{exc.field or ''}".rstrip("."),
                value=exc.value,
            ) from None
    return {
        "name": name,
        "listen": parse_address(
            data.get("listen", "127.0.0.1:0"), field=where + "listen", listen=True
        ),
        "upstream": parse_address(data["upstream"], field=where + "upstream", listen=False),
        "enabled": enabled,
        "toxics": toxics,
    }
