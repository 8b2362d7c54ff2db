"""``harness agent run CONFIG``: run the reference runtime once, in its rig, in real time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from harness.runtime.config import RuntimeConfig

__all__ = ["agent"]


@click.group()
def agent() -> None:
    """The agent runtime under test."""


@agent.command("run")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prompt", help="Prompt for the main agent (default: the config's prompt).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write result.json, events.jsonl, trace.jsonl (and journal.jsonl with the fake API) here.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for ids and fakes.")
def run(config: Path, prompt: str | None, out: Path | None, seed: int) -> None:
    """Run CONFIG's main agent and scheduled tasks; print the main agent's final answer.

    CONFIG is a runtime config file (model, API, policies, servers, agents, scheduled tasks,
    faults): its format is in harness/runtime/README.md. With --out the run's record is
    written as harness run writes it: result.json, events.jsonl, journal.jsonl (fake API)
    and trace.jsonl (every span, OTLP JSON, for harness check, trace show and trace push).
    Exit status 0 when every agent ended its turn, 1 when one failed (its cause is printed).
    """
    import tempfile

    import anyio
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from harness.chaos_random import ChaosRandom
    from harness.errors import ConfigError
    from harness.runtime.config import load_runtime_config
    from harness.runtime.runtime import RunResult
    from harness.scenarios.rig import Rig, reference_runtime
    from harness.telemetry.routing import SpanSink, install_router

    cfg = load_runtime_config(config)
    _check_inline_fixtures(cfg, Path(config))
    if prompt is None and cfg.prompt is None and not cfg.scheduled:
        raise ConfigError("nothing to run: give --prompt, a prompt or scheduled tasks", path=config)

    exporter = InMemorySpanExporter()
    sink = SpanSink([SimpleSpanProcessor(exporter)], one_trace=True)
    # Subprocess servers write their spans into the work directory as they stop: it outlives
    # the runtime until the trace is read.
    with tempfile.TemporaryDirectory(prefix="harness-agent-") as work:

        async def main() -> tuple[RunResult, Rig]:
            async with reference_runtime(cfg, rng=ChaosRandom(seed), workdir=Path(work)) as rig:
                return await rig.run(prompt), rig

        with install_router().attach(sink):
            result, rig = anyio.run(main)
        trace = _trace(exporter, rig)
    failed = False
    if result.main is not None:
        if result.main.stop == "error":
            failed = True
            click.echo(
                f"{result.main.name}: failed ({result.main.error_type}): {result.main.error}"
            )
        else:
            click.echo(result.main.text)
    for name, task in result.tasks.items():
        status = task.text if task.stop != "error" else f"failed: {task.error}"
        failed = failed or task.stop == "error"
        click.echo(f"[{name}] {status}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        with (out / "events.jsonl").open("w", encoding="utf-8") as fh:
            for event in rig.rt.events.events:
                fh.write(json.dumps(event.to_json(), default=str) + "\n")
        if rig.fake_api is not None:
            rig.fake_api.journal.write_jsonl(out / "journal.jsonl")
        (out / "trace.jsonl").write_text(json.dumps(trace, separators=(",", ":")) + "\n")
    raise SystemExit(1 if failed else 0)


def _trace(exporter: Any, rig: Any) -> dict[str, Any]:
    """The run's spans as one OTLP JSON ``TracesData``, one resource per component."""
    from harness.telemetry.components import merge_span_files, regroup_by_service
    from harness.telemetry.otlp_json import scrub_addresses, spans_to_otlp_json

    spans = exporter.get_finished_spans()
    trace = spans_to_otlp_json(spans) if spans else {"resourceSpans": []}
    merge_span_files(trace, list(rig.spans_files.values()))
    return regroup_by_service(scrub_addresses(trace))


def _check_inline_fixtures(cfg: RuntimeConfig, path: Path) -> None:
    """An inline chat fixture is checked before the rig starts, so its errors name the config
    file's line (the runtime's config model does not know the fake servers' fixtures)."""
    from pydantic import ValidationError

    from fake_servers.mcp.chat import ChatFixture
    from harness._yaml import validation_error
    from harness.errors import ConfigError

    for name, server in cfg.servers.items():
        if isinstance(server.chat_fixture, dict):
            try:
                ChatFixture.model_validate(server.chat_fixture)
            except ValidationError as exc:
                text = path.read_text(encoding="utf-8")
                where = ("servers", name, "chat_fixture")
                raise validation_error(
                    exc, text=text, path=path, error=ConfigError, prefix=where
                ) from None
