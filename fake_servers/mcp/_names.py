"""Names of the fake servers, importable without importing ``mcp`` (the CLI checks them)."""

from typing import Final

# The server with no built-in tools: every tool is declared in its script.
DECLARED: Final = "declared"
SERVER_NAMES: Final = ("ssh", "vault", "traffic", "cameras", "chat", DECLARED)
