"""Run an agent process against the fake API and fake MCP servers, the external-process way.

A stand-in for the rig's live external-process mode, to probe a runtime by hand:

    python -m examples.run_external --api-script S.yaml --server ssh=ssh:ssh.yaml \
        --prompt "check hosts a and b" --out runs/probe -- CMD ARG {mcp_config} {prompt}

It starts ``harness fake-api serve --script S.yaml --journal OUT/journal.jsonl``, writes
``OUT/mcp.json`` in the ``mcpServers`` shape (each server is ``harness fake-mcp KIND --script
SCRIPT --events OUT/events-NAME.jsonl``, behind ``harness interpose --plan PLAN`` when
``--plan NAME=PLAN`` is given), then runs CMD with ``ANTHROPIC_BASE_URL``, ``ANTHROPIC_API_KEY``,
``HARNESS_MCP_CONFIG``, ``HARNESS_PROMPT`` set, the prompt on stdin and ``{mcp_config}`` /
``{prompt}`` replaced in its argv. It records the exit status, stdout (the answer), stderr, a
hang (``--timeout``), server processes still alive after the agent exited (orphans, then ended),
and prints a summary of the API journal and the servers' event logs (``OUT/summary.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from harness.process_tree import with_env
from harness.records import read_records

_TAG = "HARNESS_PROBE_TAG"


def _server_entry(
    name: str, spec: str, out: Path, plan: str | None, tag: str, time_scale: float
) -> dict[str, Any]:
    kind, _, script = spec.partition(":")
    args = ["-m", "harness", "fake-mcp", kind, "--events", str(out / f"events-{name}.jsonl")]
    if script:
        args += ["--script", str(Path(script).resolve())]
    if time_scale != 1.0:
        args += ["--time-scale", str(time_scale)]
    if plan:
        relay = ["-m", "harness", "interpose", "--plan", str(Path(plan).resolve())]
        relay += ["--name", name, "--events", str(out / f"faults-{name}.jsonl"), "--"]
        args = [*relay, sys.executable, *args]
    return {"command": sys.executable, "args": args, "env": {_TAG: tag}}


def journal_line(record: dict[str, Any]) -> str:
    request = record.get("request") or {}
    messages = []
    for message in request.get("messages", []):
        blocks = ",".join(
            block.get("type", "?") + ("!" if block.get("is_error") else "")
            for block in message.get("blocks") or message.get("content") or []
            if isinstance(block, dict)
        )
        messages.append(f"{message.get('role', '?')[0]}[{blocks}]")
    return (
        f"#{record.get('seq')} t={record.get('time', 0):.2f} {record.get('endpoint')} "
        f"agent={record.get('agent')} turn={record.get('turn')} status={record.get('status')} "
        f"verdict={record.get('verdict')!s:.160} msgs={' '.join(messages)}"
    )


def event_line(event: dict[str, Any]) -> str:
    parts = [f"{event.get('kind')}", f"t={event.get('time', 0):.2f}"]
    for key in ("method", "tool", "request_id", "context_id", "duration"):
        if event.get(key) is not None:
            parts.append(f"{key}={event[key]}")
    if event.get("arguments"):
        parts.append(f"args={json.dumps(event['arguments'], sort_keys=True)}")
    if event.get("detail"):
        parts.append(f"detail={json.dumps(event['detail'], sort_keys=True)}")
    return " ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-script", required=True)
    parser.add_argument("--server", action="append", default=[], metavar="NAME=KIND[:SCRIPT]")
    parser.add_argument("--plan", action="append", default=[], metavar="NAME=PLAN")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=120.0, help="hang watchdog (s)")
    parser.add_argument("--server-time-scale", type=float, default=1.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--capture-content", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the agent command after --")

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.jsonl"):
        stale.unlink()
    tag = uuid.uuid4().hex
    plans = dict(item.split("=", 1) for item in args.plan)
    servers = {}
    for item in args.server:
        name, spec = item.split("=", 1)
        servers[name] = _server_entry(name, spec, out, plans.get(name), tag, args.server_time_scale)
    mcp_config = out / "mcp.json"
    mcp_config.write_text(json.dumps({"mcpServers": servers}, indent=2))

    journal = out / "journal.jsonl"
    serve = [sys.executable, "-m", "harness", "fake-api", "serve", "--script", args.api_script]
    serve += ["--journal", str(journal)] + (["--capture-content"] if args.capture_content else [])
    api = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True)
    summary: dict[str, Any] = {}
    try:
        assert api.stdout is not None
        url = api.stdout.readline().strip().removeprefix("listening on ")
        env = dict(os.environ)
        env.update(item.split("=", 1) for item in args.env)
        env |= {
            "ANTHROPIC_BASE_URL": url,
            "ANTHROPIC_API_KEY": "sk-ant-probe",
            "HARNESS_MCP_CONFIG": str(mcp_config),
            "HARNESS_PROMPT": args.prompt,
        }
        argv = [
            part.replace("{mcp_config}", str(mcp_config)).replace("{prompt}", args.prompt)
            for part in command
        ]
        started = time.monotonic()
        agent = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        hung = False
        try:
            stdout, stderr = agent.communicate(args.prompt, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            hung = True
            os.killpg(agent.pid, signal.SIGKILL)
            stdout, stderr = agent.communicate()
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # let servers that are going to exit on stdin EOF do so
        orphans = with_env(_TAG, tag)
        for pid in orphans:
            os.kill(pid, signal.SIGKILL)
    finally:
        api.send_signal(signal.SIGINT)
        api.wait(timeout=15)

    (out / "stdout.txt").write_text(stdout)
    (out / "stderr.txt").write_text(stderr)
    events = {name: read_records(out / f"events-{name}.jsonl") for name in servers}
    faults = {name: read_records(out / f"faults-{name}.jsonl") for name in plans}
    records = read_records(journal)
    summary = {
        "command": argv,
        "exit_status": None if hung else agent.returncode,
        "hung": hung,
        "elapsed_s": round(elapsed, 2),
        "answer": stdout.strip(),
        "stderr_tail": stderr.strip().splitlines()[-15:],
        "orphans": orphans,
        "journal": [journal_line(r) for r in records],
        "events": {name: [event_line(e) for e in evs] for name, evs in events.items()},
        "faults": faults,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"exit status: {summary['exit_status']}  hung: {hung}  elapsed: {elapsed:.1f} s")
    print(f"orphaned server processes: {orphans or 'none'}")
    print("answer:", stdout.strip()[:1500] or "(empty)")
    if stderr.strip():
        print("stderr (tail):")
        for line in summary["stderr_tail"]:
            print("   ", line[:300])
    print("API journal:")
    for line in summary["journal"]:
        print("   ", line)
    for name, lines in summary["events"].items():
        print(f"server {name} events:")
        for line in lines:
            print("   ", line)
    for name, recs in faults.items():
        print(f"interposer {name} faults:")
        for rec in recs:
            print("   ", json.dumps(rec, sort_keys=True)[:300])
    return 0


if __name__ == "__main__":
    sys.exit(main())
