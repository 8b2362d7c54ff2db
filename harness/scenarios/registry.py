"""Where scenarios come from: the built-in ones shipped with the package, or a file path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import ScenarioError

if TYPE_CHECKING:
    from harness.scenarios.model import Scenario

__all__ = ["BUGS_DIR", "BUILTIN_DIR", "bug_names", "builtin_names", "builtin_path", "resolve"]

BUILTIN_DIR = Path(__file__).parent / "builtin"
# The public bugs written as scenario files (``scenarios/bugs/``): by name like the built-ins,
# but not in ``harness run --all``.
BUGS_DIR = BUILTIN_DIR / "bugs"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def bug_names() -> list[str]:
    return sorted(p.stem for p in BUGS_DIR.glob("*.yaml"))


def builtin_path(name: str) -> Path | None:
    """The file of a built-in scenario or bug file named ``name``, if there is one."""
    for directory in (BUILTIN_DIR, BUGS_DIR):
        candidate = directory / f"{name}.yaml"
        if "/" not in name and candidate.is_file():
            return candidate
    return None


def resolve(target: str) -> tuple[Scenario, str]:
    """A scenario by built-in name or file path, and how to name it in a replay command."""
    from harness.scenarios.model import load_scenario

    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_scenario(path), str(path)
    candidate = builtin_path(target)
    if candidate is not None:
        return load_scenario(candidate), target
    import difflib

    names = builtin_names()
    close = difflib.get_close_matches(target, [*names, *bug_names()], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ScenarioError(
        f"no scenario named {target!r}; {hint}built-in scenarios: {', '.join(names)} "
        "(and the bug files: harness list --bugs)"
    )
