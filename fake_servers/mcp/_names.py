"""Names of the fake servers, importable without importing ``mcp`` (the CLI checks them)."""

from typing import Final

SERVER_NAMES: Final = ("ssh", "vault", "traffic", "cameras", "chat")
