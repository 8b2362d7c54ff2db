"""Shared test configuration."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet_http_logs() -> None:
    # httpx2 logs every request at INFO through the root logger; keep test output readable.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
