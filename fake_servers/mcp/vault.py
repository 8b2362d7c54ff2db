"""Fake ``vault`` MCP server: ``vault_list()`` and ``vault_get(name)``.

Its values look like real secrets (GitHub and Stripe tokens, API keys, passwords) and are
deterministic per seed, so a test can search traces and logs for the exact value and prove it
never leaked. Only secret names are ever logged.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any, Final

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult

from fake_servers.mcp._base import ServerEnv
from fake_servers.mcp._results import text_result
from harness.chaos_random import ChaosRandom

__all__ = ["PRESET", "SECRET_NAMES", "register", "secret_value"]

_ALNUM = string.ascii_letters + string.digits
_UPPER = string.ascii_uppercase + string.digits
_PASSWORD = _ALNUM + "!#%&*+-=?@^_"


def _draw(rng: ChaosRandom, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


_SECRETS: Final[dict[str, Callable[[ChaosRandom], str]]] = {
    "github_token": lambda r: "ghp_" + _draw(r, _ALNUM, 36),
    "stripe_secret_key": lambda r: "sk_live_" + _draw(r, _ALNUM, 24),
    "llm_api_key": lambda r: "sk-live-" + _draw(r, _ALNUM, 40),
    "aws_access_key_id": lambda r: "AKIA" + _draw(r, _UPPER, 16),
    "aws_secret_access_key": lambda r: _draw(r, _ALNUM + "/+", 40),
    "postgres_password": lambda r: _draw(r, _PASSWORD, 20),
    "homeassistant_token": lambda r: (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        + _draw(r, _ALNUM, 43)
        + "."
        + _draw(r, _ALNUM + "-_", 43)
    ),
}

SECRET_NAMES: Final = tuple(sorted(_SECRETS))


def secret_value(rng: ChaosRandom, name: str) -> str:
    """The value of secret ``name`` for this seed (a stream of its own per name)."""
    return _SECRETS[name](rng.fork(f"vault/{name}"))


PRESET: Final[dict[str, dict[str, Any]]] = {
    "vault_list": {
        "description": "Names of the secrets in the vault (never their values).",
        "input_schema": {"properties": {}, "type": "object", "title": "vault_listArguments"},
    },
    "vault_get": {
        "description": "The value of one secret.",
        "input_schema": {
            "properties": {"name": {"title": "Name", "type": "string"}},
            "required": ["name"],
            "type": "object",
            "title": "vault_getArguments",
        },
    },
}


def _vault_list(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
    listing = {"secrets": list(SECRET_NAMES)}
    return text_result(json.dumps(listing), structured=listing)


def register(env: ServerEnv) -> None:
    def vault_get(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
        name = arguments["name"]
        if name not in _SECRETS:
            raise ToolError(f"no secret named '{name}'")
        secret = {"name": name, "value": secret_value(env.rng, name)}
        return text_result(json.dumps(secret), structured=secret)

    env.preset(PRESET, {"vault_list": _vault_list, "vault_get": vault_get})


if __name__ == "__main__":
    from fake_servers.mcp.cli import run_module

    run_module("vault")
