"""Script model of the fake MCP servers: loading, validation messages, per-call selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_servers.mcp import Behaviour, MatchRule, ResultSpec, ServerScript, ToolScript
from fake_servers.mcp._script import Regex
from harness.errors import ScriptError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_script_loads_every_behaviour(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ssh.yaml",
        """
server: ssh
slow_start: 1.5
crash_after_calls: 3
crash_after: {how: sigkill}
tools:
  mem_ssh:
    default: {latency: 0.25, result: {text: "ok"}}
    calls:
      2: {error: {code: -32050, message: "denied"}}
      4: {hang: true}
    match:
      - args: {host: web1, command: {regex: "uptime.*"}}
        then: {stderr_bytes: 1000, result: {text: "up", is_error: true}}
""",
    )
    script = ServerScript.load(path)
    assert script.source == str(path)
    assert script.slow_start == 1.5
    assert script.crash_after.how == "sigkill"
    tool = script.tools["mem_ssh"]
    assert tool.calls[2].error is not None
    assert tool.calls[2].error.code == -32050
    assert tool.calls[4].hang
    assert tool.match[0].then.stderr_bytes == 1000


def test_json_script_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path, "v.json", json.dumps({"tools": {"vault_get": {"default": {"latency": 2}}}})
    )
    assert ServerScript.load(path).tools["vault_get"].default == Behaviour(latency=2)


def test_selection_order_is_index_then_match_then_default() -> None:
    tool = ToolScript(
        default=Behaviour(result=ResultSpec(text="default")),
        calls={2: Behaviour(result=ResultSpec(text="second"))},
        match=[
            MatchRule(
                args={"host": "db1", "command": Regex(regex=r"df( -h)?")},
                then=Behaviour(result=ResultSpec(text="db disk")),
            ),
            MatchRule(args={"host": "db1"}, then=Behaviour(result=ResultSpec(text="db"))),
        ],
    )

    def text(index: int, args: dict[str, object]) -> str | None:
        chosen = tool.select(index, args)
        return chosen.result.text if chosen and chosen.result else None

    assert text(2, {"host": "db1", "command": "df -h"}) == "second"
    assert text(1, {"host": "db1", "command": "df -h"}) == "db disk"
    assert text(1, {"host": "db1", "command": "df -hx"}) == "db"  # fullmatch, not search
    assert text(3, {"host": "web1", "command": "df"}) == "default"
    assert ToolScript().select(1, {}) is None


def test_regex_matches_the_json_form_of_non_string_arguments() -> None:
    rule = MatchRule(args={"limit": Regex(regex="[0-9]+")}, then=Behaviour())
    assert rule.matches({"limit": 50})
    assert not rule.matches({"limit": None})
    assert not rule.matches({})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tools:\n  mem_ssh:\n    default: {latency: -1}\n",
            # The value is not echoed: a script may be any file, secrets included.
            [
                "bad.yaml:3",
                "tool 'mem_ssh'",
                "tools.mem_ssh.default.latency",
                "greater than or equal to 0",
            ],
        ),
        (
            "tools:\n  mem_ssh:\n    calls:\n      1: {hang: true, result: {text: x}}\n",
            ["bad.yaml:4", "tool 'mem_ssh'", "tools.mem_ssh.calls.1", "choose one of hang"],
        ),
        (
            "tools:\n  mem_ssh:\n    default: {sleep: 3}\n",
            ["tool 'mem_ssh'", "tools.mem_ssh.default.sleep", "Extra inputs"],
        ),
        (
            "tools:\n  mem_ssh:\n    calls:\n      0: {hang: true}\n",
            ["tool 'mem_ssh'", "tools.mem_ssh.calls.0"],
        ),
        (
            "tools:\n  mem_ssh:\n    match:\n      - {args: {host: {regex: '('}}, then: {}}\n",
            ["bad.yaml:4", "tools.mem_ssh.match.0.args.host", "not a valid regular expression"],
        ),
        (
            "tools:\n  mem_ssh:\n    default: {result: {}}\n",
            ["tools.mem_ssh.default.result", "a result needs"],
        ),
        ("tools: [1, 2]\n", ["field 'tools'"]),
        ("- just\n- a list\n", ["bad.yaml", "a script must be a mapping"]),
        (
            "tools:\n  mem_ssh: {default: {latency: [}\n",
            ["bad.yaml:2:33: not valid YAML"],
        ),
    ],
)
def test_malformed_scripts_name_file_tool_and_field(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ScriptError) as caught:
        ServerScript.load(path)
    message = str(caught.value)
    for part in expected:
        assert part in message, message
    assert caught.value.exit_code == 2


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{"tools": {\n  "x": }\n}')
    with pytest.raises(ScriptError, match=r"bad\.json:2:8: not valid JSON"):
        ServerScript.load(path)


def test_missing_file_is_a_script_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="cannot read the script"):
        ServerScript.load(tmp_path / "nope.yaml")


def test_empty_file_is_an_empty_script(tmp_path: Path) -> None:
    script = ServerScript.load(write(tmp_path, "empty.yaml", ""))
    assert script.tools == {}
    assert script.slow_start == 0


def test_script_for_a_missing_tool_fails_at_build(tmp_path: Path) -> None:
    from fake_servers.mcp import build_server

    path = write(tmp_path, "s.yaml", "tools:\n  vault_get: {default: {latency: 1}}\n")
    with pytest.raises(ScriptError) as caught:
        build_server("ssh", script=ServerScript.load(path))
    message = str(caught.value)
    assert "s.yaml:2" in message
    assert "field 'tools.vault_get'" in message
    assert "server 'ssh' has no tool 'vault_get'" in message


def test_script_for_another_server_fails_at_build() -> None:
    from fake_servers.mcp import build_server

    with pytest.raises(ScriptError, match="script is for server 'vault', not 'ssh'"):
        build_server("ssh", script=ServerScript(server="vault"))
