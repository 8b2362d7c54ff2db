#!/usr/bin/env bash
# Create examples/langgraph/.venv with the LangGraph agent's pinned requirements.
# Usage: bash examples/langgraph/setup.sh   (PYTHON=python3.12 to pick another interpreter)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$here/.venv/bin/python" ]; then
    "$python" -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
"$here/.venv/bin/python" -c 'import langgraph, langchain_anthropic, langchain_mcp_adapters, mcp' \
    && echo "ready: $here/.venv/bin/python $here/agent.py"
