"""One event loop in a background thread for the servers fixtures start (fault proxy, loopback
fake API, fake MCP over HTTP), so they serve sync and async tests alike and outlive no test
session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, ExitStack
from typing import Any, TypeVar

__all__ = ["Background"]

T = TypeVar("T")


class Background:
    """Starts its thread on first use; ``close()`` leaves every context entered through it
    (in reverse order) and stops the thread."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._portal: Any = None

    def _started(self) -> Any:
        if self._portal is None:
            from anyio.from_thread import start_blocking_portal

            self._portal = self._stack.enter_context(start_blocking_portal())
        return self._portal

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``fn(*args)`` on the background loop and return its result."""
        result: T = self._started().call(fn, *args)
        return result

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the background loop's thread (where its objects live)."""
        result: T = self._started().call(fn, *args)
        return result

    def enter(self, cm: AbstractAsyncContextManager[T]) -> tuple[T, Callable[[], None]]:
        """Enter ``cm`` on the background loop; returns its value and a function that exits
        it (call it at most once)."""
        portal = self._started()
        stack = ExitStack()
        value: T = stack.enter_context(portal.wrap_async_context_manager(cm))
        return value, stack.close

    def close(self) -> None:
        self._stack.close()
        self._portal = None
