"""Heisenharness: reproduce agent-runtime concurrency heisenbugs on demand, and see why."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
