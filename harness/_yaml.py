"""YAML input with errors that point at the file, line and field.

Every file the harness reads (scenarios, runtime configs, fault plans, scripts, fixtures) goes
through here, so a bad value is reported the same way everywhere: ``file:line, field 'a.b.0.c':
message (got x)``, and a file that does not parse as ``file:line:column: not valid YAML: the
problem`` (``parse_yaml``).

``load_yaml`` is ``yaml.safe_load`` (libyaml's parser when installed) with bounds a hostile
file cannot get around: a document expands to at most ``MAX_NODES`` nodes with every alias
counted each time it is used (a billion-laughs bomb is refused before anything reads it), nests
at most ``MAX_DEPTH`` levels, holds no integer beyond 2**53 (what JSON, OTLP attributes and
the Jaeger UI carry exactly) and repeats no key in a mapping (the last one would silently win).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, ValidationError

from harness._files import INPUT_LIMIT
from harness._files import read_text as read_file_text
from harness.errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_NODES",
    "LocatedError",
    "RegexText",
    "compose",
    "line_of",
    "load_yaml",
    "parse_yaml",
    "read_text",
    "validation_error",
]

MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_INT = 2**53

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(yaml.MarkedYAMLError):
    """A document the bounds refuse; ``problem`` says which bound, ``problem_mark`` where."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _Loader(_BaseLoader):  # type: ignore[misc]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a merge key may bring keys that the mapping then overrides
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: the constructor below names it
            if first is not key_node:
                raise _Refused(
                    f"duplicate key {str(key)[:80]!r} (lines {first.start_mark.line + 1} "
                    f"and {key_node.start_mark.line + 1}): the second would silently win",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        value: int = super().construct_yaml_int(node)
        if abs(value) > MAX_INT:
            raise _Refused(
                f"integer {node.value[:40]} is out of range (at most 2**53 in size)",
                node.start_mark,
            )
        return value


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_bounds(root: yaml.Node) -> None:
    """Refuse a node graph that expands past ``MAX_NODES`` or ``MAX_DEPTH`` (aliases are
    edges to shared nodes: counted per use, measured once each) or that refers to itself."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(kid)] for kid in kids)
            depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
            if size[key] > MAX_NODES:
                raise _Refused(
                    f"the document expands to more than {MAX_NODES:,} values (aliases count "
                    "each time they are used)",
                    node.start_mark,
                )
            if depth[key] > MAX_DEPTH:
                raise _Refused(f"nested too deeply (more than {MAX_DEPTH} levels)", node.start_mark)
            continue
        if key in size:
            continue
        if key in on_path:
            raise _Refused("an alias refers to a value that contains it", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` within the bounds above; a refusal is a ``yaml.YAMLError``
    with ``problem`` and ``problem_mark`` like any syntax error."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_bounds(node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):
            raise _Refused(
                f"nested too deeply (more than {MAX_DEPTH} levels)",
                exc.problem_mark,  # type: ignore[attr-defined]
            ) from None
        raise
    finally:
        loader.dispose()


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text`` (it keeps line numbers), or None when it does not parse."""
    try:
        return yaml.compose(text, Loader=_BaseLoader)
    except (yaml.YAMLError, RecursionError):
        return None


def _entry_at(
    doc: str | yaml.Node | None, loc: tuple[int | str, ...]
) -> tuple[int | None, yaml.MappingNode | None, int]:
    """The 1-based line of the deepest entry found on the path ``loc``: a mapping entry's key
    line (where the field is written), a list item's first line. Also the mapping holding the
    last entry found at the end of ``loc`` and that entry's index in it (else None, -1)."""
    node: Any = compose(doc) if isinstance(doc, str) else doc
    line: int | None = None
    parent: yaml.MappingNode | None = None
    index = -1
    for part in loc:
        parent, index = None, -1
        if isinstance(node, yaml.MappingNode):
            found = [
                i for i, (k, _) in enumerate(node.value) if getattr(k, "value", None) == str(part)
            ]
            if not found:
                break
            parent, index = node, found[0]
            key, node = node.value[index]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and str(part).isdigit():
            if int(part) >= len(node.value):
                break
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line, parent, index


def line_of(doc: str | yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort 1-based line of the field at ``loc`` (keys and list indexes) in ``doc``, the
    YAML text or its composed node tree (None for a document that is not YAML)."""
    return _entry_at(doc, loc)[0]


def read_text(path: Path, *, error: type[ConfigError], what: str) -> str:
    """A hand-written input file: a regular UTF-8 file of at most ``INPUT_LIMIT`` bytes."""
    return read_file_text(path, what=what, limit=INPUT_LIMIT, error=error)


def parse_yaml(text: str, *, path: str | Path, error: type[ConfigError]) -> Any:
    """``load_yaml`` (``json.loads`` for a ``.json`` file, within the same bounds) with a
    located ``error`` instead of a traceback: every loader words a syntax error this one way,
    ``file:line:column: not valid YAML: the problem``."""
    if Path(path).suffix == ".json":
        return _parse_json(text, path=path, error=error)
    try:
        return load_yaml(text)
    except RecursionError:
        # The bounds above keep the constructor shallow; this stays as a last guard.
        raise error("not valid YAML: nested too deeply", path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = str(getattr(exc, "problem", None) or exc).replace("\n", " ")
        if problem.startswith("mapping values are not allowed"):
            # A plain value with ": " in it reads as a nested key; users meant text.
            problem += " (a ': ' inside a value starts a mapping: quote the value)"
        elif mark is not None and _char_at(text, mark.line, mark.column) == "\t":
            problem += " (a tab: YAML indents with spaces)"
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start is not None and mark is not None and start.line != mark.line:
            # An unclosed quote or bracket: where it was opened.
            problem += f" ({context} at line {start.line + 1}, column {start.column + 1})"
        raise error(
            f"not valid YAML: {problem}",
            path=path,
            line=mark.line + 1 if mark is not None else None,
            column=mark.column + 1 if mark is not None else None,
        ) from None


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    return lines[line][column : column + 1] if line < len(lines) else ""


def _parse_json(text: str, *, path: str | Path, error: type[ConfigError]) -> Any:
    def bounded(digits: str) -> int:
        if abs(value := int(digits)) > MAX_INT:
            raise ValueError(f"integer {digits[:40]} is out of range (at most 2**53 in size)")
        return value

    def mapping(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"duplicate key {key[:80]!r}: the second would silently win")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON value")

    try:
        return json.loads(
            text, parse_int=bounded, parse_constant=constant, object_pairs_hook=mapping
        )
    except json.JSONDecodeError as exc:
        raise error(
            f"not valid JSON: {exc.msg}", path=path, line=exc.lineno, column=exc.colno
        ) from None
    except RecursionError:
        raise error("not valid JSON: nested too deeply", path=path) from None
    except ValueError as exc:
        raise error(f"not valid JSON: {exc}", path=path) from None


def _compiles(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


RegexText = Annotated[str, AfterValidator(_compiles)]
"""A field holding a regular expression: refused unless it compiles."""


class LocatedError(ValueError):
    """A validator's error about a node other than the one it validates (``loc`` from the
    root of the model validated, the document's unless ``validation_error`` is given a
    ``prefix``), so the file's line and field point at that node."""

    def __init__(self, message: str, *, loc: tuple[int | str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def validation_error(
    exc: ValidationError,
    *,
    text: str | yaml.Node | None,
    path: str | Path | None,
    error: type[ConfigError],
    prefix: tuple[int | str, ...] = (),
    data: Any = None,
    quote: bool = True,
    lead: Callable[[tuple[int | str, ...]], str] | None = None,
) -> ConfigError:
    """The first pydantic error as a located ``error``: file, line (``text`` is the YAML text
    or its node tree, None for JSON or data built in code), the field dotted as written
    (``a.0.b``) and the value it refused (``quote=False`` for a file the user may have pointed
    anywhere: its values must not reach a terminal). ``lead(loc)`` starts the message.

    With ``data`` (the validated document) the tags of tagged unions that pydantic puts in
    the location (``faults.1.freeze.seconds``) are dropped, so the field is the one written."""
    first = exc.errors()[0]
    loc: tuple[int | str, ...] = (*prefix, *first["loc"])
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedError):
        loc = (*prefix, *cause.loc)
    elif data is not None:
        loc = _without_tags(loc, data)
    line, parent, index = _entry_at(text, loc)
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and parent is not None:
        message += _quote_hint(parent, index, quote=quote)
    elif first["type"] == "string_type" and _bare_braces(first.get("input")):
        # text: {tool_results} is a YAML mapping {tool_results: null}, not a placeholder.
        (key,) = first["input"]
        message += f' (a value starting with {{ is a YAML mapping: quote it, "{{{key}}}")'
    elif isinstance(first.get("input"), bool) and parent is not None:
        message += _boolean_hint(parent.value[index][1], first["input"])
    if lead is not None:
        message = lead(loc) + message
    kwargs: dict[str, Any] = {}
    shown = first.get("input")
    if quote and not isinstance(shown, dict | list):
        kwargs["value"] = shown
    return error(
        message,
        path=path,
        line=line,
        field=".".join(str(p) for p in loc) or None,
        **kwargs,
    )


def _boolean_hint(node: yaml.Node, value: bool) -> str:
    """A hint when YAML 1.1 read a plain word (``no``, ``off``, ``yes``, ``on``) as a boolean
    where the field wanted a word: ``decision: no`` is ``decision: false``."""
    if not isinstance(node, yaml.ScalarNode) or node.style or node.value.lower() in BOOLEANS:
        return ""
    return f' (YAML reads {node.value} as {str(value).lower()}: quote it, "{node.value}")'


BOOLEANS = ("true", "false")


def _bare_braces(value: Any) -> bool:
    """``{name}`` written unquoted: a mapping of one key without a value."""
    return (
        isinstance(value, dict)
        and len(value) == 1
        and all(isinstance(k, str) and v is None for k, v in value.items())
    )


def _quote_hint(mapping: yaml.MappingNode, index: int, *, quote: bool) -> str:
    """A hint when the refused key is a comma's leftover: in ``{text: a, b}`` the comma ends
    the value, so ``b`` reads as a key without a value."""

    def bare(node: yaml.Node) -> bool:  # a key written without ``: value``
        return isinstance(node, yaml.ScalarNode) and node.value == "" and node.tag.endswith("null")

    if not (mapping.flow_style and index > 0 and bare(mapping.value[index][1])):
        return ""
    before, written = mapping.value[index - 1]
    if not isinstance(written, yaml.ScalarNode):
        return ""
    if not quote:
        return f" (a comma ends a value inside {{...}}: quote the value of '{before.value}')"
    parts = [written.value]
    for key, value in mapping.value[index:]:
        if not bare(value):
            break
        parts.append(key.value)
    joined = ", ".join(parts)
    return (
        " (a comma ends a value inside {...}: quote it, "
        f"{before.value}: {json.dumps(joined, ensure_ascii=False)})"
    )


def _without_tags(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    out: list[int | str] = []
    node = data
    parts = list(loc)
    tagged = False
    while parts:
        part = parts.pop(0)
        if part == "[key]":
            continue  # a bad mapping key: the field is the entry itself
        if isinstance(part, str) and _is_tag(node, part, parts, first=not tagged):
            tagged = True  # the union member pydantic tried, not a key of the document
            continue
        tagged = False
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _is_tag(node: Any, part: str, rest: list[int | str], *, first: bool) -> bool:
    """Whether ``part`` names a union member (``str``, ``Regex``, a ``type:`` or ``kind:`` tag)
    rather than a key written in the document at ``node`` (``first``: no tag was dropped at
    ``node`` yet, so ``toxic`` in ``{type: toxic, toxic: ...}`` is the tag once)."""
    if isinstance(node, dict):
        if first and part in (node.get("type"), node.get("kind")):
            return True
        if part in node:
            return False
        return bool(rest) and rest[0] in node
    # A scalar or a list has no named fields; a missing value (None) may be a required field.
    return node is not None
