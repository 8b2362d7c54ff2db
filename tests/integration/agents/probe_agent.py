"""An agent process that shows what the harness handed it (stdlib only: it starts fast).

By ``HARNESS_TASK``: ``main`` prints its argv, stdin, environment and MCP config as JSON and
exits 0; ``crash`` writes to stderr, prints bytes that are not UTF-8 and exits 3; ``hang``
starts a process that looks like one of its MCP servers (that server entry's environment),
in a session of its own so only the run's tag finds it, prints its pid, and never ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

task = os.environ.get("HARNESS_TASK")
stdin = sys.stdin.read()
with open(os.environ["HARNESS_MCP_CONFIG"], encoding="utf-8") as file:
    servers = json.load(file)["mcpServers"]
if task == "main":
    names = [
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "HARNESS_PROMPT",
        "HARNESS_AGENT",
        "HARNESS_TASK",
        "HARNESS_CONTEXT_ID",
        "HARNESS_SCOPE",
        "PROBE_KNOB",
    ]
    shown = {name: os.environ.get(name) for name in names}
    entries = {name: sorted(entry) for name, entry in servers.items()}
    print(json.dumps({"argv": sys.argv[1:], "stdin": stdin, "env": shown, "servers": entries}))
elif task == "crash":
    print("loading the model", file=sys.stderr)
    print("boom: the tool loop broke", file=sys.stderr)
    sys.stdout.buffer.write(b"half an answer \xff\xfe\n")
    sys.exit(3)
else:
    env = {**os.environ, **servers["ssh"]["env"]}
    child = subprocess.Popen(["sleep", "120"], env=env, start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(600)
