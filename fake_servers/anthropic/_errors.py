"""The Messages API error envelope.

Every error the fake answers has the real shape::

    {"type": "error", "error": {"type": "invalid_request_error", "message": "..."},
     "request_id": "req_..."}

plus a ``request-id`` header with the same id.
"""

from __future__ import annotations

import json

__all__ = ["ERROR_TYPES", "ApiError", "error_body"]

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class ApiError(Exception):
    """An error answer: status, error type, message and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "api_error")
        self.headers = headers or {}


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    """The JSON envelope of an error answer."""
    return json.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
    ).encode()
