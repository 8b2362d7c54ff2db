"""Reading the files a user hands the harness, with bounds that say themselves.

Every input file (scenarios, scripts, configs, fault plans, a run directory's files) is read
through ``read_bytes`` / ``read_text``: only a regular file (not ``/dev/zero``, a FIFO or a
directory, also when a symlink points there), and at most ``limit`` bytes, so a hostile or
mistaken path is a one-line ``ConfigError`` naming the file and the limit, never a
``MemoryError`` or a read that never ends.
"""

from __future__ import annotations

import json
import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "ARTEFACT_LIMIT",
    "INPUT_LIMIT",
    "TOO_BIG_HINT",
    "check_writable_dir",
    "describe_size",
    "parse_json",
    "read_bytes",
    "read_text",
]

# Scenario files, scripts, fixtures, configs and fault plans: hand-written, so small. YAML
# parsing costs about a second per few MiB; the largest built-in scenario is 4 KiB.
INPUT_LIMIT = 4 << 20
# A run directory's files (run.json, trace.jsonl, events.jsonl, journal.jsonl): a long live
# run writes a few MiB; past this a view would take minutes and gigabytes.
ARTEFACT_LIMIT = 64 << 20
# Past the artefact limit a run file's views would take minutes and gigabytes: say what to do.
TOO_BIG_HINT = (
    " (record less: a shorter run, content capture off; or send runs to a collector as they"
    " finish with `harness run --otlp-endpoint URL`)"
)


def describe_size(size: int) -> str:
    """``512 bytes``, ``3.0 KiB``, ``64 MiB``: sizes as the limits are written."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(
    path: str | Path,
    *,
    what: str,
    limit: int = INPUT_LIMIT,
    error: type[ConfigError] = ConfigError,
    hint: str = "",
) -> bytes:
    """The content of the regular file ``path`` (symlinks followed), at most ``limit`` bytes.

    ``what`` names the file in errors ("scenario", "trace"); ``hint`` is appended to the
    too-large error (what to do instead)."""
    try:
        # Non-blocking: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror}", path=path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"the {what} must be a regular file; this is {_kind(info.st_mode)}", path=path
            )
        too_big = error(
            f"the {what} is larger than {describe_size(limit)}, the limit for a {what} file{hint}",
            path=path,
        )
        if info.st_size > limit:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        # Read to one byte past the limit: the file may grow while it is read.
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise too_big
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror}", path=path) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(
    path: str | Path,
    *,
    what: str,
    limit: int = INPUT_LIMIT,
    error: type[ConfigError] = ConfigError,
    hint: str = "",
) -> str:
    """``read_bytes`` decoded as UTF-8 (a file that is not UTF-8 text is a ``ConfigError``)."""
    data = read_bytes(path, what=what, limit=limit, error=error, hint=hint)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"the {what} is not UTF-8 text (byte {exc.start} is not valid UTF-8)", path=path
        ) from None


def parse_json(text: str, *, path: str | Path, line: int | None = None) -> Any:
    """One JSON value read from ``path`` (at ``line``); not JSON, or nested deeper than the
    parser goes (``[`` a hundred thousand times), is a ``ConfigError``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError("not JSON: nested too deeply", path=path, line=line) from None
    except ValueError as exc:
        raise ConfigError(f"not JSON: {exc}", path=path, line=line) from None


def check_writable_dir(path: Path, *, what: str, option: str) -> None:
    """Create ``path`` (and its parents) and write a probe file in it, so that an output
    directory that cannot take files (``/proc/x``, ``/dev/null``, a name too long) is a
    ``ConfigError`` before any work starts, not a traceback after it is done. Directories it
    had to create are removed again: a command refused later leaves nothing behind."""
    probe = path / f".probe.{os.getpid()}.tmp"
    try:
        # Inside the try: a name too long fails already when asked whether it exists.
        created = [p for p in (path, *path.parents) if not p.exists()]
        if path.exists() and not path.is_dir():
            raise ConfigError(f"cannot write {what} here: not a directory", path=path, field=option)
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write {what} here: {exc.strerror}", path=path, field=option
        ) from None
    for directory in created:  # deepest first
        # A command started beside this one with the same new directory may have written
        # into it meanwhile: then it stays.
        with suppress(OSError):
            directory.rmdir()
