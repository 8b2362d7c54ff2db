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

from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from harness.errors import FaultConfigError
from harness.faults.interposer import Interposer
from harness.faults.plan import FaultEntry, LlmFault, ToxicFault
from harness.faults.proxy.api import TOXIPROXY_VERSION, _body, _error, _guarded
from harness.faults.toxics import ToxicSpec

__all__ = ["build_control_app"]

_ENTRY: TypeAdapter[Any] = TypeAdapter(FaultEntry)


def build_control_app(interposer: Interposer) -> Starlette:
    """The control API of ``interposer``."""

    def proxy_json() -> dict[str, Any]:
        return {
            "name": interposer.name,
            "listen": "stdio",
            "upstream": " ".join(interposer.command),
            "enabled": True,
            "toxics": [spec.to_json() for spec in interposer.toxics],
        }

    def check(request: Request) -> None:
        name = request.path_params["proxy"]
        if name != interposer.name:
            raise FaultConfigError("proxy not found", status=404, field="name", value=name)

    async def version(request: Request) -> Response:
        return PlainTextResponse(TOXIPROXY_VERSION)

    async def list_proxies(request: Request) -> Response:
        return JSONResponse({interposer.name: proxy_json()})

    async def refuse(request: Request) -> Response:
        raise FaultConfigError(f"this API controls the stdio interposer {interposer.name!r} only")

    async def get_proxy(request: Request) -> Response:
        check(request)
        return JSONResponse(proxy_json())

    async def reset(request: Request) -> Response:
        for spec in list(interposer.toxics):
            interposer.remove_toxic(spec.name)
        for fault in interposer.engine.faults:
            interposer.remove_fault(fault.name)
        return Response(status_code=204)

    async def list_toxics(request: Request) -> Response:
        check(request)
        return JSONResponse([spec.to_json() for spec in interposer.toxics])

    async def create_toxic(request: Request) -> Response:
        check(request)
        spec = ToxicSpec.parse(await _body(request))
        interposer.add_toxic(spec)
        return JSONResponse(spec.to_json())

    async def get_toxic(request: Request) -> Response:
        check(request)
        return JSONResponse(interposer.toxics.get(request.path_params["toxic"]).to_json())

    async def update_toxic(request: Request) -> Response:
        check(request)
        spec = interposer.update_toxic(request.path_params["toxic"], await _body(request))
        return JSONResponse(spec.to_json())

    async def delete_toxic(request: Request) -> Response:
        check(request)
        interposer.remove_toxic(request.path_params["toxic"])
        return Response(status_code=204)

    async def list_faults(request: Request) -> Response:
        check(request)
        return JSONResponse([_fault_json(f) for f in interposer.engine.faults])

    async def create_fault(request: Request) -> Response:
        check(request)
        fault = _parse_fault(await _body(request))
        if any(f.name == fault.name for f in interposer.engine.faults):
            raise FaultConfigError(
                "fault already exists", status=409, field="name", value=fault.name
            )
        interposer.add_fault(fault)
        return JSONResponse(_fault_json(fault), status_code=201)

    async def delete_fault(request: Request) -> Response:
        check(request)
        name = request.path_params["fault"]
        if interposer.remove_fault(name) is None:
            raise FaultConfigError("fault not found", status=404, field="name", value=name)
        return Response(status_code=204)

    routes = [
        Route("/version", _guarded(version), methods=["GET"]),
        Route("/proxies", _guarded(list_proxies), methods=["GET"]),
        Route("/proxies", _guarded(refuse), methods=["POST"]),
        Route("/populate", _guarded(refuse), methods=["POST"]),
        Route("/reset", _guarded(reset), methods=["POST"]),
        Route("/proxies/{proxy}", _guarded(get_proxy), methods=["GET"]),
        Route("/proxies/{proxy}", _guarded(refuse), methods=["POST", "PATCH", "DELETE"]),
        Route("/proxies/{proxy}/toxics", _guarded(list_toxics), methods=["GET"]),
        Route("/proxies/{proxy}/toxics", _guarded(create_toxic), methods=["POST"]),
        Route("/proxies/{proxy}/toxics/{toxic}", _guarded(get_toxic), methods=["GET"]),
        Route("/proxies/{proxy}/toxics/{toxic}", _guarded(update_toxic), methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}/toxics/{toxic}", _guarded(delete_toxic), methods=["DELETE"]),
        Route("/proxies/{proxy}/faults", _guarded(list_faults), methods=["GET"]),
        Route("/proxies/{proxy}/faults", _guarded(create_fault), methods=["POST"]),
        Route("/proxies/{proxy}/faults/{fault}", _guarded(delete_fault), methods=["DELETE"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return _error(str(detail).lower(), status)

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _parse_fault(data: object) -> Any:
    try:
        fault = _ENTRY.validate_python(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        if isinstance(data, dict) and loc and loc[0] == data.get("type"):
            loc = loc[1:]
        message = str(error["msg"]).removeprefix("Value error, ")
        raise FaultConfigError(message, field=".".join(loc) or None) from None
    if isinstance(fault, ToxicFault | LlmFault):
        raise FaultConfigError(
            "add toxics through /proxies/{proxy}/toxics; LLM faults do not apply to a stdio server",
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
