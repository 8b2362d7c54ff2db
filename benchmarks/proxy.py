"""Proxy benchmark: direct vs through the embedded Toxiproxy-compatible proxy, no toxics.

    python -m benchmarks.proxy [--megabytes 256] [--round-trips 2000] [--repeat 3]

The proxy runs as its own process (``harness proxy serve``), as a real Toxiproxy would; the
client and the upstream server share this process's event loop in both measurements.

1. Throughput: the client sends ``--megabytes`` MiB and half-closes; the server counts the bytes
   and acknowledges. MiB/s.
2. Round trip: 1 KiB request, 1 KiB echo, ``--round-trips`` times after a warm-up; median µs.

Direct and proxied alternate, ``--repeat`` rounds; figures are medians over the rounds and the
ratio the median of the per-round ratios.

Targets: through the proxy >= 0.45x direct throughput, <= 150 µs added median round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from functools import partial

from toxiproxy import Toxiproxy

from benchmarks._alternate import Samples, alternate_async, compared, per_round_ratio
from benchmarks._figures import Figure

CHUNK = 1 << 20
MESSAGE = 1024


async def _sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    total = 0
    while data := await reader.read(CHUNK):
        total += len(data)
    writer.write(f"{total}\n".encode())
    await writer.drain()
    writer.close()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def throughput(port: int, megabytes: int) -> float:
    """MiB/s for sending ``megabytes`` MiB to the sink at ``port``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    block = memoryview(bytes(CHUNK))
    started = time.perf_counter()
    for _ in range(megabytes):
        writer.write(block)
        await writer.drain()
    writer.write_eof()
    ack = await reader.readline()
    elapsed = time.perf_counter() - started
    writer.close()
    await writer.wait_closed()
    if int(ack) != megabytes * CHUNK:
        raise SystemExit(f"sink received {int(ack)} bytes, expected {megabytes * CHUNK}")
    return megabytes / elapsed


async def round_trip(port: int, count: int) -> float:
    """Median seconds for a 1 KiB request/response against the echo server at ``port``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = b"r" * MESSAGE
    samples = []
    for index in range(count + count // 10):
        started = time.perf_counter()
        writer.write(payload)
        await reader.readexactly(MESSAGE)
        if index >= count // 10:  # the first tenth warms up
            samples.append(time.perf_counter() - started)
    writer.close()
    await writer.wait_closed()
    return statistics.median(samples)


def _start_proxy() -> tuple[subprocess.Popen[str], Toxiproxy]:
    command = [sys.executable, "-m", "harness", "proxy", "serve", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().split()[-1]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    api = Toxiproxy()
    api.update_api_consumer(host, int(port))
    return process, api


async def measure(megabytes: int, round_trips: int, repeat: int) -> tuple[Samples, Samples]:
    """MiB/s and round trip seconds, "direct" and "proxied", ``repeat`` alternating rounds."""
    sink = await asyncio.start_server(_sink, "127.0.0.1", 0)
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    sink_port = sink.sockets[0].getsockname()[1]
    echo_port = echo.sockets[0].getsockname()[1]
    process, api = await asyncio.to_thread(_start_proxy)
    try:
        sink_proxy = await asyncio.to_thread(
            api.create, upstream=f"127.0.0.1:{sink_port}", name="sink"
        )
        echo_proxy = await asyncio.to_thread(
            api.create, upstream=f"127.0.0.1:{echo_port}", name="echo"
        )
        via_sink = int(sink_proxy.listen.rsplit(":", 1)[1])
        via_echo = int(echo_proxy.listen.rsplit(":", 1)[1])

        rates = await alternate_async(
            {
                "direct": partial(throughput, sink_port, megabytes),
                "proxied": partial(throughput, via_sink, megabytes),
            },
            repeat,
            warmup=0,
        )
        trips = await alternate_async(
            {
                "direct": partial(round_trip, echo_port, round_trips),
                "proxied": partial(round_trip, via_echo, round_trips),
            },
            repeat,
            warmup=0,
        )
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
        for server in (sink, echo):
            server.close()
            await server.wait_closed()
        # Let the echo handlers see the proxy's connections close before the loop ends.
        await asyncio.sleep(0.1)
    return rates, trips


def figures(*, quick: bool = False) -> list[Figure]:
    """Throughput and 1 KiB round trip through the proxy (its own process) vs direct."""
    megabytes, round_trips, repeat = (32, 300, 2) if quick else (256, 2000, 3)
    rates, trips = asyncio.run(measure(megabytes, round_trips, repeat))
    return [
        compared(
            f"proxy throughput ({megabytes} MiB, no toxics)",
            rates,
            "proxied",
            "direct",
            "MiB/s",
            target=">= 0.45x",
        ),
        compared(
            "proxy round trip (1 KiB, median)",
            trips,
            "proxied",
            "direct",
            "us",
            scale=1e6,
            target="<= +150 us",
        ),
    ]


async def main(megabytes: int, round_trips: int, repeat: int) -> None:
    rates, trips = await measure(megabytes, round_trips, repeat)
    direct_mib, proxied_mib = (statistics.median(rates[side]) for side in ("direct", "proxied"))
    direct_rtt, proxied_rtt = (statistics.median(trips[side]) for side in ("direct", "proxied"))
    ratio = per_round_ratio(rates, "proxied", "direct")
    added_us = (proxied_rtt - direct_rtt) * 1e6
    print(f"throughput ({megabytes} MiB, median of {repeat} alternating rounds)")
    print(f"  direct        {direct_mib:10.1f} MiB/s")
    print(f"  via proxy     {proxied_mib:10.1f} MiB/s")
    print(f"  ratio         {ratio:10.2f}x   (target >= 0.45x)")
    print(f"round trip (1 KiB, median of {round_trips}, median of {repeat} rounds)")
    print(f"  direct        {direct_rtt * 1e6:10.1f} us")
    print(f"  via proxy     {proxied_rtt * 1e6:10.1f} us")
    print(f"  added         {added_us:10.1f} us   (target <= 150 us)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.megabytes, args.round_trips, args.repeat))
