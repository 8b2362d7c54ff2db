"""Where scenarios come from: the built-in ones shipped with the package, or a file path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import ScenarioError

if TYPE_CHECKING:
    from harness.scenarios.model import Scenario

__all__ = ["BUILTIN_DIR", "builtin_names", "resolve"]

BUILTIN_DIR = Path(__file__).parent / "builtin"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def resolve(target: str) -> tuple[Scenario, str]:
    """A scenario by built-in name or file path, and how to name it in a replay command."""
    from harness.scenarios.model import load_scenario

    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_scenario(path), str(path)
    candidate = BUILTIN_DIR / f"{target}.yaml"
    if candidate.exists():
        return load_scenario(candidate), target
    import difflib

    names = builtin_names()
    close = difflib.get_close_matches(target, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ScenarioError(
        f"no scenario named {target!r}; {hint}built-in scenarios: {', '.join(names)}"
    )
