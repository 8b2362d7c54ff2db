"""Find the supported CPython interpreters on this machine other than the one running this.

The supported versions are pyproject.toml's ``Programming Language :: Python :: 3.X``
classifiers. Looks on PATH (``python3.X``) and in pyenv's versions (``pyenv root``, else
``$PYENV_ROOT``, else ~/.pyenv), asks each candidate its own version and keeps one interpreter
per minor version. Prints what it found and what it did not to stderr, and one line per
interpreter to run, ``VERSION PATH``, to stdout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
_CLASSIFIER = "Programming Language :: Python :: 3."
# ensurepip and venv: the interpreter must be able to make the venv CI installs into.
_ASK = (
    "import ensurepip, platform, sys, venv; "
    "print(platform.python_implementation(), *sys.version_info[:3])"
)


def pyenv_root() -> Path:
    if shutil.which("pyenv"):
        try:
            found = subprocess.run(
                ["pyenv", "root"], capture_output=True, text=True, timeout=30, check=True
            )
            return Path(found.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def supported_minors() -> list[int]:
    project = tomllib.loads(_PYPROJECT.read_text(encoding="utf-8"))["project"]
    tail = (
        c.removeprefix(_CLASSIFIER) for c in project["classifiers"] if c.startswith(_CLASSIFIER)
    )
    return sorted(int(minor) for minor in tail if minor.isdigit())


def candidates(root: Path, minors: list[int]) -> list[Path]:
    found = [Path(p) for minor in minors if (p := shutil.which(f"python3.{minor}"))]
    for minor in minors:
        found.extend(sorted((root / "versions").glob(f"*/bin/python3.{minor}")))
    return found


def version_of(python: Path) -> tuple[int, int, int] | None:
    """The interpreter's own (major, minor, micro) if it is CPython that can make a venv."""
    try:
        answer = subprocess.run(
            [str(python), "-c", _ASK], capture_output=True, text=True, timeout=60, check=True
        ).stdout.split()
    except subprocess.CalledProcessError as error:
        why = (error.stderr or "").strip().splitlines()[:1] or [f"exit status {error.returncode}"]
        print(f"skipped {python}: {why[0]}", file=sys.stderr)
        return None
    except (OSError, subprocess.SubprocessError) as error:
        print(f"skipped {python}: {error}", file=sys.stderr)
        return None
    if len(answer) != 4 or answer[0] != "CPython":
        return None
    major, minor, micro = (int(part) for part in answer[1:])
    return major, minor, micro


def main() -> None:
    root = pyenv_root()
    minors = supported_minors()
    main_version = sys.version_info[:3]
    chosen: dict[tuple[int, int], tuple[tuple[int, int, int], Path]] = {}
    seen: set[Path] = set()
    for python in candidates(root, minors):
        real = python.resolve()
        if real in seen:
            continue
        seen.add(real)
        version = version_of(python)
        if version is None or version[:2] == main_version[:2] or version[0:2] in chosen:
            continue
        if version[0] == 3 and version[1] in minors:
            chosen[version[:2]] = (version, python)
    dotted = ".".join
    print(
        f"supported (pyproject classifiers): {', '.join(f'3.{minor}' for minor in minors)}; "
        f"searched PATH and pyenv ({root / 'versions'})",
        file=sys.stderr,
    )
    for minor in minors:
        if (3, minor) == main_version[:2]:
            main = f"{dotted(map(str, main_version))} ({sys.executable})"
            print(f"3.{minor}: {main}, the main run", file=sys.stderr)
        elif (3, minor) in chosen:
            version, python = chosen[(3, minor)]
            print(f"3.{minor}: found {dotted(map(str, version))} ({python})", file=sys.stderr)
            print(f"{dotted(map(str, version))} {python}")
        else:
            print(
                f"3.{minor}: NOT FOUND (no CPython 3.{minor} on PATH or in pyenv)", file=sys.stderr
            )


if __name__ == "__main__":
    main()
