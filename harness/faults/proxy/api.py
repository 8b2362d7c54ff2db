"""The Toxiproxy HTTP API as a Starlette app over a registry of proxies.

The registry is a ``Registry``: the TCP proxy server's ``ProxyRegistry``, or the stdio
interposer's registry of one (``harness.faults.interposer_api``), which may add routes.

Status codes and JSON error bodies (``{"error": message, "status": code}``) follow Toxiproxy:
201 for a created proxy and for populate, 204 for deletes and reset, 400 bad input, 404 unknown
proxy or toxic, 409 duplicate name, 500 when a listener cannot start. No request, however
malformed, stops the server or its proxies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from harness.errors import FaultConfigError, HarnessError
from harness.faults.toxic_set import ToxicSet
from harness.faults.toxics import ToxicSpec

__all__ = ["TOXIPROXY_VERSION", "ApiProxy", "Registry", "body", "build_app", "guarded"]

# The Toxiproxy API version this server implements.
TOXIPROXY_VERSION = "2.12.0"

_log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


class ApiProxy(Protocol):
    """A proxy as the API shows and changes it."""

    @property
    def name(self) -> str: ...

    @property
    def toxics(self) -> ToxicSet: ...

    def to_json(self) -> dict[str, Any]: ...

    def add_toxic(self, spec: ToxicSpec) -> None: ...

    def update_toxic(self, name: str, data: object) -> ToxicSpec: ...

    def remove_toxic(self, name: str) -> None: ...


class Registry(Protocol):
    """The proxies the API acts on; each method raises ``FaultConfigError`` (with the HTTP
    status) for what it refuses."""

    def __iter__(self) -> Iterator[ApiProxy]: ...

    def get(self, name: str) -> ApiProxy: ...

    async def create(self, data: object) -> ApiProxy: ...

    async def populate(self, items: object) -> Sequence[ApiProxy]: ...

    async def update(self, name: str, data: object) -> ApiProxy: ...

    async def delete(self, name: str) -> None: ...

    async def reset(self) -> None: ...


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def guarded(handler: Handler) -> Handler:
    """``handler`` answering every error as Toxiproxy does, never with a traceback."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except FaultConfigError as exc:
            return _error(str(exc), exc.status)
        except HarnessError as exc:
            return _error(str(exc), 500)
        except Exception as exc:
            _log.exception("toxiproxy API request failed: %s %s", request.method, request.url)
            return _error(f"internal error: {type(exc).__name__}", 500)

    return endpoint


async def body(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body; ``FaultConfigError`` (400) when it is not JSON."""

    raw = await request.body()
    if not raw.strip():
        if required:
            raise FaultConfigError("bad request body: empty")
        return {}
    try:
        return json.loads(raw)
    except RecursionError:
        raise FaultConfigError("bad request body: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FaultConfigError(f"bad request body: invalid JSON ({exc})") from None


def build_app(registry: Registry, extra: Sequence[Route] = ()) -> Starlette:
    """The API app; every route acts on ``registry``; ``extra`` routes are added."""

    async def version(request: Request) -> Response:
        return PlainTextResponse(TOXIPROXY_VERSION)

    async def list_proxies(request: Request) -> Response:
        return JSONResponse({proxy.name: proxy.to_json() for proxy in registry})

    async def create_proxy(request: Request) -> Response:
        proxy = await registry.create(await body(request))
        return JSONResponse(proxy.to_json(), status_code=201)

    async def populate(request: Request) -> Response:
        proxies = await registry.populate(await body(request))
        return JSONResponse({"proxies": [p.to_json() for p in proxies]}, status_code=201)

    async def reset(request: Request) -> Response:
        await registry.reset()
        return Response(status_code=204)

    async def get_proxy(request: Request) -> Response:
        return JSONResponse(registry.get(request.path_params["proxy"]).to_json())

    async def update_proxy(request: Request) -> Response:
        proxy = await registry.update(request.path_params["proxy"], await body(request))
        return JSONResponse(proxy.to_json())

    async def delete_proxy(request: Request) -> Response:
        await registry.delete(request.path_params["proxy"])
        return Response(status_code=204)

    async def list_toxics(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        return JSONResponse([spec.to_json() for spec in proxy.toxics])

    async def create_toxic(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        spec = ToxicSpec.parse(await body(request))
        proxy.add_toxic(spec)
        return JSONResponse(spec.to_json())

    async def get_toxic(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        return JSONResponse(proxy.toxics.get(request.path_params["toxic"]).to_json())

    async def update_toxic(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        spec = proxy.update_toxic(request.path_params["toxic"], await body(request))
        return JSONResponse(spec.to_json())

    async def delete_toxic(request: Request) -> Response:
        proxy = registry.get(request.path_params["proxy"])
        proxy.remove_toxic(request.path_params["toxic"])
        return Response(status_code=204)

    routes = [
        Route("/version", guarded(version), methods=["GET"]),
        Route("/proxies", guarded(list_proxies), methods=["GET"]),
        Route("/proxies", guarded(create_proxy), methods=["POST"]),
        Route("/populate", guarded(populate), methods=["POST"]),
        Route("/reset", guarded(reset), methods=["POST"]),
        Route("/proxies/{proxy}", guarded(get_proxy), methods=["GET"]),
        Route("/proxies/{proxy}", guarded(update_proxy), methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}", guarded(delete_proxy), methods=["DELETE"]),
        Route("/proxies/{proxy}/toxics", guarded(list_toxics), methods=["GET"]),
        Route("/proxies/{proxy}/toxics", guarded(create_toxic), methods=["POST"]),
        Route("/proxies/{proxy}/toxics/{toxic}", guarded(get_toxic), methods=["GET"]),
        Route("/proxies/{proxy}/toxics/{toxic}", guarded(update_toxic), methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}/toxics/{toxic}", guarded(delete_toxic), methods=["DELETE"]),
        *extra,
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return _error(str(detail).lower(), status)

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
