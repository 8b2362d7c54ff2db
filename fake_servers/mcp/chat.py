"""Fake ``chat`` MCP server: the assistant's chat history, a stateful store of contexts (tabs
such as General, Blog, Dahlia) seeded from a fixture file.

``chat_list_messages(context_id=None, since=None, limit=100, scope=None)`` resolves its scope
like the interactive app does: an explicit ``context_id`` wins; ``"all"`` means every context;
when it is omitted the **caller's** context is used, read from the request's
``params._meta["harness/context_id"]``; when the caller sent none either, the app's default
tab (the fixture's ``default_context``, "General") is used. That implicit default is the trap of
the scope-leak scenario, so it is kept faithful. ``scope`` widens the query from that context
(``thread``, the default) to every context of its *resource* (``resource``: the fixture's
``resources`` group contexts by user, channel or workspace; a context in none is a resource of
its own) or to ``all``. Every returned message names its context and the result says how the
scope was chosen (``scope``: argument | caller | default | all | resource).

``chat_search(query, context_id=None, scope=None, limit=20)`` is a recall tool over the same
scopes: the messages whose text contains ``query`` (case-insensitive), with their count
(``hits``). ``chat_post_message(text, context_id=None)`` stores a message, by default in the
caller's context (a memory written where its writer runs).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fake_servers.mcp._base import ServerEnv
from fake_servers.mcp._results import text_result
from harness._files import read_text
from harness._yaml import LocatedError, parse_yaml, validation_error
from harness.clock import Clock
from harness.errors import ConfigError

__all__ = ["ALL_CONTEXTS", "DEFAULT_FIXTURE", "PRESET", "ChatFixture", "ChatStore", "register"]

ALL_CONTEXTS = "all"
DEFAULT_FIXTURE = Path(__file__).parent / "fixtures" / "chat.yaml"


class _FixtureMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime
    author: str
    text: str


class ChatFixture(BaseModel):
    """A chat history: ``default_context`` and ``contexts`` (name -> messages), from a file or
    inline in a scenario (``chat_fixture: {contexts: ...}``)."""

    model_config = ConfigDict(extra="forbid")

    default_context: str = "General"
    contexts: dict[str, list[_FixtureMessage]] = Field(min_length=1)
    # Groups of contexts (a user's threads, a channel's threads, a workspace): the resource scope.
    resources: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_contexts(self) -> ChatFixture:
        if self.default_context not in self.contexts:
            # The value is not quoted: the file may be any file (the field says where).
            raise LocatedError(
                "default_context is not one of the contexts", loc=("default_context",)
            )
        seen: set[str] = set()
        for resource, members in self.resources.items():
            for index, member in enumerate(members):
                if member not in self.contexts or member in seen:
                    why = "is not one of the contexts" if member not in seen else "is listed twice"
                    raise LocatedError(
                        f"resource context {member!r} {why}", loc=("resources", resource, index)
                    )
                seen.add(member)
        return self

    @classmethod
    def load(cls, path: str | Path) -> ChatFixture:
        return _checked_fixture(read_text(path, what="chat fixture"), path)


# Every run builds its chat server from the fixture file: parsed and checked once per text (the
# store reads the fixture, never changes it).
@functools.lru_cache(maxsize=16)
def _checked_fixture(text: str, path: str | Path) -> ChatFixture:
    data = parse_yaml(text, path=path, error=ConfigError)
    try:
        return ChatFixture.model_validate(data)
    except ValidationError as exc:
        # Values unquoted: the path may name any file.
        raise validation_error(
            exc, text=text, path=path, error=ConfigError, data=data, quote=False
        ) from None


class ChatStore:
    """The messages of every context; new posts are stamped after the fixture's last message,
    advanced by the server's clock."""

    def __init__(self, fixture: ChatFixture, *, clock: Clock) -> None:
        self.default_context = fixture.default_context
        self._resources = {c: members for members in fixture.resources.values() for c in members}
        self._clock = clock
        self._messages: dict[str, list[dict[str, Any]]] = {}
        latest = datetime.min
        counter = 0
        for context, messages in fixture.contexts.items():
            self._messages[context] = []
            for message in sorted(messages, key=lambda m: m.at):
                counter += 1
                self._messages[context].append(_message(counter, context, message.at, message))
                latest = max(latest, message.at.replace(tzinfo=None))
        self._epoch = latest
        self._counter = counter

    @property
    def contexts(self) -> list[str]:
        return sorted(self._messages)

    def resource_of(self, context: str) -> list[str]:
        """The contexts that share ``context``'s resource (itself alone when in none)."""
        return sorted(self._resources.get(context, [context]))

    def list(
        self, context: str | list[str], *, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        if isinstance(context, list) or context == ALL_CONTEXTS:
            chosen = self._messages if context == ALL_CONTEXTS else context
            pool = [m for name in chosen for m in self._messages[name]]
            pool.sort(key=lambda m: (m["at"], m["id"]))
        else:
            pool = list(self._messages[context])
        if since is not None:
            pool = [m for m in pool if _parse(m["at"]) > since]
        return pool[-limit:] if limit else []

    def post(self, context: str, text: str, *, author: str) -> dict[str, Any]:
        self._counter += 1
        at = self._epoch + timedelta(seconds=self._clock.now())
        message = {
            "id": f"m{self._counter:04d}",
            "context_id": context,
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "author": author,
            "text": text,
        }
        self._messages[context].append(message)
        return message


def _message(number: int, context: str, at: datetime, message: _FixtureMessage) -> dict[str, Any]:
    return {
        "id": f"m{number:04d}",
        "context_id": context,
        "at": at.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "author": message.author,
        "text": message.text,
    }


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=None)


_SCOPES = ("thread", "resource", ALL_CONTEXTS)


_OPTIONAL_STRING: Final = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}

PRESET: Final[dict[str, dict[str, Any]]] = {
    "chat_list_messages": {
        "description": "Messages of a chat context (tab), oldest first. Without ``context_id`` "
        'the caller\'s\nown context is used; ``"all"`` lists every context. ``scope``: thread '
        "(that context,\nthe default), resource (every context of its resource) or all. "
        "``since`` is an ISO 8601\ntime.",
        "input_schema": {
            "properties": {
                "context_id": {**_OPTIONAL_STRING, "title": "Context Id"},
                "since": {**_OPTIONAL_STRING, "title": "Since"},
                "limit": {"default": 100, "title": "Limit", "type": "integer"},
                "scope": {**_OPTIONAL_STRING, "title": "Scope"},
            },
            "type": "object",
            "title": "chat_list_messagesArguments",
        },
    },
    "chat_search": {
        "description": "Recall: messages whose text contains ``query`` (case-insensitive), "
        "newest last.\nWithout ``context_id`` the caller's own context is searched; ``scope``: "
        "thread (that\ncontext, the default), resource (every context of its resource) or all.",
        "input_schema": {
            "properties": {
                "query": {"title": "Query", "type": "string"},
                "context_id": {**_OPTIONAL_STRING, "title": "Context Id"},
                "scope": {**_OPTIONAL_STRING, "title": "Scope"},
                "limit": {"default": 20, "title": "Limit", "type": "integer"},
            },
            "required": ["query"],
            "type": "object",
            "title": "chat_searchArguments",
        },
    },
    "chat_post_message": {
        "description": "Post a message (as the assistant) to a chat context; without "
        "``context_id``, to the\ncaller's own context.",
        "input_schema": {
            "properties": {
                "text": {"title": "Text", "type": "string"},
                "context_id": {**_OPTIONAL_STRING, "title": "Context Id"},
            },
            "required": ["text"],
            "type": "object",
            "title": "chat_post_messageArguments",
        },
    },
}


def register(env: ServerEnv) -> None:
    fixture = env.chat_fixture
    if not isinstance(fixture, ChatFixture):
        fixture = ChatFixture.load(fixture or DEFAULT_FIXTURE)
    store = ChatStore(fixture, clock=env.clock)

    def check_context(context: str) -> None:
        if context not in store.contexts:
            raise ToolError(f"unknown context '{context}' (contexts: {', '.join(store.contexts)})")

    def resolve(caller: str | None, context_id: str | None, scope: str | None) -> dict[str, Any]:
        """Where a query reads: its anchor context, how it was chosen and the contexts read."""
        if context_id is not None:
            context, how = context_id, "argument"
        elif caller:
            context, how = caller, "caller"
        else:
            context, how = store.default_context, "default"
        if scope is not None and scope not in _SCOPES:
            raise ToolError(f"unknown scope '{scope}' (scopes: {', '.join(_SCOPES)})")
        if context == ALL_CONTEXTS or scope == ALL_CONTEXTS:
            return {"context_id": context, "scope": ALL_CONTEXTS, "read": ALL_CONTEXTS}
        check_context(context)
        if scope == "resource":
            return {"context_id": context, "scope": "resource", "read": store.resource_of(context)}
        return {"context_id": context, "scope": how, "read": context}

    def chat_list_messages(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
        where = resolve(caller, arguments.get("context_id"), arguments.get("scope"))
        limit = arguments.get("limit", 100)
        if limit < 0:
            raise ToolError(f"limit must be >= 0 (got {limit})")
        since = arguments.get("since")
        try:
            after = _parse(since) if since is not None else None
        except ValueError:
            raise ToolError(f"since is not an ISO 8601 time: '{since}'") from None
        messages = store.list(where["read"], since=after, limit=limit)
        listing = {"context_id": where["context_id"], "scope": where["scope"]}
        if isinstance(where["read"], list):
            listing["contexts"] = where["read"]
        listing["messages"] = messages
        return text_result(json.dumps(listing), structured=listing)

    def chat_search(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
        where = resolve(caller, arguments.get("context_id"), arguments.get("scope"))
        limit = arguments.get("limit", 20)
        if limit < 0:
            raise ToolError(f"limit must be >= 0 (got {limit})")
        query = arguments["query"]
        needle = query.casefold()
        found = [
            m
            for m in store.list(where["read"], since=None, limit=0x7FFFFFFF)
            if needle in m["text"].casefold()
        ]
        hits = found[-limit:] if limit else []
        result = {"query": query, "context_id": where["context_id"], "scope": where["scope"]}
        if isinstance(where["read"], list):
            result["contexts"] = where["read"]
        result |= {"hits": len(hits), "messages": hits}
        return text_result(json.dumps(result), structured=result)

    def chat_post_message(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
        where = resolve(caller, arguments.get("context_id"), None)
        check_context(where["context_id"])  # one context: not "all"
        message = store.post(where["context_id"], arguments["text"], author="assistant")
        return text_result(json.dumps(message), structured=message)

    env.preset(
        PRESET,
        {
            "chat_list_messages": chat_list_messages,
            "chat_search": chat_search,
            "chat_post_message": chat_post_message,
        },
    )


if __name__ == "__main__":
    from fake_servers.mcp.cli import run_module

    run_module("chat")
