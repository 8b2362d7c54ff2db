"""Heisenharness for pytest: fixtures, options and failure reports for regression suites.

Registered through the ``pytest11`` entry point, so installing the package enables it.

Fixtures:

- ``harness_run(name_or_path, *, policy, seed=None, mode=None) -> HarnessResult`` runs a
  built-in scenario or a scenario file (seed and mode default to ``--harness-seed`` /
  ``--harness-mode``) and writes its run directory; the result has ``outcome``, ``expected``,
  ``met``, ``verdicts`` (by oracle name), ``deciding``, ``spans`` (a ``SpanQuery``),
  ``run_dir``, ``replay`` and ``assert_expected()``.
- ``fake_anthropic(script=None, *, seed=0, serve=False) -> FakeAPI``: the fake Messages API
  (``base_url``, ``journal``, ``async_client()``, ``inject()``), in-process or on loopback.
- ``fake_mcp(name, *, transport="memory", script=None, seed=0) -> FakeMCP``: a fake MCP server
  in memory, over streamable HTTP or as a stdio subprocess; ``target`` goes to ``mcp.Client``.
- ``fault_proxy``: the embedded Toxiproxy-compatible proxy (``url``, ``create_proxy``,
  ``add_toxic``, ``set_enabled``, ``records``), emptied after each test.
- ``span_exporter``: this test's spans (every tracer in the process) with ``find(name,
  **attrs)``, ``one``, ``children(span)``, ``parent``, ``assert_order(*names)``.

Options: ``--harness-scenarios DIR`` collects scenario files as items (one per scenario and
policy), ``--harness-seed N``, ``--harness-seeds N`` (each item over N seeds),
``--harness-mode sim|live``, ``--harness-otlp URL`` (send every run to a collector),
``--harness-out DIR`` (run directories; default under pytest's base temp directory),
``--harness-runs-dir DIR`` (where a failing test's run directories are kept; default
``.harness/pytest-runs`` under the rootdir).

A failing test that ran scenarios gets a ``harness`` report section: seed, deciding oracle and
its evidence, the kept run directory and the one-line replay command.

Nothing heavy is imported, and no tracer provider is installed, until a test uses a fixture or
a scenario item runs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness._pytest.keys import RUNS_KEY, SETTINGS_KEY, worker_id
from harness.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from harness._pytest.background import Background
    from harness._pytest.runs import HarnessResult, RunSettings
    from harness._pytest.servers import FakeAPI, FakeMCP, FaultProxy
    from harness._pytest.spans import SpanQuery

__all__ = [
    "fake_anthropic",
    "fake_mcp",
    "fault_proxy",
    "harness_run",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_unconfigure",
    "span_exporter",
]

_SCENARIO_SUFFIXES = (".yaml", ".yml")
_OTLP_FLAGS = ("--harness-otlp", "OTEL_EXPORTER_OTLP_PROTOCOL")
_EXPORTER_KEY = pytest.StashKey[list["SpanExporter"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "Heisenharness scenarios")
    group.addoption(
        "--harness-scenarios",
        action="append",
        default=[],
        metavar="DIR",
        help="Collect the scenario files (*.yaml) under DIR as test items (repeatable).",
    )
    group.addoption(
        "--harness-seed",
        type=int,
        default=0,
        metavar="N",
        help="Seed of scenario items and of harness_run (default 0).",
    )
    group.addoption(
        "--harness-seeds",
        type=int,
        default=1,
        metavar="N",
        help="Run each scenario item over N seeds, from --harness-seed (default 1).",
    )
    group.addoption(
        "--harness-mode",
        choices=("sim", "live"),
        default="sim",
        help="sim: one process, virtual time (default). live: subprocesses, sockets.",
    )
    group.addoption(
        "--harness-otlp",
        default=None,
        metavar="URL",
        help="Send every run's trace to this OTLP collector "
        "(protocol from OTEL_EXPORTER_OTLP_PROTOCOL, default http/protobuf).",
    )
    group.addoption(
        "--harness-out",
        default=None,
        metavar="DIR",
        help="Write every run directory under DIR (default: <pytest basetemp>/harness-runs, "
        "which pytest deletes after a few sessions).",
    )
    group.addoption(
        "--harness-runs-dir",
        default=None,
        metavar="DIR",
        help="Keep the run directories of failing tests under DIR, where the report's replay "
        "line points (default: <rootdir>/.harness/pytest-runs; with --harness-out, there).",
    )


def _scenario_dirs(config: pytest.Config) -> list[Path]:
    return [Path(d).resolve() for d in config.getoption("harness_scenarios")]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "harness_scenario: a scenario file collected by --harness-scenarios"
    )
    if config.getoption("harness_seeds") < 1:
        raise pytest.UsageError("--harness-seeds must be at least 1")
    if config.getoption("harness_seed") < 0:
        raise pytest.UsageError("--harness-seed must be 0 or more")
    for directory in _scenario_dirs(config):
        if not directory.is_dir():
            raise pytest.UsageError(f"--harness-scenarios: {directory} is not a directory")
        # Collect the directory even when it is outside the paths pytest was asked to walk.
        given = [Path(arg.split("::")[0]).resolve() for arg in config.args]
        if not any(directory == g or g in directory.parents for g in given):
            config.args.append(str(directory))
    if config.getoption("harness_otlp"):
        from harness.errors import ConfigError
        from harness.telemetry.export import resolve_settings

        try:
            resolve_settings(config.getoption("harness_otlp"), None, flags=_OTLP_FLAGS)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = _settings(config)


def _settings(config: pytest.Config) -> RunSettings:
    from harness._pytest.runs import RunSettings

    out = config.getoption("harness_out")
    kept = config.getoption("harness_runs_dir")
    exporters: list[SpanExporter] = []
    config.stash[_EXPORTER_KEY] = exporters

    def out_dir() -> Path:
        if out:
            return Path(out).resolve()
        factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
        return factory.getbasetemp() / "harness-runs"

    def kept_dir() -> Path | None:
        if kept:
            return Path(kept).resolve()
        if out:
            return None  # every run directory already lasts under --harness-out
        return config.rootpath / ".harness" / "pytest-runs"

    def exporter() -> SpanExporter | None:
        url = config.getoption("harness_otlp")
        if not url:
            return None
        if not exporters:
            from harness.telemetry.export import build_exporter, resolve_settings

            settings = resolve_settings(url, None, flags=_OTLP_FLAGS)
            assert settings is not None  # a URL was given
            exporters.append(build_exporter(settings))
        return exporters[0]

    return RunSettings(
        seed=config.getoption("harness_seed"),
        seeds=config.getoption("harness_seeds"),
        mode=config.getoption("harness_mode"),
        out_dir=out_dir,
        exporter=exporter,
        kept_dir=kept_dir,
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    for exporter in config.stash.get(_EXPORTER_KEY, []):
        exporter.shutdown()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in _SCENARIO_SUFFIXES:
        return None
    dirs = _scenario_dirs(parent.config)
    if not dirs:
        return None
    resolved = file_path.resolve()
    if not any(d in resolved.parents for d in dirs):
        return None
    from harness._pytest.items import ScenarioFile

    file: pytest.Collector = ScenarioFile.from_parent(parent, path=file_path)
    return file


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    runs = item.stash.get(RUNS_KEY, None)
    if runs and report.failed and report.when == "call":
        from harness._pytest.runs import describe, keep

        kept = item.config.stash[SETTINGS_KEY].kept_dir()
        for run in runs:
            keep(run, kept, item.nodeid)
        report.sections.append(("harness", "\n\n".join(describe(run) for run in runs)))
    return report


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def harness_run(request: pytest.FixtureRequest) -> Callable[..., HarnessResult]:
    """Run a scenario: ``harness_run(name_or_path, *, policy, seed=None, mode=None)``.

    A relative scenario path is found beside the test file first, then in the working
    directory."""
    from harness._pytest.runs import HarnessResult, keep, run, run_root

    config = request.config
    settings = config.stash[SETTINGS_KEY]
    runs = request.node.stash.setdefault(RUNS_KEY, [])

    def harness_run(
        name_or_path: str | Path,
        *,
        policy: str,
        seed: int | None = None,
        mode: str | None = None,
    ) -> HarnessResult:
        from harness.telemetry.routing import install_router

        if install_router().current is not None:
            raise ConfigError(
                "harness_run records each run's spans itself (result.spans); "
                "it cannot run while the span_exporter fixture is attached"
            )
        outcome = run(
            _beside(request.path, name_or_path),
            policy=policy,
            seed=settings.seed if seed is None else seed,
            mode=mode or settings.mode,
            root=run_root(settings.out_dir(), request.node.nodeid, worker_id(config)),
            exporter=settings.exporter(),
        )
        runs.append(outcome)
        return HarnessResult(
            outcome, on_failure=lambda o: keep(o, settings.kept_dir(), request.node.nodeid)
        )

    return harness_run


def _beside(test_file: Path, target: str | Path) -> str | Path:
    """A relative scenario path as the test file's directory sees it, when the file is there
    (or is nowhere else); a built-in scenario's name unchanged."""
    text = str(target)
    if not (isinstance(target, Path) or text.endswith((".yaml", ".yml")) or "/" in text):
        return target
    path = Path(target)
    if path.is_absolute():
        return path
    beside = test_file.parent / path
    return beside if beside.exists() or not path.exists() else path


@pytest.fixture(scope="session")
def _harness_background() -> Iterator[Background]:
    from harness._pytest.background import Background

    background = Background()
    try:
        yield background
    finally:
        background.close()


@pytest.fixture
def fake_anthropic(request: pytest.FixtureRequest) -> Iterator[Callable[..., FakeAPI]]:
    """The fake Messages API: ``fake_anthropic(script=None, *, seed=0, serve=False)``.

    ``script`` is a ``ModelScript``, a YAML/JSON file path or parsed data (default: one agent
    answering a short text). ``serve=True`` serves it on a loopback port (``base_url``) for
    any client; otherwise ``async_client()`` reaches it in-process.
    """
    cleanups: list[Callable[[], None]] = []

    def make(script: object = None, *, seed: int = 0, serve: bool = False) -> FakeAPI:
        from fake_servers.anthropic import FakeAnthropic
        from harness._pytest.servers import IN_PROCESS_BASE_URL, FakeAPI, model_script
        from harness.chaos_random import ChaosRandom

        fake = FakeAnthropic(model_script(script), rng=ChaosRandom(seed))
        if not serve:
            return FakeAPI(fake, IN_PROCESS_BASE_URL, served=False)
        background: Background = request.getfixturevalue("_harness_background")
        url, stop = background.enter(fake.serve())
        cleanups.append(stop)
        return FakeAPI(fake, url, served=True)

    try:
        yield make
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


@pytest.fixture
def fake_mcp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., FakeMCP]]:
    """A fake MCP server: ``fake_mcp(name, *, transport="memory", script=None, seed=0)``.

    ``name`` is one of ssh, vault, traffic, cameras, chat; ``transport`` memory | http | stdio;
    ``script`` a ``ServerScript``, a file path or parsed data.
    """
    cleanups: list[Callable[[], None]] = []

    def make(
        name: str, *, transport: str = "memory", script: object = None, seed: int = 0
    ) -> FakeMCP:
        from harness._pytest.servers import build_fake_mcp

        return build_fake_mcp(
            name,
            transport=transport,
            script=script,
            seed=seed,
            workdir=tmp_path_factory.mktemp(f"fake-mcp-{name}"),
            background=lambda: request.getfixturevalue("_harness_background"),
            cleanups=cleanups,
        )

    try:
        yield make
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


@pytest.fixture(scope="session")
def _harness_fault_proxy(_harness_background: Background) -> Iterator[FaultProxy]:
    from harness._pytest.servers import FaultProxy
    from harness.faults.proxy.server import ToxiproxyServer

    server = ToxiproxyServer()
    url, stop = _harness_background.enter(server)
    try:
        yield FaultProxy(url, server, _harness_background)
    finally:
        stop()


@pytest.fixture
def fault_proxy(_harness_fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The embedded fault proxy; every proxy and toxic is removed after the test."""
    _harness_fault_proxy.reset()
    try:
        yield _harness_fault_proxy
    finally:
        _harness_fault_proxy.reset()


@pytest.fixture
def span_exporter() -> Iterator[SpanQuery]:
    """This test's finished spans, from every tracer in the process (seeded ids)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from harness._pytest.spans import SpanRecorder
    from harness.chaos_random import ChaosRandom
    from harness.telemetry.routing import SpanSink, install_router

    exporter = InMemorySpanExporter()
    sink = SpanSink([SimpleSpanProcessor(exporter)], rng=ChaosRandom(0))
    with install_router().attach(sink):
        yield SpanRecorder(exporter)
