"""Keeping dependencies from configuring the root logger.

The root logger belongs to the program that embeds the harness (or to the harness's own
command line). The mcp SDK's ``MCPServer`` calls ``logging.basicConfig`` when it is built,
which would give the root logger a handler and a level of its choosing: every ``INFO`` line of
every library (httpx alone writes one per request) would then reach stderr.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["keep_root_logging"]


@contextmanager
def keep_root_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back as they were on leaving."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
