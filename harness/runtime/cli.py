"""``harness agent run CONFIG``: run the runtime under test once, in real time."""

from __future__ import annotations

import json
from pathlib import Path

import click

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
    help="Write result.json, events.jsonl (and journal.jsonl with the fake API) here.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for ids and fakes.")
def run(config: Path, prompt: str | None, out: Path | None, seed: int) -> None:
    """Run CONFIG's main agent and scheduled tasks; print the main agent's final answer.

    Exit status 0 when every agent ended its turn, 1 when one failed (its cause is printed).
    """
    import anyio

    from harness.chaos_random import ChaosRandom
    from harness.errors import ConfigError
    from harness.runtime.config import load_runtime_config
    from harness.runtime.runtime import RunResult, Runtime

    cfg = load_runtime_config(config)
    if prompt is None and cfg.prompt is None and not cfg.scheduled:
        raise ConfigError("nothing to run: give --prompt, a prompt or scheduled tasks", path=config)

    async def main() -> tuple[RunResult, Runtime]:
        async with Runtime(cfg, rng=ChaosRandom(seed)) as rt:
            return await rt.run(prompt), rt

    result, rt = anyio.run(main)
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
            for event in rt.events.events:
                fh.write(json.dumps(event.to_dict(), default=str) + "\n")
        if rt.fake_api is not None:
            rt.fake_api.journal.write_jsonl(out / "journal.jsonl")
    raise SystemExit(1 if failed else 0)
