"""The pytest plugin, exercised through ``pytester`` in users' own suites."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness._pytest.keys import worker_id
from harness._pytest.runs import run_root
from harness.scenarios.registry import BUILTIN_DIR
from tests._inner_suite import strict_inner_suite

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _strict_inner_suite(pytester: pytest.Pytester) -> None:
    # The users' suite is as strict as ours: any warning the plugin causes fails it.
    strict_inner_suite(pytester)


def _scenario(pytester: pytest.Pytester, name: str, *, rename: str | None = None) -> Path:
    directory = pytester.path / "scenarios"
    directory.mkdir(exist_ok=True)
    text = (BUILTIN_DIR / f"{name}.yaml").read_text()
    if rename:
        text = text.replace(f"name: {name}\n", f"name: {rename}\n", 1)
    path = directory / f"{rename or name}.yaml"
    path.write_text(text)
    return path


def test_harness_run_returns_outcome_verdicts_spans_and_run_dir(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_cascade(harness_run):
            result = harness_run("cascade", policy="buggy", seed=2)
            assert result.outcome == "reproduced" and result.met
            assert not result.verdicts["no_reconnect_while_in_flight"].holds
            assert result.seed == 2
            reconnects = result.spans.find("harness.mcp.reconnect", **{"harness.mcp.server": "ssh"})
            assert len(reconnects) >= 1
            parent = result.spans.parent(reconnects[0])
            assert parent["name"] == "execute_tool mem_ssh"
            assert reconnects[0] in result.spans.children(parent)
            result.spans.assert_order("invoke_agent main", "execute_tool spawn_subagent")
            assert (result.run_dir / "trace.jsonl").is_file()
            assert result.replay == f"harness replay {result.run_dir}"
            result.assert_expected()
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_failing_test_gets_a_harness_section(pytester: pytest.Pytester) -> None:
    out = pytester.path / "runs"
    pytester.makepyfile(
        """
        def test_expects_the_bug_fixed(harness_run):
            result = harness_run("cascade", policy="buggy")
            assert result.outcome == "held"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-out", str(out))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- harness -*",
            "scenario: cascade  policy: buggy  seed: 0  mode: sim",
            "outcome: reproduced (expected reproduced)",
            "deciding oracle: * (fails)",
            f"run directory: {out}/*test_expects_the_bug_fixed/cascade-buggy-s0-*",
            f"replay: harness replay {out}/*",
            "   or: harness run cascade --policy buggy --seed 0",
        ]
    )
    (run_dir,) = out.glob("*/cascade-buggy-s0-*")
    assert (run_dir / "run.json").is_file()


def test_a_passing_test_has_no_harness_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_ok(harness_run):
            assert harness_run("scope_leak", policy="fixed").outcome == "held"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1)
    assert "- harness -" not in result.stdout.str()


def test_scenario_files_become_one_item_per_policy(pytester: pytest.Pytester) -> None:
    _scenario(pytester, "cascade")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-v",
        "--harness-scenarios",
        "scenarios",
        "--harness-seeds",
        "2",
        "--harness-seed",
        "5",
        "--harness-out",
        str(out),
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*scenarios/cascade.yaml::cascade?buggy? PASSED*", "*cascade.yaml::cascade?fixed? PASSED*"]
    )
    seeds = sorted(re.sub(r".*-s(\d+)-.*", r"\1", p.name) for p in out.glob("*/cascade-*"))
    assert seeds == ["5", "5", "6", "6"]


def test_an_unmet_expectation_fails_the_item_with_the_replay_line(
    pytester: pytest.Pytester,
) -> None:
    path = _scenario(pytester, "scope_leak", rename="scope_leak_misjudged")
    # Expect the bug from an oracle that holds under the buggy policy: never reproduced.
    text = path.read_text().replace(
        "buggy: [scheduled_scope_explicit, review_saw_all_contexts]", "buggy: [agents_completed]"
    )
    path.write_text(text)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--harness-scenarios", "scenarios"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*scope_leak_misjudged (buggy, seed 0, run 1 of this item): expected reproduced, "
            "got unexpected.*",
            "*- harness -*",
            "deciding oracle: agents_completed (holds)",
            "replay: harness replay *scope_leak_misjudged-buggy-s0-*",
            "   or: harness run *scope_leak_misjudged.yaml --policy buggy --seed 0",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_bad_scenario_file_is_a_one_line_collection_error(pytester: pytest.Pytester) -> None:
    directory = pytester.path / "scenarios"
    directory.mkdir()
    (directory / "broken.yaml").write_text("name: broken\nruntime: 7\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--harness-scenarios", "scenarios"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*error: *broken.yaml*"])
    assert "Traceback" not in result.stdout.str()


def test_yaml_outside_the_scenario_dirs_and_runs_without_options_are_untouched(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "config.yaml").write_text("not: a scenario\n")
    pytester.makepyfile("def test_plain():\n    assert True\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--harness-seeds", "0"], "--harness-seeds must be at least 1"),
        (["--harness-scenarios", "missing"], "is not a directory"),
        (["--harness-mode", "warp"], "invalid choice: 'warp'"),
        (["--harness-otlp", "localhost:4318"], "--harness-otlp"),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_fake_anthropic_in_process_and_served_with_span_exporter(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import anyio, requests

        SCRIPT = {"agents": {"a": {"turns": [{"text": "first"}, {"text": "second"}]}}}
        BODY = {"model": "claude-sonnet-4-6", "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}]}

        def test_in_process(fake_anthropic, span_exporter):
            api = fake_anthropic(SCRIPT, seed=3)

            async def ask():
                client = api.async_client(max_retries=0)
                async with client:
                    return await client.messages.create(**BODY)

            message = anyio.run(ask)
            assert message.content[0].text == "first"
            assert len(api.journal.records) == 1
            server = span_exporter.one("POST /v1/messages")
            assert server["kind"] == 2

        def test_served(fake_anthropic):
            api = fake_anthropic(SCRIPT, serve=True)
            assert api.base_url.startswith("http://127.0.0.1:")
            headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
            answer = requests.post(api.base_url + "/v1/messages", json=BODY, headers=headers)
            assert answer.status_code == 200
            assert answer.json()["content"][0]["text"] == "first"
            assert [r.endpoint for r in api.journal.records] == ["/v1/messages"]
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_fake_mcp_in_memory_and_over_http(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import anyio
        import pytest
        from mcp import Client

        SCRIPT = {"tools": {"mem_ssh": {"default": {"result": {"text": "load 0.42"}}}}}

        @pytest.mark.parametrize("transport", ["memory", "http"])
        def test_call(fake_mcp, transport):
            server = fake_mcp("ssh", transport=transport, script=SCRIPT)
            assert (server.url is not None) == (transport == "http")

            async def call():
                mode = {"mode": "legacy"} if transport == "memory" else {}
                async with Client(server.target, **mode) as client:
                    return await client.call_tool(
                        "mem_ssh", {"host": "a", "command": "uptime"}, read_timeout_seconds=10
                    )

            result = anyio.run(call)
            assert result.content[0].text == "load 0.42"
            assert any(e.get("tool") == "mem_ssh" for e in server.events())

        def test_stdio_target(fake_mcp):
            server = fake_mcp("chat", transport="stdio", script=SCRIPT_CHAT)
            assert server.target.args[:2] == ["-m", "fake_servers.mcp.chat"]
            assert "--events" in server.target.args and server.events() == []

        SCRIPT_CHAT = {"tools": {}}

        def test_unknown_transport(fake_mcp):
            from harness.errors import ConfigError
            with pytest.raises(ConfigError, match="unknown transport"):
                fake_mcp("ssh", transport="carrier-pigeon")
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_fault_proxy_applies_toxics_and_is_emptied_after_each_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import requests

        BODY = {"model": "claude-sonnet-4-6", "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}]}
        HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}

        def test_a_through_the_proxy(fault_proxy, fake_anthropic):
            api = fake_anthropic(serve=True)
            upstream = api.base_url.removeprefix("http://")
            listen = fault_proxy.create_proxy("api", upstream=upstream)
            assert requests.post(f"http://{listen}/v1/messages", json=BODY,
                                 headers=HEADERS).status_code == 200
            fault_proxy.add_toxic("api", "latency", latency=5)
            assert fault_proxy.proxies()["api"]["toxics"][0]["type"] == "latency"
            assert requests.post(f"http://{listen}/v1/messages", json=BODY,
                                 headers=HEADERS).status_code == 200
            assert any(r.to_json()["type"] == "latency" for r in fault_proxy.records)
            fault_proxy.set_enabled("api", False)
            assert fault_proxy.proxies()["api"]["enabled"] is False
            assert requests.get(fault_proxy.url + "/version").status_code == 200

        def test_b_starts_empty(fault_proxy):
            assert fault_proxy.proxies() == {}
            assert fault_proxy.records == []
            fault_proxy.create_proxy("api", upstream="127.0.0.1:9")
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_harness_run_refuses_to_run_under_span_exporter(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        from harness.errors import ConfigError

        def test_both(harness_run, span_exporter):
            with pytest.raises(ConfigError, match="result.spans"):
                harness_run("cascade", policy="fixed")
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_xdist_workers_get_their_own_run_directories(tmp_path: Path) -> None:
    config = SimpleNamespace(workerinput={"workerid": "gw1"})
    assert worker_id(config) == "gw1"  # type: ignore[arg-type]
    assert worker_id(object()) is None  # type: ignore[arg-type]
    node = "tests/test_x.py::test_y[cascade-buggy]"
    expected = tmp_path / "gw1" / "tests_test_x.py_test_y_cascade-buggy"
    assert run_root(tmp_path, node, "gw1") == expected
    assert run_root(tmp_path, node, None).parent == tmp_path


def test_the_plugin_is_inert_until_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_nothing_heavy_is_loaded(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("harness")
            heavy = ["opentelemetry.sdk.trace", "harness.telemetry.routing", "mcp",
                     "anthropic", "harness.scenarios", "google.protobuf"]
            assert [m for m in heavy if m in sys.modules] == []
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_readme_example_passes_as_written(pytester: pytest.Pytester) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Gate merges with pytest", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert "harness_run(" in example
    # The example's scenario file is a user's copy of the built-in cascade, beside the test
    # file in the suite's directory; pytest runs from the project's root, as users run it.
    tests = pytester.mkdir("tests")
    (tests / "my_cascade.yaml").write_text((BUILTIN_DIR / "cascade.yaml").read_text())
    (tests / "test_readme.py").write_text(example)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(passed=1)


def test_a_failing_tests_runs_are_kept_where_the_report_says(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_expects_the_bug_fixed(harness_run):
            harness_run("cascade", policy="buggy")
            harness_run("scope_leak", policy="buggy").assert_expected()
            harness_run("orphaned_tool_block", policy="fixed")
            assert False
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    kept = pytester.path / ".harness" / "pytest-runs"
    runs = sorted(p.name.split("-s0-")[0] for p in kept.glob("*/*-s0-*"))
    assert runs == ["cascade-buggy", "orphaned_tool_block-fixed", "scope_leak-buggy"]
    result.stdout.fnmatch_lines([f"replay: harness replay {kept}/*/cascade-buggy-s0-*"])
    for run_dir in kept.glob("*/*-s0-*"):
        assert (run_dir / "run.json").is_file()
        assert (run_dir / "trace.jsonl").is_file()


def test_a_passing_tests_runs_are_not_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_ok(harness_run):
            harness_run("scope_leak", policy="fixed").assert_expected()
        """
    )
    elsewhere = pytester.path / "kept"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--harness-runs-dir", str(elsewhere)
    )
    result.assert_outcomes(passed=1)
    assert not elsewhere.exists()
    assert not (pytester.path / ".harness").exists()
