"""Where scenarios come from: the built-in ones shipped with the package, or a file path."""

from __future__ import annotations

from pathlib import Path

from harness.errors import ScenarioError
from harness.scenarios.model import Scenario, load_scenario

__all__ = ["BUILTIN_DIR", "builtin_names", "resolve"]

BUILTIN_DIR = Path(__file__).parent / "builtin"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def resolve(target: str) -> tuple[Scenario, str]:
    """A scenario by built-in name or file path, and how to name it in a replay command."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_scenario(path), str(path)
    candidate = BUILTIN_DIR / f"{target}.yaml"
    if candidate.exists():
        return load_scenario(candidate), target
    raise ScenarioError(
        f"no scenario named {target!r}; built-in scenarios: {', '.join(builtin_names())}"
    )
