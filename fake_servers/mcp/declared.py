"""Fake ``declared`` MCP server: no built-in tools; every tool, its description, input schema
and behaviour is declared in the script (``tools: {NAME: {description, input_schema, ...}}``)."""

from __future__ import annotations

from fake_servers.mcp._base import ServerEnv

__all__ = ["register"]


def register(env: ServerEnv) -> None:
    """Nothing to register: the script's tools are the server's tools."""


if __name__ == "__main__":
    from fake_servers.mcp.cli import run_module

    run_module("declared")
