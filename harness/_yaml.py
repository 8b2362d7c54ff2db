"""YAML input with errors that point at the file, line and field.

Every file the harness reads (scenarios, runtime configs, fault plans) goes through here, so a
bad value is reported the same way everywhere: ``file:line, field 'a.b.0.c': message (got x)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.errors import ConfigError

__all__ = ["line_of", "parse_yaml", "read_text", "validation_error"]


def line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort 1-based line of the node at ``loc`` (keys and list indexes) in ``text``."""
    try:
        node: Any = yaml.compose(text)
    except (yaml.YAMLError, RecursionError):
        return None
    line: int | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def read_text(path: Path, *, error: type[ConfigError], what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror}", path=path) from None
    except UnicodeDecodeError:
        raise error("not a UTF-8 text file", path=path) from None


def parse_yaml(text: str, *, path: str | Path, error: type[ConfigError]) -> Any:
    """``yaml.safe_load`` with a located ``error`` instead of a YAML traceback."""
    try:
        return yaml.safe_load(text)
    except RecursionError:
        # PyYAML recurses once per nesting level: a deep document must not be a traceback.
        raise error("not valid YAML: nested too deeply", path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            path=path,
            line=mark.line + 1 if mark is not None else None,
        ) from None


class LocatedError(ValueError):
    """A validator's error about a node other than the one it validates (``loc`` from the
    document root), so the file's line and field point at that node."""

    def __init__(self, message: str, *, loc: tuple[int | str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def validation_error(
    exc: ValidationError,
    *,
    text: str,
    path: str | Path,
    error: type[ConfigError],
    prefix: tuple[int | str, ...] = (),
    data: Any = None,
) -> ConfigError:
    """The first pydantic error as a located ``error`` (file, line, dotted field, value).

    With ``data`` (the validated document) the tags of tagged unions that pydantic puts in
    the location (``faults.1.freeze.seconds``) are dropped, so the field is the one written."""
    first = exc.errors()[0]
    loc: tuple[int | str, ...] = (*prefix, *first["loc"])
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedError):
        loc = cause.loc
    elif data is not None:
        loc = _without_tags(loc, data)
    kwargs: dict[str, Any] = {}
    shown = first.get("input")
    if not isinstance(shown, dict | list):
        kwargs["value"] = shown
    return error(
        str(first["msg"]).removeprefix("Value error, "),
        path=path,
        line=line_of(text, loc),
        field=".".join(str(p) for p in loc) or None,
        **kwargs,
    )


def _without_tags(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    out: list[int | str] = []
    node = data
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if part == "[key]":
            continue  # a bad mapping key: the field is the entry itself
        if isinstance(part, str) and _is_tag(
            node, part, parts, after_index=bool(out) and isinstance(out[-1], int)
        ):
            continue  # the union member pydantic tried, not a key of the document
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _is_tag(node: Any, part: str, rest: list[int | str], *, after_index: bool) -> bool:
    """Whether ``part`` names a union member (``str``, ``Regex``, a ``type:`` tag) rather than
    a key written in the document at ``node``."""
    if isinstance(node, dict):
        if after_index and part in (node.get("type"), node.get("kind")):
            return True
        if part in node:
            return False
        return bool(rest) and rest[0] in node
    # A scalar or a list has no named fields; a missing value (None) may be a required field.
    return node is not None
