"""Building a fake MCP server leaves the root logger as the embedding program set it."""

from __future__ import annotations

import logging

import pytest

from fake_servers.mcp import build_server
from harness.logging_guard import keep_root_logging


def test_building_a_fake_server_does_not_configure_the_root_logger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in a program that has not configured logging (pytest gives the root its handlers).
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    build_server("ssh")
    assert root.handlers == []
    assert root.level == logging.WARNING


def test_keep_root_logging_undoes_basic_config() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with keep_root_logging():
        # What MCPServer does when it is built (force: pytest's own handlers are there).
        logging.basicConfig(level=logging.DEBUG, handlers=[logging.NullHandler()], force=True)
        assert root.level == logging.DEBUG
    assert root.handlers == handlers
    assert root.level == level
