"""Small runtimes under test for the rig's tests (``tests.scenarios._runtimes:NAME``)."""

from __future__ import annotations

import time
from typing import Any

import anyio
from mcp import Client

from harness.adapter import RuntimeContext, Task


class ChatReader:
    """Lists the chat's messages once per task: with the task's declared scope when
    ``options.declared_scope``, else without a context (the scope leak)."""

    def __init__(self, ctx: RuntimeContext) -> None:
        self.ctx = ctx

    async def run(self, task: Task) -> str:
        arguments: dict[str, Any] = {}
        if self.ctx.options.get("declared_scope") and task.scope:
            arguments["context_id"] = task.scope
        async with Client(self.ctx.servers["chat"].transport_target()) as chat:
            result = await chat.call_tool("chat_list_messages", arguments)
        return "".join(getattr(block, "text", "") for block in result.content)

    async def aclose(self) -> None:
        pass


async def chat_reader(ctx: RuntimeContext) -> ChatReader:
    return ChatReader(ctx)


async def refusing(ctx: RuntimeContext) -> ChatReader:
    raise ValueError("no API key configured")


class Crashing(ChatReader):
    async def run(self, task: Task) -> str:
        raise RuntimeError(f"cannot handle {task.name}")


async def crashing(ctx: RuntimeContext) -> Crashing:
    return Crashing(ctx)


class Threaded(ChatReader):
    async def run(self, task: Task) -> str:
        await anyio.to_thread.run_sync(time.sleep, 0.01)
        return "slept in a worker thread"


async def threaded(ctx: RuntimeContext) -> Threaded:
    return Threaded(ctx)
