"""Benchmark: the fake Messages API against a bare Starlette floor, through the same SDK.

Run ``python -m benchmarks.fake_api``. Measures, side by side in one run, the median
``messages.create`` round trip of the real ``anthropic.AsyncAnthropic`` client against

- the fake (validation, routing, scripted turn, journal, SERVER span with the global provider),
- the floor: a bare Starlette app that reads the body and returns a fixed message,

in-process (``httpx2.ASGITransport``) and on loopback (uvicorn), for a 1-message and a
20-message conversation (tool_use / tool_result pairs, so validation walks every block).
Targets on a small machine: in-process <= 2.5 ms median; fake <= 1.3x the floor for 20 messages.
With node and npm present it also compares the fake with ``@copilotkit/aimock`` over loopback,
JSON and streaming (target <= 1.0x aimock per call; see ``benchmarks/_aimock.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import anyio
import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks._figures import Figure, make
from fake_servers.anthropic import FakeAnthropic, ModelScript
from fake_servers.anthropic._responses import ConnectionRegistry
from fake_servers.anthropic._serve import serve_app

MODEL = "claude-sonnet-4-6"
FIXED = json.dumps(
    {
        "id": "msg_floor",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello from the fake Anthropic API."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 9,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
).encode()


def floor_app() -> Starlette:
    async def messages(request: Request) -> Response:
        await request.body()
        return Response(FIXED, media_type="application/json")

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


def conversation(size: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Check the hosts, please."}]
    index = 0
    while len(messages) < size - 1:
        tool_id = f"toolu_{index:024d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Checking host {index}."},
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": "mem_ssh",
                        "input": {"host": index},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "load 0.3"}],
            }
        )
        index += 1
    while len(messages) < size:
        messages.append({"role": "user", "content": "Summarise."})
    return messages


async def medians_ms(
    floor: Callable[[], Awaitable[object]],
    ours: Callable[[], Awaitable[object]],
    iterations: int,
) -> tuple[float, float]:
    """Median of each call, alternating them so machine load hits both alike."""
    for _ in range(max(10, iterations // 10)):
        await floor()
        await ours()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(iterations):
        for call, out in ((floor, samples[0]), (ours, samples[1])):
            start = time.perf_counter()
            await call()
            out.append(time.perf_counter() - start)
    return statistics.median(samples[0]) * 1000, statistics.median(samples[1]) * 1000


def in_process_client(app: Any) -> anthropic.AsyncAnthropic:
    transport = httpx2.ASGITransport(app=app)
    http = httpx2.AsyncClient(transport=transport, base_url="http://bench")
    return anthropic.AsyncAnthropic(
        api_key="k", base_url="http://bench", http_client=http, max_retries=0
    )


async def measure(iterations: int) -> list[tuple[str, float, float]]:
    rows = []
    for size in (1, 20):
        messages = conversation(size)

        def caller(client: anthropic.AsyncAnthropic) -> Callable[[], Awaitable[object]]:
            return lambda: client.messages.create(
                model=MODEL,
                max_tokens=100,
                messages=messages,  # type: ignore[arg-type]  # noqa: B023
            )

        fake = FakeAnthropic(ModelScript.default())
        async with (
            in_process_client(fake.app) as fake_client,
            in_process_client(floor_app()) as floor_client,
        ):
            floor, ours = await medians_ms(caller(floor_client), caller(fake_client), iterations)
        rows.append((f"in-process, {size} message(s)", floor, ours))

        fake = FakeAnthropic(ModelScript.default())
        registry: ConnectionRegistry = {}
        async with (
            fake.serve() as fake_url,
            serve_app(floor_app(), registry, host="127.0.0.1", port=0) as floor_url,
            anthropic.AsyncAnthropic(api_key="k", base_url=fake_url, max_retries=0) as fc,
            anthropic.AsyncAnthropic(api_key="k", base_url=floor_url, max_retries=0) as lc,
        ):
            floor, ours = await medians_ms(caller(lc), caller(fc), iterations)
        rows.append((f"loopback, {size} message(s)", floor, ours))
    return rows


def figures(*, quick: bool = False) -> list[Figure]:
    """Median round trip of the fake vs the floor, per transport and conversation size."""
    rows = anyio.run(measure, 60 if quick else 300)
    targets = {"in-process, 1 message(s)": "<= 2.5 ms", "in-process, 20 message(s)": "<= 1.3x"}
    from benchmarks._aimock import aimock_figures

    return [
        make(
            f"fake API round trip, {name}",
            ours,
            "ms",
            baseline=floor,
            target=targets.get(name, ""),
        )
        for name, floor, ours in rows
    ] + aimock_figures(quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    rows = anyio.run(measure, args.iterations)
    print(f"{'round trip (median)':<28}{'floor ms':>10}{'fake ms':>10}{'ratio':>8}")
    for name, floor, ours in rows:
        print(f"{name:<28}{floor:>10.3f}{ours:>10.3f}{ours / floor:>8.2f}")
    in_process_20 = next(r for r in rows if r[0] == "in-process, 20 message(s)")
    in_process_1 = next(r for r in rows if r[0] == "in-process, 1 message(s)")
    print(
        f"\nin-process median {in_process_1[2]:.3f} ms (target <= 2.5 ms); "
        f"20-message overhead {100 * (in_process_20[2] / in_process_20[1] - 1):.1f}% "
        "over the floor (target <= 30%)"
    )
    from benchmarks._aimock import aimock_figures

    for row in aimock_figures():
        if row["ratio"] is None:
            print(f"{row['figure']}: {row.get('note', '')}")
        else:
            print(
                f"{row['figure']}: aimock {row['baseline']:.3f} ms, fake {row['value']:.3f} ms, "
                f"{row['ratio']:.2f}x (target <= 1.0x)"
            )


if __name__ == "__main__":
    main()
