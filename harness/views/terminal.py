"""The terminal waterfall (``harness trace show``): lanes, the span tree with time bars on the
run's clock, markers and verdicts, drawn with rich. Reads well from 80 columns up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from harness._text import printable_data
from harness.telemetry.semconv import HARNESS_MCP_SERVER
from harness.views._time import RunClock, fmt
from harness.views.model import Interval, Lane, Marker, RunView, SpanRow

__all__ = ["Focus", "render", "waterfall"]

Focus = Literal["agent", "server", "fault"]

SYMBOLS = {
    "reconnect": "↻",
    "compaction": "✂",
    "fault": "⚡",
    "api_error": "✗",
    "llm_error": "✗",
    "scope_refused": "⊘",
    "connect_failed": "✗",
    "leak": "◌",
    "scope": "?",
    "task": "◔",
}
_LEVELS = "▁▂▃▄▅▆▇█"
_CATEGORY_STYLE = {
    "agent": "bold cyan",
    "chat": "bright_blue",
    "tool": "green",
    "mcp": "magenta",
    "http": "dim blue",
    "reconnect": "bold yellow",
    "compaction": "bold yellow",
    "fault": "bold red",
    "other": "white",
}
_EVIDENCE = "bold black on yellow"


class _Scale:
    """Maps run time to a column of a bar ``width`` cells wide."""

    def __init__(self, start: float, end: float, width: int) -> None:
        self.start = start
        # At least a microsecond: a subnormal span would overflow the division below.
        self.span = max(end - start, 1e-6) if end > start else 1.0
        self.width = max(width, 8)

    def col(self, t: float) -> int:
        return min(self.width - 1, max(0, int((t - self.start) / self.span * (self.width - 1))))

    def cells(self, start: float, end: float) -> range:
        return range(self.col(start), self.col(end) + 1)


class _Bar:
    """One row of cells; later paints win, so paint background first and markers last."""

    def __init__(self, width: int) -> None:
        self.chars = [" "] * width
        self.styles = [""] * width

    def paint(self, cells: Iterable[int], char: str, style: str) -> None:
        for cell in cells:
            if 0 <= cell < len(self.chars):
                self.chars[cell] = char
                self.styles[cell] = style

    def text(self) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        for char, style in zip(self.chars, self.styles, strict=True):
            out.append(char, style=style or None)
        return out


def _marker_style(marker: Marker) -> str:
    if marker.deciding:
        return _EVIDENCE
    return "bold red" if marker.error else "bold yellow"


def _paint_markers(bar: _Bar, scale: _Scale, markers: Iterable[Marker]) -> None:
    # Deciding evidence last, then faults, so they stay visible when markers share a column.
    for marker in sorted(markers, key=lambda m: (m.deciding, m.kind == "fault", m.error)):
        bar.paint([scale.col(marker.time)], SYMBOLS.get(marker.kind, "•"), _marker_style(marker))


def _agent_bar(lane: Lane, scale: _Scale) -> Text:
    bar = _Bar(scale.width)
    for life in lane.of_kind("agent"):
        bar.paint(scale.cells(life.start, life.end), "─", "red" if life.error else "cyan")
    for tool in lane.of_kind("tool"):
        # An MCP call is solid; a local tool (a subagent it waits for) is a double line.
        char = "█" if tool.detail.get(HARNESS_MCP_SERVER) else "═"
        bar.paint(scale.cells(tool.start, tool.end), char, "red" if tool.error else "green")
    # LLM calls last: in virtual time they are often instants at a tool's edge.
    for chat in lane.of_kind("chat"):
        style = "bold red" if chat.error else "bright_blue"
        bar.paint(scale.cells(chat.start, chat.end), "▒", style)
    _paint_markers(bar, scale, lane.markers)
    return bar.text()


def _server_bar(lane: Lane, scale: _Scale) -> Text:
    bar = _Bar(scale.width)
    for conn in lane.of_kind("connection"):
        bar.paint(scale.cells(conn.start, conn.end), "─", "dim magenta")
        bar.paint([scale.col(conn.start)], "├", "magenta")
    levels = lane.of_kind("in_flight")
    top = max((i.level for i in levels), default=1)
    for window in levels:
        index = max(0, round(window.level / top * (len(_LEVELS) - 1)))
        bar.paint(scale.cells(window.start, window.end), _LEVELS[index], "magenta")
    _paint_markers(bar, scale, lane.markers)
    return bar.text()


def _call_bar(call: Interval, scale: _Scale) -> Text:
    bar = _Bar(scale.width)
    bar.paint(scale.cells(call.start, call.end), "█", "red" if call.error else "green")
    return bar.text()


def _other_bar(lane: Lane, scale: _Scale) -> Text:
    bar = _Bar(scale.width)
    _paint_markers(bar, scale, lane.markers)
    return bar.text()


def _axis(scale: _Scale, clock: RunClock) -> Text:
    left, right = clock.at(scale.start), clock.at(scale.start + scale.span)
    gap = max(1, scale.width - len(left) - len(right))
    return Text(left + "┄" * gap + right, style="dim", no_wrap=True, overflow="crop")


def _table(name_width: int, note_width: int) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1), expand=False)
    table.add_column(width=name_width, no_wrap=True, overflow="ellipsis")
    table.add_column(no_wrap=True)
    # The column's width holds its left padding too.
    table.add_column(justify="right", no_wrap=True, width=note_width + 1, overflow="ellipsis")
    return table


def _header(view: RunView) -> Text:
    meta = view.meta
    met = meta.get("met")
    out = Text()
    out.append(f"{meta.get('scenario')}", style="bold")
    out.append(f"  policy {meta.get('policy')}  seed {meta.get('seed')}  {meta.get('mode')}\n")
    out.append("outcome ")
    out.append(str(meta.get("outcome")), style="bold green" if met else "bold red")
    out.append(f" (expected {meta.get('expected')}) ")
    out.append("✓ as expected" if met else "✗ not as expected", style="green" if met else "red")
    if meta.get("error"):
        out.append(f"\nerror: {meta['error']}", style="red")
    clock = view.clock
    out.append(f"\nrun clock {clock.at(view.start)} → {clock.at(view.end)}")
    if meta.get("replay"):
        out.append(f"   replay: {meta['replay']}", style="dim")
    return out


def _lane_depths(lanes: list[Lane]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for lane in lanes:
        if lane.kind == "agent":
            depth[lane.name] = depth.get(lane.parent or "", -1) + 1 if lane.parent else 0
    return depth


def _lanes(
    view: RunView, focus: Focus | None, scale: _Scale, name_width: int, note_width: int
) -> Table:
    table = _table(name_width, note_width)
    table.add_row(Text("lanes", style="bold"), _axis(scale, view.clock), "")
    depths = _lane_depths(view.lanes)
    for lane in view.lanes:
        if focus == "agent" and lane.kind != "agent":
            continue
        if focus == "server" and lane.kind != "server":
            continue
        if focus == "fault" and not _has_trouble(lane):
            continue
        if lane.kind == "agent":
            name = Text("  " * depths.get(lane.name, 0) + "● " + lane.name, style="cyan")
            life = lane.of_kind("agent")
            end = max((i.end for i in life), default=view.end)
            start = min((i.start for i in life), default=view.start)
            error = any(i.error for i in life)
            table.add_row(
                name, _agent_bar(lane, scale), Text(fmt(end - start), style="red" if error else "")
            )
        elif lane.kind == "server":
            table.add_row(
                Text(f"■ {lane.name} (mcp)", style="magenta"),
                _server_bar(lane, scale),
                Text(f"peak {lane.peak}", style="dim"),
            )
            if focus != "agent":
                for call in lane.of_kind("call"):
                    table.add_row(
                        Text(f"    {call.label}", style="red" if call.error else "green"),
                        _call_bar(call, scale),
                        Text(
                            call.error or fmt(call.end - call.start),
                            style="red" if call.error else "",
                        ),
                    )
        else:
            table.add_row(Text(f"◆ {lane.name}", style="yellow"), _other_bar(lane, scale), "")
    return table


def _has_trouble(lane: Lane) -> bool:
    return any(m.error or m.kind == "fault" or m.evidence_of for m in lane.markers) or any(
        i.error for i in lane.intervals
    )


def _keep_span(row: SpanRow, focus: Focus | None) -> bool:
    if focus is None:
        return True
    if focus == "agent":
        return row.category in ("agent", "chat", "tool", "compaction")
    if focus == "server":
        return row.category in ("mcp", "reconnect") or (row.category == "tool" and bool(row.server))
    return bool(row.error) or row.deciding or row.category in ("fault", "reconnect", "compaction")


def _span_label(row: SpanRow, depth: int) -> Text:
    label = Text("  " * depth)
    style = "bold red" if row.error else _CATEGORY_STYLE.get(row.category, "")
    if row.deciding:
        style = _EVIDENCE
    name = row.name
    if row.category == "reconnect":
        decision = row.attributes.get("harness.reconnect.decision", "?")
        server = row.attributes.get("harness.mcp.server", "")
        name = f"↻ {server} {decision}" if server else f"↻ reconnect {decision}"
    elif row.category == "compaction":
        name = f"✂ compaction {row.attributes.get('harness.compaction.outcome', '')}".strip()
    label.append(name, style=style)
    return label


def _span_bar(row: SpanRow, scale: _Scale) -> Text:
    bar = _Bar(scale.width)
    style = _CATEGORY_STYLE.get(row.category, "")
    if row.error:
        style = "red"
    if row.deciding:
        style = "bold yellow"
    char = "█" if row.end > row.start else "│"
    if row.category in ("reconnect", "compaction", "fault"):
        char = {"reconnect": "↻", "compaction": "✂", "fault": "⚡"}[row.category]
    bar.paint(scale.cells(row.start, row.end), char, style)
    return bar.text()


def _spans(
    view: RunView, focus: Focus | None, scale: _Scale, name_width: int, note_width: int
) -> Table:
    table = _table(name_width, note_width)
    table.add_row(Text("span tree", style="bold"), _axis(scale, view.clock), "")
    kept_depths: list[int] = []  # tree depths of the kept ancestors of the current row
    for row in view.spans:
        if not _keep_span(row, focus):
            continue
        while kept_depths and kept_depths[-1] >= row.depth:
            kept_depths.pop()
        depth = len(kept_depths)
        kept_depths.append(row.depth)
        note = row.error if row.error else fmt(row.end - row.start)
        table.add_row(
            _span_label(row, depth),
            _span_bar(row, scale),
            Text(note, style="red" if row.error else "dim"),
        )
    return table


def _keep_marker(lane: Lane, marker: Marker, focus: Focus | None) -> bool:
    if focus == "agent":
        return lane.kind == "agent"
    if focus == "server":
        return lane.kind == "server"
    if focus == "fault":
        return marker.error or marker.kind == "fault" or bool(marker.evidence_of)
    return True


def _markers(view: RunView, focus: Focus | None) -> Table:
    table = Table(box=None, show_header=True, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("lane", no_wrap=True, max_width=16, overflow="ellipsis")
    table.add_column("event")
    rows = [
        (marker, lane)
        for lane in view.lanes
        for marker in lane.markers
        if _keep_marker(lane, marker, focus)
    ]
    for marker, lane in sorted(rows, key=lambda r: (r[0].time, r[0].ref or ("", -1))):
        event = Text()
        event.append(f"{SYMBOLS.get(marker.kind, '•')} {marker.label}", style=_marker_style(marker))
        if marker.evidence_of:
            event.append(f"  ← evidence: {', '.join(marker.evidence_of)}", style="yellow")
        table.add_row(view.clock.at(marker.time), lane.name, event)
    return table


def _verdicts(view: RunView) -> Table:
    table = Table(box=None, show_header=True, pad_edge=False, padding=(0, 1), header_style="bold")
    longest = max((len(v.name) for v in view.verdicts), default=10) + 2
    table.add_column("oracle", width=min(longest, 40), overflow="fold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("sentence")
    for verdict in view.verdicts:
        bad = verdict.verdict == "fails"
        name = Text(("★ " if verdict.deciding else "  ") + verdict.name)
        if verdict.deciding:
            name.stylize("bold yellow")
        table.add_row(
            name,
            Text(verdict.verdict, style="bold red" if bad else "green"),
            Text(verdict.explanation),
        )
    return table


def _evidence(view: RunView) -> RenderableType | None:
    deciding = view.deciding
    if deciding is None or not deciding.evidence:
        return None
    out = Text()
    out.append(f"deciding oracle {deciding.name}: ", style="bold yellow")
    out.append(deciding.explanation + "\n")
    for item in deciding.evidence:
        out.append("  ★ ", style="bold yellow")
        out.append(view.clock.evidence(item), style=_EVIDENCE)
        out.append("\n")
    out.rstrip()
    return out


def _note_width(view: RunView, width: int) -> int:
    """The right column: wide enough for the longest error word (``connection_closed``), so
    errors are read whole; at most a quarter of the line."""
    errors = [c.error for lane in view.lanes for c in lane.of_kind("call") if c.error]
    errors += [row.error for row in view.spans if row.error]
    longest = max((len(e) for e in errors), default=0)
    return max(8, min(longest, width // 4))


def waterfall(view: RunView, *, focus: Focus | None = None, width: int = 80) -> Group:
    """The whole terminal view as one rich renderable, laid out for ``width`` columns."""
    name_width = max(18, min(40, width // 3))
    note_width = _note_width(view, width)
    bar_width = max(10, width - name_width - note_width - 3)
    scale = _Scale(view.start, view.end, bar_width)
    parts: list[RenderableType] = [_header(view), Rule(style="dim")]
    parts.append(_lanes(view, focus, scale, name_width, note_width))
    symbols = "  ".join(
        f"{SYMBOLS[k]} {k}" for k in ("reconnect", "compaction", "fault", "api_error", "leak")
    )
    lanes_legend = "─ alive  ▒ LLM call  █ MCP tool  ═ local tool  ▁▃▅█ in flight  red: error"
    parts.append(Text(lanes_legend, style="dim"))
    parts.append(Text(f"{symbols}  yellow: evidence", style="dim"))
    parts.append(Rule(style="dim"))
    parts.append(_spans(view, focus, scale, name_width, note_width))
    parts.append(Rule("markers", style="dim"))
    parts.append(_markers(view, focus))
    parts.append(Rule("oracles", style="dim"))
    parts.append(_verdicts(view))
    evidence = _evidence(view)
    if evidence is not None:
        parts.append(evidence)
    return Group(*parts)


def render(view: RunView, console: Console, *, focus: Focus | None = None) -> None:
    """Print the waterfall on ``console`` at its width. Every text of the run (span names,
    attributes, sentences) is shown with its control characters escaped, never obeyed."""
    console.print(waterfall(printable_data(view), focus=focus, width=console.width))
