"""The interposer as a proxy of a running Toxiproxy API (``harness proxy serve`` or a real
Toxiproxy): it registers itself and mirrors that proxy's toxics.

``register_and_mirror`` creates proxy ``name`` on the API (``listen`` and ``upstream`` are
required by the API and only describe the interposer: a loopback port it never uses), then
polls ``GET /proxies/{name}/toxics`` every ``interval`` seconds and applies the differences to
the interposer's toxics: a test drives the stdio pipes through the same API, with the same
client, as its TCP proxies. On exit the proxy is deleted (best effort). Toxiproxy's API has no
change feed, so a change takes effect within one interval; the interposer records each applied
change (``added`` / ``updated`` / ``removed``, trigger ``api``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import anyio

from harness.clock import Clock
from harness.errors import FaultConfigError, ServerError
from harness.faults.toxics import ToxicSpec

__all__ = ["register_and_mirror"]

_log = logging.getLogger(__name__)


async def register_and_mirror(
    api_url: str,
    interposer: Any,
    *,
    clock: Clock,
    interval: float = 0.05,
    task_status: Any = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Register ``interposer`` (``name``, ``add_toxic``, ``update_toxic``, ``remove_toxic``,
    ``toxics``) on the API at ``api_url`` and mirror its toxics until cancelled. Signals
    ``task_status`` once registered; raises ``ServerError`` if the API cannot be reached and
    ``FaultConfigError`` if it refuses the proxy (e.g. the name is taken)."""
    import httpx2

    name = interposer.name
    async with httpx2.AsyncClient(base_url=api_url, timeout=5.0) as http:
        try:
            created = await http.post(
                "/proxies",
                json={"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
            )
        except httpx2.HTTPError as exc:
            raise ServerError(f"cannot reach the Toxiproxy API at {api_url}: {exc}") from None
        if created.status_code != 201:
            raise FaultConfigError(
                f"the Toxiproxy API at {api_url} refused proxy {name!r}: {_error(created)}",
                status=created.status_code,
            )
        task_status.started()
        try:
            while True:
                with contextlib.suppress(httpx2.HTTPError, ValueError):
                    response = await http.get(f"/proxies/{name}/toxics")
                    if response.status_code == 200:
                        _sync(interposer, response.json())
                await clock.sleep(interval)
        finally:
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(2.0),
                contextlib.suppress(httpx2.HTTPError),
            ):
                await http.delete(f"/proxies/{name}")


def _sync(interposer: Any, remote: object) -> None:
    if not isinstance(remote, list):
        return
    wanted: dict[str, ToxicSpec] = {}
    for item in remote:
        try:
            spec = ToxicSpec.parse(item)
        except FaultConfigError as exc:
            _log.warning("ignoring a toxic the interposer cannot run: %s", exc)
            continue
        wanted[spec.name] = spec
    current: dict[str, ToxicSpec] = {spec.name: spec for spec in interposer.toxics}
    try:
        for gone in current.keys() - wanted.keys():
            interposer.remove_toxic(gone)
        for toxic_name, spec in wanted.items():
            old = current.get(toxic_name)
            if old is not None and (old.type, old.stream) != (spec.type, spec.stream):
                interposer.remove_toxic(toxic_name)
                old = None
            if old is None:
                interposer.add_toxic(spec)
            elif old.to_json() != spec.to_json():
                changes = {"toxicity": spec.toxicity, "attributes": spec.toxic.attributes()}
                interposer.update_toxic(toxic_name, changes)
    except FaultConfigError as exc:
        _log.warning("could not mirror a toxic change: %s", exc)


def _error(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)
