"""Chat scopes: which context (tab) a chat query reads.

Every agent runs in a context. Calls to a *scoped* server (the chat server) carry the caller's
context in ``params._meta["harness/context_id"]``; a query that omits its ``context_id``
argument is answered by the server for that caller's context: the interactive default.

``inherit`` (the original bug)
    A scheduled task and its subagents query with the caller's default, so the daily blog
    review run in the Blog tab sees only Blog.

``explicit`` (the fix)
    A scheduled task declares its scope (e.g. ``all``); the runtime makes every scoped query of
    that task and its subagents carry it as the ``context_id`` argument, and a query that would
    fall back to an interactive default (no declared scope, no argument) is refused with a clear
    error instead of silently reading the wrong tab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import ConfigError, RuntimeFailure
from harness.telemetry.semconv import META_CONTEXT_ID

__all__ = ["ScopeDecision", "ScopePolicy", "ScopePolicyName"]

ScopePolicyName = Literal["inherit", "explicit"]


class ScopeRefused(RuntimeFailure):
    """A scoped query would fall back to an interactive default under the explicit policy."""


@dataclass(frozen=True, slots=True)
class ScopeDecision:
    arguments: dict[str, Any]
    meta: dict[str, Any]
    effective_scope: str | None


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    """Applies the scope policy to calls on the scoped servers."""

    name: ScopePolicyName = "explicit"
    scoped_servers: frozenset[str] = frozenset({"chat"})
    argument: str = "context_id"

    def __post_init__(self) -> None:
        if self.name not in ("inherit", "explicit"):
            raise ConfigError(
                "unknown scope policy; choose inherit or explicit",
                field="policies.scope",
                value=self.name,
            )

    def apply(
        self,
        *,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        context_id: str,
        declared_scope: str | None,
        automated: bool,
    ) -> ScopeDecision:
        """The arguments and ``_meta`` to send; raises ``ScopeRefused`` when the call must not
        run. ``automated`` is true for scheduled tasks and every subagent they spawn."""
        if server not in self.scoped_servers:
            # Only scoped servers read the caller's context; others get no extra _meta.
            return ScopeDecision(arguments, {}, None)
        meta = {META_CONTEXT_ID: context_id}
        given = arguments.get(self.argument)
        if given is not None or self.name == "inherit" or not automated:
            return ScopeDecision(dict(arguments), meta, str(given) if given else context_id)
        if declared_scope is None:
            raise ScopeRefused(
                f"{tool} on {server!r} has no {self.argument} and this scheduled task declares "
                f"no scope: it would read the interactive default ({context_id!r}). Declare the "
                f"task's scope (e.g. scope: all) or pass {self.argument} explicitly."
            )
        return ScopeDecision({**arguments, self.argument: declared_scope}, meta, declared_scope)
