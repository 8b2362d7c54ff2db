"""The interposer's control API: the Toxiproxy HTTP API for its one proxy, plus frame faults.

The interposer shows itself as one proxy (``listen: "stdio"``, ``upstream``: the server command,
always enabled), so Toxiproxy clients (``toxiproxy-python``, ``ToxiproxyClient``) list it and
add, change and remove its toxics live with Toxiproxy's routes, status codes and error bodies.
One extension serves the plan's frame and process faults::

    GET    /proxies/{name}/faults           the installed faults (plan entries as JSON)
    POST   /proxies/{name}/faults           add one plan entry (400 bad entry, 409 name taken)
    DELETE /proxies/{name}/faults/{fault}   remove it (404 unknown)

``POST /reset`` removes every toxic and every fault. Creating, changing or deleting proxies is
refused (400): this API belongs to one interposer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness._yaml import validation_error
from harness.errors import FaultConfigError
from harness.faults.interposer import Interposer
from harness.faults.plan import CancelFault, FaultEntry, LlmFault, ToxicFault
from harness.faults.proxy.api import body, build_app, guarded

__all__ = ["InterposerRegistry", "build_control_app"]

_ENTRY: TypeAdapter[Any] = TypeAdapter(FaultEntry)


class InterposerRegistry:
    """The interposer as a registry of one proxy: its toxics change, the proxy does not."""

    def __init__(self, interposer: Interposer) -> None:
        self.interposer = interposer

    def __iter__(self) -> Iterator[Interposer]:
        yield self.interposer

    def get(self, name: str) -> Interposer:
        if name != self.interposer.name:
            raise FaultConfigError("proxy not found", status=404, field="name", value=name)
        return self.interposer

    def _refuse(self) -> NoReturn:
        raise FaultConfigError(
            f"this API controls the stdio interposer {self.interposer.name!r} only"
        )

    async def create(self, data: object) -> Interposer:
        self._refuse()

    async def populate(self, items: object) -> list[Interposer]:
        self._refuse()

    async def update(self, name: str, data: object) -> Interposer:
        self._refuse()

    async def delete(self, name: str) -> None:
        self._refuse()

    async def reset(self) -> None:
        for spec in list(self.interposer.toxics):
            self.interposer.remove_toxic(spec.name)
        for fault in self.interposer.engine.faults:
            self.interposer.remove_fault(fault.name)


def build_control_app(interposer: Interposer) -> Starlette:
    """The control API of ``interposer``: Toxiproxy's, plus its frame and process faults."""
    registry = InterposerRegistry(interposer)

    async def list_faults(request: Request) -> Response:
        registry.get(request.path_params["proxy"])
        return JSONResponse([_fault_json(f) for f in interposer.engine.faults])

    async def create_fault(request: Request) -> Response:
        registry.get(request.path_params["proxy"])
        fault = _parse_fault(await body(request))
        if any(f.name == fault.name for f in interposer.engine.faults):
            raise FaultConfigError(
                "fault already exists", status=409, field="name", value=fault.name
            )
        interposer.add_fault(fault)
        return JSONResponse(_fault_json(fault), status_code=201)

    async def delete_fault(request: Request) -> Response:
        registry.get(request.path_params["proxy"])
        name = request.path_params["fault"]
        if interposer.remove_fault(name) is None:
            raise FaultConfigError("fault not found", status=404, field="name", value=name)
        return Response(status_code=204)

    return build_app(
        registry,
        [
            Route("/proxies/{proxy}/faults", guarded(list_faults), methods=["GET"]),
            Route("/proxies/{proxy}/faults", guarded(create_fault), methods=["POST"]),
            Route("/proxies/{proxy}/faults/{fault}", guarded(delete_fault), methods=["DELETE"]),
        ],
    )


def _parse_fault(data: object) -> Any:
    try:
        fault = _ENTRY.validate_python(data)
    except ValidationError as exc:
        raise validation_error(
            exc, text=None, path=None, error=FaultConfigError, data=data, quote=False
        ) from None
    if isinstance(fault, ToxicFault | LlmFault | CancelFault):
        raise FaultConfigError(
            "add toxics through /proxies/{proxy}/toxics; LLM faults and client-side cancels do "
            "not apply to a stdio server",
            field="type",
            value=fault.type,
        )
    if fault.name is None:
        raise FaultConfigError("a fault added through the API needs a name", field="name")
    return fault


def _fault_json(fault: Any) -> dict[str, Any]:
    data: dict[str, Any] = fault.model_dump(exclude_none=True)
    data["type"] = fault.type
    return data
