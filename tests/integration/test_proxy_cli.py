"""``harness proxy serve`` as a process: banner first, config, events file, clean signals,
bad config as one error line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.integration.test_proxy_helpers import Api, close, connect, echo_server, roundtrip

pytestmark = pytest.mark.integration


async def test_serve_with_config_and_events_then_sigterm(tmp_path: Path) -> None:
    events = tmp_path / "faults.jsonl"
    async with echo_server() as echo:
        config = tmp_path / "proxies.yaml"
        config.write_text(
            f"- name: echo\n  upstream: {echo.address}\n"
            "  toxics:\n    - {type: latency, attributes: {latency: 1}}\n"
        )
        command = [sys.executable, "-m", "harness", "proxy", "serve", "--port", "0"]
        command += ["--config", str(config), "--events", str(events), "--seed", "3"]
        async with await anyio.open_process(command) as process:
            assert process.stdout is not None
            banner = b""
            while not banner.endswith(b"\n"):
                banner += await process.stdout.receive(1)
            assert banner.startswith(b"listening on http://127.0.0.1:")
            api = Api(banner.decode().split()[-1])
            proxies = await api(lambda t: t.proxies())
            reader, writer = await connect(proxies["echo"].listen)
            assert await roundtrip(reader, writer, b"hi") == b"hi"
            await close(writer)
            await api(lambda t: t.get_proxy("echo").destroy_toxic("latency_downstream"))
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert [record["kind"] for record in records] == ["added", "applied", "removed"]
    applied = records[1]
    assert applied["source"] == "fault"
    assert (applied["type"], applied["target"], applied["name"]) == (
        "latency",
        "echo",
        "latency_downstream",
    )
    assert (applied["connection"], applied["trigger"]) == (1, "toxicity")
    assert 0 <= applied["draw"] < 1


def test_bad_config_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "a", "upstream": "127.0.0.1:1", "listen": "1.2.3.4:0"}]))
    result = subprocess.run(
        [sys.executable, "-m", "harness", "proxy", "serve", "--port", "0", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {config}, field 'proxies[0].listen': ")
    assert "loopback only" in result.stderr
    assert "Traceback" not in result.stderr
