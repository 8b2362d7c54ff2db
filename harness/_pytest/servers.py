"""What the ``fake_anthropic``, ``fake_mcp`` and ``fault_proxy`` fixtures hand to a test."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness._pytest.background import Background
from harness.errors import ConfigError

if TYPE_CHECKING:
    from fake_servers.anthropic import FakeAnthropic, Journal, ModelScript
    from fake_servers.mcp import EventLog, FakeServer, ServerScript
    from harness.faults.proxy.server import ToxiproxyServer
    from harness.faults.records import FaultRecord

__all__ = [
    "IN_PROCESS_BASE_URL",
    "FakeAPI",
    "FakeMCP",
    "FaultProxy",
    "Transport",
    "build_fake_mcp",
    "model_script",
    "server_script",
]

# The base URL of an in-process fake (no socket; ``.invalid`` never resolves).
IN_PROCESS_BASE_URL = "http://fake-anthropic.invalid"

Transport = Literal["memory", "http", "stdio"]
TRANSPORTS: tuple[Transport, ...] = ("memory", "http", "stdio")


def model_script(script: object) -> ModelScript:
    """A ``ModelScript`` from a script, a file path, parsed data, or ``None`` (the default)."""
    from fake_servers.anthropic import ModelScript

    if script is None:
        return ModelScript.default()
    if isinstance(script, ModelScript):
        return script
    if isinstance(script, str | Path):
        return ModelScript.load(script)
    return ModelScript.from_data(script)


def server_script(script: object) -> ServerScript | None:
    from fake_servers.mcp import ServerScript

    if script is None or isinstance(script, ServerScript):
        return script
    if isinstance(script, str | Path):
        return ServerScript.load(script)
    return ServerScript.from_data(script, source="fake_mcp(script=...)")


@dataclass(eq=False)
class FakeAPI:
    """The fake Messages API of one test.

    ``base_url`` is a loopback URL (``serve=True``; any client, ``ANTHROPIC_BASE_URL``) or the
    in-process one ``async_client()`` uses; ``journal.records`` lists every request.
    """

    fake: FakeAnthropic
    base_url: str
    served: bool

    @property
    def app(self) -> Any:
        return self.fake.app

    @property
    def script(self) -> ModelScript:
        return self.fake.script

    @property
    def journal(self) -> Journal:
        return self.fake.journal

    def async_client(self, **kwargs: Any) -> Any:
        """A real ``anthropic.AsyncAnthropic`` on this fake (in-process unless served)."""
        kwargs.setdefault("base_url", self.base_url)
        if not self.served:
            return self.fake.async_client(**kwargs)
        import anthropic

        kwargs.setdefault("api_key", "sk-ant-fake")
        return anthropic.AsyncAnthropic(**kwargs)

    def inject(self, fault: Any, *, agent: str | None = None, count: int = 1) -> None:
        self.fake.inject(fault, agent=agent, count=count)


@dataclass(eq=False)
class FakeMCP:
    """A fake MCP server on a transport. ``target`` is what ``mcp.Client(...)`` takes: the
    server object (memory; use ``mode="legacy"`` for real JSON-RPC framing), the URL (http) or
    ``StdioServerParameters`` (stdio)."""

    name: str
    transport: Transport
    target: Any
    fake: FakeServer | None = None
    events_path: Path | None = None

    @property
    def url(self) -> str | None:
        return self.target if self.transport == "http" else None

    def events(self) -> list[dict[str, Any]]:
        """What the server saw (its event log), as JSON objects."""
        if self.fake is not None:
            return [e.to_json() for e in self.fake.events.events]
        if self.events_path is None or not self.events_path.exists():
            return []
        lines = self.events_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    @property
    def event_log(self) -> EventLog | None:
        return self.fake.events if self.fake is not None else None


def build_fake_mcp(
    name: str,
    *,
    transport: str,
    script: object,
    seed: int,
    workdir: Path,
    background: Callable[[], Background],
    cleanups: list[Callable[[], None]],
) -> FakeMCP:
    if transport not in TRANSPORTS:
        raise ConfigError(
            f"unknown transport; choose from {', '.join(TRANSPORTS)}",
            field="transport",
            value=transport,
        )
    from harness.chaos_random import ChaosRandom

    if transport == "stdio":
        from fake_servers.mcp import SERVER_NAMES, stdio_parameters

        if name not in SERVER_NAMES:
            raise ConfigError(
                f"unknown fake MCP server (choose from {', '.join(SERVER_NAMES)})",
                field="name",
                value=name,
            )
        script_path: Path | None = None
        if script is not None:
            if isinstance(script, str | Path):
                script_path = Path(script)
            else:
                parsed = server_script(script)
                assert parsed is not None
                script_path = workdir / f"{name}.script.json"
                script_path.write_text(parsed.model_dump_json(exclude_defaults=True))
        events = workdir / f"{name}.events.jsonl"
        params = stdio_parameters(name, script=script_path, events=events, seed=seed)
        return FakeMCP(name, "stdio", params, events_path=events)
    from fake_servers.mcp import build_server, serve_http

    fake = build_server(name, script=server_script(script), rng=ChaosRandom(seed))
    if transport == "memory":
        return FakeMCP(name, "memory", fake.server, fake=fake)
    url, stop = background().enter(serve_http(fake))
    cleanups.append(stop)
    return FakeMCP(name, "http", url, fake=fake)


@dataclass(eq=False)
class FaultProxy:
    """The embedded Toxiproxy-compatible proxy (one per session, emptied after each test).

    ``url`` is its HTTP API (for ``toxiproxy-python`` or ``TOXIPROXY_URL``); the methods drive
    it directly. ``records`` are the fault records of this test.
    """

    url: str
    server: ToxiproxyServer
    background: Background
    _first_record: int = field(default=0)

    def create_proxy(self, name: str, *, upstream: str, listen: str = "127.0.0.1:0") -> str:
        """Create a proxy; returns the address it listens on (the bound port for port 0)."""

        async def create() -> str:
            proxy = await self.server.registry.create(
                {"name": name, "upstream": upstream, "listen": listen}
            )
            return str(proxy.to_json()["listen"])

        return self.background.call(create)

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: Any,
    ) -> str:
        """Add a toxic (Toxiproxy's types and attribute names); returns its name."""
        from harness.faults.toxics import ToxicSpec

        spec = ToxicSpec.parse(
            {
                "name": name or f"{type}_{stream}",
                "type": type,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            }
        )

        def add() -> str:
            self.server.registry.get(proxy).add_toxic(spec)
            return spec.name

        return self.background.call_sync(add)

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self.background.call(self.server.registry.update, proxy, {"enabled": enabled})

    def proxies(self) -> dict[str, dict[str, Any]]:
        return self.background.call_sync(
            lambda: {p.name: p.to_json() for p in self.server.registry}
        )

    @property
    def records(self) -> list[FaultRecord]:
        return list(self.server.recorder.records[self._first_record :])

    def reset(self) -> None:
        """Delete every proxy and toxic (done after each test)."""

        async def empty() -> None:
            for proxy in list(self.server.registry):
                await self.server.registry.delete(proxy.name)

        self.background.call(empty)
        self._first_record = len(self.server.recorder.records)
