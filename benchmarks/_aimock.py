"""The fake Messages API against ``@copilotkit/aimock`` (npm), the mock server a user would
otherwise pick: the median ``messages.create`` round trip of the real Python SDK over
loopback, JSON and streamed, alternating calls so machine load hits both alike.

aimock is installed with npm into ``benchmarks/.aimock/`` (git-ignored) on first use; without
``node`` and ``npm`` on PATH (or when the install fails) the rows say so and carry no number.
Both sides answer the same one-message request with the same text; the fake validates it fully
and journals it, as it always does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import anthropic

from benchmarks._figures import Figure, make, note_row
from benchmarks.fake_api import medians_ms
from fake_servers.anthropic import FakeAnthropic, ModelScript

__all__ = ["aimock_figures"]

HOME = Path(__file__).parent / ".aimock"
PACKAGE = "@copilotkit/aimock"
CLI = HOME / "node_modules" / "@copilotkit" / "aimock" / "dist" / "cli.js"
MODEL = "claude-sonnet-4-6"
TEXT = "Hello from the fake Anthropic API."
ROWS = ("fake API vs aimock per call, JSON", "fake API vs aimock per call, streaming")


def _install() -> str | None:
    """Install aimock if needed; the reason it is unavailable, or ``None``."""
    if CLI.is_file():
        return None
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "skipped: node and npm are not on PATH (aimock is an npm package)"
    HOME.mkdir(exist_ok=True)
    command = ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(HOME)]
    try:
        subprocess.run([*command, PACKAGE], check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"skipped: npm could not install {PACKAGE}: {str(exc)[:120]}"
    return None if CLI.is_file() else f"skipped: {PACKAGE} installed without {CLI.name}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"aimock exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("aimock did not listen within 15 s")


async def _measure(
    n: int, port: int, process: subprocess.Popen[bytes]
) -> list[tuple[float, float]]:
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
    await _wait_listening(port, process)
    fake = FakeAnthropic(ModelScript.default())
    rows = []
    async with (
        fake.serve() as url,
        anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as ours,
        anthropic.AsyncAnthropic(
            base_url=f"http://127.0.0.1:{port}", api_key="k", max_retries=0
        ) as theirs,
    ):
        for stream in (False, True):

            def caller(client: anthropic.AsyncAnthropic) -> Callable[[], Awaitable[object]]:
                async def call() -> object:
                    if stream:  # noqa: B023 - the loop variable is read at once
                        async with client.messages.stream(
                            model=MODEL, max_tokens=100, messages=messages
                        ) as events:
                            return await events.get_final_message()
                    return await client.messages.create(
                        model=MODEL, max_tokens=100, messages=messages
                    )

                return call

            rows.append(await medians_ms(caller(theirs), caller(ours), n))
    return rows


def aimock_figures(*, quick: bool = False) -> list[Figure]:
    """Two rows: the fake's median round trip over aimock's, JSON and streaming."""
    reason = _install()
    if reason is not None:
        return [note_row(name, reason) for name in ROWS]
    import tempfile

    with tempfile.TemporaryDirectory(prefix="aimock-") as workdir:
        fixtures = Path(workdir) / "fixtures.json"
        answer = {"match": {"userMessage": "hi"}, "response": {"content": TEXT}}
        fixtures.write_text(json.dumps({"fixtures": [answer]}))
        port = _free_port()
        command = ["node", str(CLI), "-p", str(port), "-f", str(fixtures), "--log-level", "silent"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rows = asyncio.run(_measure(60 if quick else 300, port, process))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return [
        make(name, ours, "ms", baseline=theirs, target="<= 1.0x")
        for name, (theirs, ours) in zip(ROWS, rows, strict=True)
    ]
