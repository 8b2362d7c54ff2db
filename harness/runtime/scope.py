"""Query scopes: which contexts (tabs, threads) a query to a scoped server reads.

Every agent runs in a context. Calls to a *scoped* server (the chat server, or any server with
``scoped: true``) carry the caller's context in ``params._meta["harness/context_id"]``; a query
that names no scope is answered by the server for that caller's context: the interactive
default. The ``default_query_scope`` knob decides what the runtime does with such a query:

``thread`` (the founding scope_leak bug for scheduled tasks; getsentry/junior #652 where memory
is shared per channel)
    The query goes as the model wrote it: the server reads the caller's own context, so the
    daily blog review run in the Blog tab sees only Blog.

``resource`` (mastra #15426, anything-llm #1349)
    A query whose tool takes a ``scope`` argument is sent with ``scope: resource``: the server
    reads every context of the caller's resource (a user, a channel, a workspace: the server's
    grouping), so every user mapped to one default resource reads the others' threads.

``declared`` (the fix for scheduled tasks)
    A scheduled task declares its scope (e.g. ``all``); the runtime makes every scoped query of
    that task and its subagents carry it as the ``context_id`` argument, and a query that would
    fall back to an interactive default (no declared scope, no argument) is refused with a clear
    error instead of silently reading the wrong tab. Interactive queries read the caller's
    context.

A query that names its ``context_id`` or ``scope`` itself is always sent as written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import ConfigError, RuntimeFailure
from harness.telemetry.semconv import META_CONTEXT_ID

__all__ = ["DefaultQueryScope", "ScopeDecision", "ScopePolicy"]

DefaultQueryScope = Literal["thread", "resource", "declared"]
_NAMES = ("thread", "resource", "declared")
# The scope argument's value that asks for every context of the caller's resource.
RESOURCE = "resource"


class ScopeRefused(RuntimeFailure):
    """A scoped query would fall back to an interactive default under the declared policy."""


@dataclass(frozen=True, slots=True)
class ScopeDecision:
    arguments: dict[str, Any]
    meta: dict[str, Any]
    effective_scope: str | None


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    """Applies the default query scope to calls on the scoped servers."""

    name: DefaultQueryScope = "declared"
    scoped_servers: frozenset[str] = frozenset({"chat"})
    argument: str = "context_id"
    scope_argument: str = "scope"

    def __post_init__(self) -> None:
        if self.name not in _NAMES:
            raise ConfigError(
                f"unknown default query scope; choose {', '.join(_NAMES)}",
                field="policies.default_query_scope",
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
        accepts: Collection[str] = (),
    ) -> ScopeDecision:
        """The arguments and ``_meta`` to send; raises ``ScopeRefused`` when the call must not
        run. ``automated`` is true for scheduled tasks and every subagent they spawn;
        ``accepts`` names the tool's input properties (a scope is only added where it fits)."""
        if server not in self.scoped_servers:
            # Only scoped servers read the caller's context; others get no extra _meta.
            return ScopeDecision(arguments, {}, None)
        meta = {META_CONTEXT_ID: context_id}
        given = arguments.get(self.argument)
        if given is not None:
            return ScopeDecision(dict(arguments), meta, str(given) if given else context_id)
        if arguments.get(self.scope_argument) is not None:
            return ScopeDecision(dict(arguments), meta, str(arguments[self.scope_argument]))
        if self.name == "resource" and self.scope_argument in accepts:
            return ScopeDecision({**arguments, self.scope_argument: RESOURCE}, meta, RESOURCE)
        if self.name != "declared" or not automated:
            return ScopeDecision(dict(arguments), meta, context_id)
        if declared_scope is None:
            raise ScopeRefused(
                f"{tool} on {server!r} has no {self.argument} and this scheduled task declares "
                f"no scope: it would read the interactive default ({context_id!r}). Declare the "
                f"task's scope (e.g. scope: all) or pass {self.argument} explicitly."
            )
        return ScopeDecision({**arguments, self.argument: declared_scope}, meta, declared_scope)
