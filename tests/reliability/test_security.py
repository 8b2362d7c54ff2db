"""Security: every listener binds loopback, runs leave no secret, key or message content in
their artefacts, and a scenario file starts no program it does not declare.

- listeners: the servers started in this process (read from the kernel's socket table and
  from every ``socket.bind`` audit event), ``harness fake-api``, ``harness proxy``, ``harness
  fake-mcp --transport http`` and ``harness interpose --api`` as subprocesses (their sockets read
  from ``/proc/<pid>``), and every non-loopback ``--host`` refused with exit 2;
- artefacts (``run.json`` without the scenario definition it replays, ``trace.jsonl``,
  ``journal.jsonl``, ``events.jsonl``, ``report.html``) of the founding scenarios and of a
  scenario whose agent fetches vault secrets and repeats them, in sim and once live: no vault
  secret, no API key, no prompt or system prompt text; with ``capture_content`` on, still no
  secret;
- commands: the only field of a scenario that names a program is ``servers.<name>.command``;
  sim mode refuses it without starting anything; a live run of a scenario without one starts
  only the built-in fake servers (every ``subprocess.Popen`` audited).

Hostile run directories and files (what an outside attack found, kept out):

- ``harness replay`` of a downloaded run directory whose ``run.json`` names a program starts
  nothing: exit 2 with every command named, unless ``--allow-commands``;
- span names, attributes and ``run.json`` fields holding terminal control sequences (clipboard
  write, window title, clear screen) reach no terminal raw: ``trace show``, ``check``, ``run``
  and every error message show them escaped;
- an error about a file names the file and the problem, never the file's content;
- a command server's ``env`` (where API keys go) is in no artefact, ``run.json`` scanned whole,
  and a replay still gets the values, from the unchanged scenario file.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import HarnessError, ScenarioError
from harness.scenarios import Scenario, load_scenario, resolve, run_scenario, write_run
from harness.scenarios.model import parse_scenario
from harness.scenarios.runner import RunOutcome
from tests.reliability._cli import invoke
from tests.reliability._inputs import CORPUS_DIR, audited, is_loopback, listening_sockets

pytestmark = pytest.mark.integration

VAULT_ECHO = CORPUS_DIR.parent / "secrets" / "vault_echo.yaml"
BUILTIN = Path(__file__).resolve().parents[2] / "harness" / "scenarios" / "builtin"
FOUNDING = ("cascade", "orphaned_tool_block", "scope_leak")
# A real-looking key in the environment: no run may pick it up or write it anywhere.
ENV_API_KEY = "sk-ant-api03-RELIABILITY-SENTINEL-key-never-written"
# The keys the harness hands its own fake API (in process, and on loopback in live mode).
FAKE_API_KEYS = ("sk-ant-fake", "sk-harness-fake")
ARTEFACTS = ("run.json", "trace.jsonl", "journal.jsonl", "events.jsonl", "report.html")


# -- listeners ---------------------------------------------------------------------------------


def _bound_addresses(events: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    return [
        args[1][0]
        for event, args in events
        if event == "socket.bind" and isinstance(args[1], tuple) and isinstance(args[1][0], str)
    ]


async def test_every_listener_started_in_process_binds_loopback() -> None:
    from fake_servers.anthropic import FakeAnthropic, ModelScript
    from fake_servers.mcp import build_server, serve_http
    from harness.faults.proxy import ToxiproxyServer

    with audited() as events:
        toxiproxy = ToxiproxyServer()
        async with (
            FakeAnthropic(ModelScript.default()).serve() as api_url,
            serve_http(build_server("ssh")) as mcp_url,
            toxiproxy as toxiproxy_url,
        ):
            proxy = await toxiproxy.registry.create({"name": "p", "upstream": "127.0.0.1:9"})
            ports = {
                urlsplit(api_url).port,
                urlsplit(mcp_url).port,
                urlsplit(toxiproxy_url).port,
                proxy.listen[1],
            }
            listening = listening_sockets(os.getpid())
    assert ports <= {port for _, port in listening}, (ports, listening)
    assert all(is_loopback(address) for address, _ in listening), listening
    bound = _bound_addresses(events)
    assert len(bound) >= 4, events
    assert set(bound) == {"127.0.0.1"}, bound


async def _first_line(stream: asyncio.StreamReader, prefix: str) -> str:
    while True:
        line = (await stream.readline()).decode()
        assert line, f"the process ended before printing {prefix!r}"
        if line.startswith(prefix):
            return line[len(prefix) :].strip()


@asynccontextmanager
async def _serving(
    args: list[str], *, prefix: str, on_stderr: bool = False
) -> AsyncIterator[tuple[int, str]]:
    """``python -m harness ARGS`` until it prints ``prefix URL``; yields its pid and the URL;
    then SIGTERM (and stdin closed), bounded, and SIGKILL if it does not end."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "harness",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        with anyio.fail_after(40):
            url = await _first_line(proc.stderr if on_stderr else proc.stdout, prefix)
        yield proc.pid, url
    finally:
        with anyio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.terminate()
            if proc.stdin is not None:
                proc.stdin.close()
            with anyio.move_on_after(10):
                await proc.communicate()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


_SSH_SERVER = [sys.executable, "-m", "fake_servers.mcp.ssh"]


async def test_every_listener_of_the_harness_commands_binds_loopback(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps([{"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}])
    )
    commands: dict[str, tuple[list[str], str, bool, int]] = {
        "fake-api": (["fake-api", "serve", "--port", "0"], "listening on ", False, 1),
        "proxy": (
            ["proxy", "serve", "--port", "0", "--config", str(config)],
            "listening on ",
            False,
            2,  # its API and proxy "p"
        ),
        "fake-mcp": (
            ["fake-mcp", "ssh", "--transport", "http", "--port", "0"],
            "listening on ",
            False,
            1,
        ),
        "interpose": (
            [
                "interpose",
                "--api",
                "http://127.0.0.1:0",
                "--",
                sys.executable,
                "-m",
                "fake_servers.mcp.ssh",
            ],
            "control listening on ",
            True,
            1,
        ),
    }
    found: dict[str, list[tuple[str, int]]] = {}

    async def check(name: str) -> None:
        args, prefix, on_stderr, expected = commands[name]
        async with _serving(args, prefix=prefix, on_stderr=on_stderr) as (pid, url):
            listening = listening_sockets(pid)
            found[name] = listening
            assert len(listening) == expected, (name, listening)
            assert urlsplit(url).port in {port for _, port in listening}, (name, url, listening)

    async with anyio.create_task_group() as tg:
        for name in commands:
            tg.start_soon(check, name)
    assert set(found) == set(commands)
    for name, listening in found.items():
        assert all(address == "127.0.0.1" for address, _ in listening), (name, listening)


@pytest.mark.parametrize(
    "args",
    [
        ["fake-api", "serve", "--host", "0.0.0.0"],
        ["fake-api", "serve", "--host", "192.0.2.7"],
        ["fake-mcp", "ssh", "--transport", "http", "--host", "0.0.0.0"],
        ["fake-mcp", "ssh", "--transport", "http", "--host", "::"],
        ["proxy", "serve", "--host", "0.0.0.0", "--port", "0"],
        ["interpose", "--api", "http://0.0.0.0:0", "--", "true"],
    ],
    ids=lambda args: " ".join(args[:2] + args[-2:]),
)
def test_a_non_loopback_address_is_refused_with_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, HarnessError), result.output
    assert result.exception.exit_code == 2
    assert "loopback" in str(result.exception)


# -- secrets, keys and content in the artefacts ------------------------------------------------


def _artefact_texts(run_dir: Path) -> dict[str, str]:
    texts = {name: (run_dir / name).read_text(encoding="utf-8") for name in ARTEFACTS}
    meta = json.loads(texts["run.json"])
    # The scenario as written (prompts, scripted texts) is the replay's input, not a capture.
    meta.pop("scenario_definition")
    texts["run.json"] = json.dumps(meta)
    return texts


def _content(scenario: Scenario) -> list[str]:
    """The conversation text a scenario starts: prompts and system prompts."""
    runtime = scenario.runtime
    texts = [runtime.prompt or ""]
    texts += [agent.system for agent in runtime.agents.values()]
    texts += [task.prompt for task in runtime.scheduled]
    return [t for t in texts if len(t) >= 16]


def _secrets(outcome: RunOutcome) -> list[str]:
    return [s for s in outcome.record.secrets if len(s) >= 8]


def _leaks(run_dir: Path, needles: list[str], *, content: list[str] = ()) -> list[tuple[str, str]]:
    """Where ``needles`` (secrets, keys: in no file, ``run.json`` whole) and ``content`` (the
    conversation: in no file, outside the scenario definition a replay runs) appear."""
    whole = {name: (run_dir / name).read_text(encoding="utf-8") for name in ARTEFACTS}
    captured = _artefact_texts(run_dir)
    return [
        (name, needle[:24])
        for texts, found in ((whole, needles), (captured, content))
        for name, text in texts.items()
        for needle in found
        if needle in text
    ]


def _vault_run(outcome: RunOutcome) -> list[str]:
    """The vault values this run handed out, checked to have passed through it."""
    secrets = _secrets(outcome)
    assert len(secrets) >= 2
    answers = json.dumps(outcome.record.result)
    assert sum(secret in answers for secret in secrets) == 2, "the agent repeated two secrets"
    return secrets


def test_sim_runs_leave_no_secret_key_or_content_in_their_artefacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_API_KEY)
    keys = [ENV_API_KEY, *FAKE_API_KEYS]
    checked = 0
    for name in FOUNDING:
        scenario, _ = resolve(name)
        assert _content(scenario), name
        for policy in ("buggy", "fixed"):
            outcome = run_scenario(scenario, policy=policy, seed=0)
            run_dir = write_run(outcome, scenario, tmp_path)
            leaks = _leaks(run_dir, keys + _secrets(outcome), content=_content(scenario))
            assert leaks == [], (name, policy)
            checked += 1
    vault = load_scenario(VAULT_ECHO)
    outcome = run_scenario(vault, policy="fixed", seed=3)
    secrets = _vault_run(outcome)
    run_dir = write_run(outcome, vault, tmp_path)
    assert _leaks(run_dir, secrets + keys, content=_content(vault)) == []
    assert "[redacted secret]" in _artefact_texts(run_dir)["run.json"]
    assert checked == 2 * len(FOUNDING)


def test_with_content_capture_on_secrets_still_stay_out_of_the_artefacts(tmp_path: Path) -> None:
    text = VAULT_ECHO.read_text(encoding="utf-8").replace(
        "runtime:\n", "runtime:\n  capture_content: true\n", 1
    )
    vault = parse_scenario(text, path=VAULT_ECHO)
    assert vault.runtime.capture_content
    outcome = run_scenario(vault, policy="fixed", seed=3)
    secrets = _vault_run(outcome)
    run_dir = write_run(outcome, vault, tmp_path)
    # Content capture is on: tool arguments are recorded, so content may appear.
    assert "gen_ai.tool.call.arguments" in _artefact_texts(run_dir)["trace.jsonl"]
    assert _leaks(run_dir, secrets) == []


def test_a_live_run_binds_loopback_starts_only_fake_servers_and_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.scenarios.live import run_scenario_live

    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_API_KEY)
    vault = load_scenario(VAULT_ECHO)
    with audited() as events:
        outcome = run_scenario_live(vault, policy="fixed", seed=3)
    assert outcome.record.mode == "live"
    secrets = _vault_run(outcome)
    run_dir = write_run(outcome, vault, tmp_path)
    assert _leaks(run_dir, [*secrets, ENV_API_KEY, *FAKE_API_KEYS], content=_content(vault)) == []
    started = [args for event, args in events if event != "socket.bind"]
    assert started, "the live run starts the vault server"
    for event, args in ((e, a) for e, a in events if e != "socket.bind"):
        assert event == "subprocess.Popen", (event, args)
        executable, argv = args[0], [str(a) for a in args[1]]
        assert executable == sys.executable, argv
        assert argv[1:3] == ["-m", "fake_servers.mcp.vault"], argv
    bound = _bound_addresses(events)
    assert bound, "the live run serves the fake API on loopback"
    assert set(bound) == {"127.0.0.1"}, bound


# -- commands -----------------------------------------------------------------------------------


def _properties(schema: dict[str, Any]) -> dict[str, set[str]]:
    """Property names per model of a JSON schema (the root and every ``$defs`` entry)."""
    models = {"Scenario": schema, **schema.get("$defs", {})}
    return {name: set(model.get("properties", {})) for name, model in models.items()}


def test_only_servers_command_names_a_program() -> None:
    program_words = {"command", "cmd", "exec", "shell", "argv", "program", "executable", "env"}
    holders = {
        (model, prop)
        for model, props in _properties(Scenario.model_json_schema()).items()
        for prop in props & program_words
    }
    # Each is listed by SavedRun.commands(), so replay starts none of them unasked: a server's
    # command and env, the runtime under test's agent process and its env (also per policy).
    assert holders == {
        ("ServerConfig", "command"),
        ("ServerConfig", "env"),
        ("RuntimeSection", "command"),
        ("RuntimeSection", "env"),
        ("PolicyOverrides", "env"),
    }


def test_sim_mode_refuses_a_command_server_without_starting_it(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    text = VAULT_ECHO.read_text(encoding="utf-8").replace(
        "  vault: {fake: vault, timeout: 30}",
        "  vault: {command: "
        + json.dumps([sys.executable, "-c", f"open({str(marker)!r}, 'w')"])
        + "}",
    )
    scenario = parse_scenario(text, path=tmp_path / "declared.yaml")
    assert scenario.servers["vault"].command is not None
    with audited() as events, pytest.raises(ScenarioError, match="sim mode runs the built-in"):
        run_scenario(scenario, policy="fixed")
    assert [e for e, _ in events if e != "socket.bind"] == []
    assert not marker.exists()


# -- hostile run directories and files ------------------------------------------------------------

ESCAPES = ["\x1b]52;c;aGFja2Vk\x07", "\x1b]0;owned\x07", "\x1b[2J"]


def _saved_cascade(root: Path) -> Path:
    scenario, _ = resolve("cascade")
    return write_run(run_scenario(scenario, policy="buggy", seed=0), scenario, root)


def _edit_run_json(run_dir: Path, edit: Any) -> None:
    path = run_dir / "run.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    edit(meta)
    path.write_text(json.dumps(meta), encoding="utf-8")


def test_replay_starts_no_program_a_run_directory_names(tmp_path: Path) -> None:
    run_dir = _saved_cascade(tmp_path / "runs")
    marker = tmp_path / "MARKER"
    command = ["/bin/sh", "-c", f"touch {marker}; exec sleep 1"]

    def hostile(meta: dict[str, Any]) -> None:
        meta["mode"] = "live"
        meta["scenario_definition"]["servers"]["ssh"] = {"command": command}

    _edit_run_json(run_dir, hostile)
    with audited() as events:
        code, output = invoke(["replay", str(run_dir)])
    assert code == 2, output
    assert f"server ssh: /bin/sh -c touch {marker}; exec sleep 1" in output
    assert "--allow-commands" in output
    assert [e for e, _ in events if e != "socket.bind"] == []
    assert not marker.exists()


def test_replay_with_allow_commands_names_each_program_it_starts(tmp_path: Path) -> None:
    run_dir = _saved_cascade(tmp_path / "runs")
    server = [sys.executable, "-m", "fake_servers.mcp.ssh"]

    def live_with_command(meta: dict[str, Any]) -> None:
        meta["mode"] = "live"
        meta["scenario_definition"]["servers"]["ssh"] = {"command": server, "timeout": 150}

    _edit_run_json(run_dir, live_with_command)
    result = CliRunner().invoke(cli, ["replay", str(run_dir), "--allow-commands"])
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"note: replay starts server ssh: {' '.join(server)}" in result.output
    assert "outcome: " in result.output


def _hostile_run(root: Path) -> Path:
    """A saved run whose span names, attributes and run.json sentences hold control sequences."""
    run_dir = _saved_cascade(root)
    trace = (run_dir / "trace.jsonl").read_text(encoding="utf-8")
    data = json.loads(trace)
    for resource in data["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                span["name"] = ESCAPES[0] + span["name"]
                span["attributes"].append(
                    {"key": "note" + ESCAPES[1], "value": {"stringValue": "".join(ESCAPES)}}
                )
    (run_dir / "trace.jsonl").write_text(json.dumps(data) + "\n", encoding="utf-8")

    def sentences(meta: dict[str, Any]) -> None:
        meta["explanation"] = ESCAPES[1] + "explained"
        for verdict in meta["oracles"]:
            verdict["explanation"] = ESCAPES[2] + verdict["explanation"]

    _edit_run_json(run_dir, sentences)
    return run_dir


def _assert_shown_not_obeyed(output: str) -> None:
    assert "\x1b" not in output, repr(output[:300])
    assert "\x07" not in output, repr(output[:300])


def test_control_sequences_in_a_run_reach_no_terminal_raw(tmp_path: Path) -> None:
    run_dir = _hostile_run(tmp_path / "runs")
    code, output = invoke(["trace", "show", str(run_dir), "--width", "160"])
    assert code == 0, output
    _assert_shown_not_obeyed(output)
    assert "\\x1b]52;c;aGFja2Vk\\x07" in output  # shown, escaped
    assert "\\x1b[2J" in output  # the verdicts' sentences
    code, output = invoke(["check", str(run_dir)])
    _assert_shown_not_obeyed(output)
    # The replay's first difference names the span and the attribute that changed.
    code, output = invoke(["replay", str(run_dir)])
    assert code == 1, output
    assert "first difference" in output, output
    _assert_shown_not_obeyed(output)


def _harness_refuses(args: list[str]) -> str:
    """``harness ARGS`` as a user runs it (its own error printing is what is checked): exit 2,
    no control character raw in its output; returns its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    _assert_shown_not_obeyed(proc.stdout + proc.stderr)
    return proc.stderr


def test_control_sequences_in_an_error_message_reach_no_terminal_raw(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.yaml"
    # An unknown field whose name holds control sequences: the error names the field.
    text = VAULT_ECHO.read_text(encoding="utf-8") + '"\\e]0;owned\\a\\e[2J": 1\n'
    hostile.write_text(text, encoding="utf-8")
    stderr = _harness_refuses(["run", str(hostile), "--out", str(tmp_path / "r")])
    assert "Extra inputs are not permitted" in stderr
    assert "field '\\x1b]0;owned\\x07\\x1b[2J'" in stderr
    # A path the command line names, in the usage error that says it does not exist.
    stderr = _harness_refuses(["check", str(tmp_path / "".join(ESCAPES))])
    assert "no such run directory" in stderr


# Files a scenario may name as a script or chat fixture: plain text, and YAML or JSON mappings
# whose values are keys (a CLI tool's credentials file), where a value of the wrong shape or an
# unknown key would be quoted in a validation error.
_PRIVATE_FILES = {
    "passwd": "root:x:0:0:SENTINEL-FILE-CONTENT-3c1d:/root:/bin/bash\n",
    "hosts.yml": "github.com:\n  user: alice\n  oauth_token: gho_SENTINEL-FILE-CONTENT-3c1d\n",
    "keys.yml": "aws_secret_access_key: SENTINEL-FILE-CONTENT-3c1d\n",
    "tools.yml": "tools:\n  fetch:\n    oauth_token: SENTINEL-FILE-CONTENT-3c1d\n",
    "typed.yml": "slow_start: SENTINEL-FILE-CONTENT-3c1d\n",
    "typed.json": '{"tools": {"fetch": "SENTINEL-FILE-CONTENT-3c1d"}}',
    "context.yml": "default_context: SENTINEL-FILE-CONTENT-3c1d\ncontexts: {General: []}\n",
}


@pytest.mark.parametrize("name", sorted(_PRIVATE_FILES))
def test_an_error_about_a_file_never_shows_its_content(name: str, tmp_path: Path) -> None:
    private = tmp_path / "private" / name
    private.parent.mkdir()
    private.write_text(_PRIVATE_FILES[name], encoding="utf-8")
    scenario_dir = tmp_path / "a" / "b"
    scenario_dir.mkdir(parents=True)
    cases = {
        "script": VAULT_ECHO.read_text(encoding="utf-8").replace(
            "  vault: {fake: vault, timeout: 30}",
            f"  vault: {{fake: vault, timeout: 30, script: ../../private/{name}}}",
        ),
        "chat_fixture": (BUILTIN / "scope_leak.yaml")
        .read_text(encoding="utf-8")
        .replace("{fake: chat}", f"{{fake: chat, chat_fixture: ../../private/{name}}}"),
    }
    for key, text in cases.items():
        assert key in text, key
        path = scenario_dir / f"{key}.yaml"
        path.write_text(text, encoding="utf-8")
        code, output = invoke(["run", str(path), "--out", str(tmp_path / "runs")])
        assert code == 2, output
        assert f"private/{name}" in output, output
        assert "SENTINEL" not in output, output
        assert "root:x" not in output, output


def _env_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "env_server.yaml"
    text = VAULT_ECHO.read_text(encoding="utf-8").replace(
        "  vault: {fake: vault, timeout: 30}",
        "  vault:\n"
        f"    command: {json.dumps([sys.executable, '-m', 'fake_servers.mcp.vault'])}\n"
        "    timeout: 30\n"
        f"    env: {{ANTHROPIC_API_KEY: {ENV_API_KEY}, TOKEN: SENTINEL-ENV-VALUE-88e1}}",
    )
    path.write_text(text, encoding="utf-8")
    return path


def test_a_command_servers_env_is_in_no_artefact_and_replay_still_gets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.scenarios.live import run_scenario_live
    from harness.scenarios.saved import load_saved_run

    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_API_KEY)
    path = _env_scenario(tmp_path)
    scenario = load_scenario(path)
    outcome = run_scenario_live(scenario, policy="fixed", seed=3, source=str(path))
    run_dir = write_run(outcome, scenario, tmp_path / "runs")
    assert _leaks(run_dir, [ENV_API_KEY, "SENTINEL-ENV-VALUE-88e1"]) == []
    # The replay's scenario is the file's, values and all, while the file is unchanged.
    replayed = load_saved_run(run_dir).scenario
    assert replayed.servers["vault"].env == scenario.servers["vault"].env
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    path.write_text(
        path.read_text(encoding="utf-8").replace("timeout: 30\n", "timeout: 31\n", 1),
        encoding="utf-8",
    )
    with pytest.raises(HarnessError, match="changed since the run"):
        load_saved_run(run_dir)
