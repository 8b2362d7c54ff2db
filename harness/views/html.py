"""The HTML report: one self-contained page (inline CSS and script, no URL at all).

The page is drawn here, server side, so it is complete without its script; the script adds
zoom (buttons, Ctrl/Alt + wheel), finer time ticks and the detail pane. Every text comes from
files and is escaped.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

from harness.telemetry.semconv import HARNESS_MCP_SERVER
from harness.views._assets import SCRIPT, STYLE
from harness.views.model import Interval, Lane, Marker, RunView, SpanRow, iter_markers
from harness.views.terminal import SYMBOLS

__all__ = ["render_html"]

_GROUPS = (
    ("agent", "Agents"),
    ("server", "MCP servers"),
    ("faults", "Faults"),
    ("scheduler", "Scheduler"),
)
_AGENT_H = 30
_SERVER_TOP = 32
_CALL_ROW = 15
_LEVEL_TOP = 10
_LEVEL_H = 20


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _detail(data: Any) -> str:
    return _e(json.dumps(data, default=str))


_MIN_SPAN = 1e-6


class _Page:
    def __init__(self, view: RunView) -> None:
        self.view = view
        self.clock = view.clock
        self.start = view.start
        # A run shorter than a microsecond (a subnormal timeout) is drawn one microsecond long:
        # the axis below divides by the span and takes its logarithm.
        self.span = max(view.duration, _MIN_SPAN) if view.duration > 0 else 1.0
        # A run often ends at its deciding moment (the reconnect at 150 s): the axis then runs
        # on past the end, so that moment's markers have room instead of piling up at the edge.
        deciding = [m.time for _, m in iter_markers(view) if m.deciding]
        deciding += [row.start for row in view.spans if row.deciding]
        if deciding and max(deciding) >= self.start + 0.85 * self.span:
            self.span *= 1.15

    def pct(self, t: float) -> float:
        return round((t - self.start) / self.span * 100, 4)

    def width(self, start: float, end: float) -> float:
        return round(max(end - start, 0.0) / self.span * 100, 4)

    # pieces ----------------------------------------------------------------------------------

    def interval(self, item: Interval, *, style: str = "") -> str:
        classes = ["iv", item.kind]
        if item.kind == "tool" and not item.detail.get(HARNESS_MCP_SERVER):
            classes.append("local")
        if item.error:
            classes.append("err")
        title = f"{item.label}: {self.clock.at(item.start)} → {self.clock.at(item.end)}"
        if item.error:
            title += f" ({item.error})"
        label = ""
        if item.kind in ("call", "tool"):
            text = f"{item.label} ({item.error})" if item.error else item.label
            label = f'<span class="lbl">{_e(text)}</span>'
        detail = {
            "what": item.label,
            "start": item.start,
            "end": item.end,
            **({"error": item.error} if item.error else {}),
            **item.detail,
        }
        return (
            f'<div class="{" ".join(classes)}" data-kind="{_e(item.kind)}" '
            f'style="left:{self.pct(item.start)}%;'
            f'width:{self.width(item.start, item.end)}%;{style}" '
            f'title="{_e(title)}" data-detail="{_detail(detail)}">{label}</div>'
        )

    def markers(self, markers: list[Marker]) -> str:
        out = []
        same_time: dict[float, int] = {}
        for marker in markers:
            index = same_time.get(marker.time, 0)
            same_time[marker.time] = index + 1
            # Markers at one instant fan out inward, so none is pushed off the track.
            left = self.pct(marker.time)
            shift = index * 17 if left < 50 else -index * 17
            classes = ["mk", f"mk-{marker.kind}"]
            if marker.error:
                classes.append("err")
            if marker.deciding:
                classes.append("deciding")
            title = f"{self.clock.at(marker.time)}: {marker.label}"
            if marker.evidence_of:
                title += f" (evidence: {', '.join(marker.evidence_of)})"
            detail = {
                "what": marker.label,
                "time": marker.time,
                **({"evidence of": list(marker.evidence_of)} if marker.evidence_of else {}),
                **marker.detail,
            }
            out.append(
                f'<div class="{" ".join(classes)}" data-kind="{_e(marker.kind)}" '
                f'style="left:{left}%;margin-left:{shift}px" '
                f'title="{_e(title)}" data-detail="{_detail(detail)}">'
                f"{_e(SYMBOLS.get(marker.kind, '•'))}</div>"
            )
        return "".join(out)

    def row(self, name: str, track: str, *, height: int, attrs: str = "", title: str = "") -> str:
        return (
            f'<div class="row"{attrs}><div class="name" title="{_e(title or name)}">{name}</div>'
            f'<div class="track" style="height:{height}px">{track}</div></div>'
        )

    def agent_lane(self, lane: Lane, depth: int) -> str:
        parts = [self.interval(i) for i in lane.intervals if i.kind in ("agent", "chat", "tool")]
        parts.append(self.markers(lane.markers))
        name = f"{'&nbsp;&nbsp;' * depth}{_e(lane.name)}"
        return self.row(
            name,
            "".join(parts),
            height=_AGENT_H,
            attrs=f' data-lane="agent:{_e(lane.name)}"',
            title=f"agent {lane.name} ({lane.key})",
        )

    def server_lane(self, lane: Lane) -> str:
        calls = lane.of_kind("call")
        rows = max((c.level for c in calls), default=-1) + 1
        top = max((i.level for i in lane.of_kind("in_flight")), default=1) or 1
        parts = [self.interval(c) for c in lane.of_kind("connection")]
        for window in lane.of_kind("in_flight"):
            h = max(3, round(window.level / top * _LEVEL_H))
            parts.append(
                self.interval(window, style=f"top:{_LEVEL_TOP + _LEVEL_H - h}px;height:{h}px")
            )
        for call in calls:
            parts.append(self.interval(call, style=f"top:{_SERVER_TOP + call.level * _CALL_ROW}px"))
        parts.append(self.markers(lane.markers))
        height = _SERVER_TOP + rows * _CALL_ROW + 4
        return self.row(
            f"{_e(lane.name)} <span class='muted'>(peak {lane.peak} in flight)</span>",
            "".join(parts),
            height=height,
            attrs=f' data-lane="server:{_e(lane.name)}"',
            title=f"MCP server {lane.name}",
        )

    def other_lane(self, lane: Lane) -> str:
        return self.row(
            _e(lane.name),
            self.markers(lane.markers),
            height=20,
            attrs=f' data-lane="{_e(lane.kind)}:{_e(lane.name)}"',
        )

    def span_row(self, row: SpanRow) -> str:
        classes = ["iv", "span", row.category]
        name_classes = ["span-name"]
        if row.error:
            classes.append("err")
            name_classes.append("err")
        if row.deciding:
            classes.append("deciding")
            name_classes.append("deciding")
        title = f"{row.name}: {self.clock.at(row.start)} → {self.clock.at(row.end)}"
        if row.error:
            title += f" ({row.error})"
        detail = {
            "span": row.name,
            "span_id": row.span_id,
            "start": row.start,
            "end": row.end,
            **({"error": row.error} if row.error else {}),
            **({"agent": row.agent} if row.agent else {}),
            **row.attributes,
        }
        bar = (
            f'<div class="{" ".join(classes)}" style="left:{self.pct(row.start)}%;'
            f'width:{self.width(row.start, row.end)}%" title="{_e(title)}" '
            f'data-detail="{_detail(detail)}"></div>'
        )
        name = (
            f'<span class="{" ".join(name_classes)}">{"&nbsp;&nbsp;" * row.depth}'
            f"{_e(row.name)}</span>"
        )
        return self.row(name, bar, height=18, attrs=' data-span="1"', title=row.name)

    # sections --------------------------------------------------------------------------------

    def header(self) -> str:
        meta = self.view.meta
        met = bool(meta.get("met"))
        badge = "good" if met else "bad"
        description = meta.get("description") or ""
        replay = meta.get("replay") or ""
        return (
            "<header>"
            f"<h1>{_e(meta.get('scenario'))} "
            f"<span class='badge'>{_e(meta.get('policy'))}</span>"
            f"<span class='badge'>seed {_e(meta.get('seed'))}</span>"
            f"<span class='badge'>{_e(meta.get('mode'))}</span></h1>"
            f"<div>outcome <span class='badge {badge}' id='outcome'>"
            f"{_e(meta.get('outcome'))}</span>"
            f" expected <b>{_e(meta.get('expected'))}</b> — "
            f"{'as expected' if met else 'NOT as expected'}</div>"
            + (
                f"<div class='bad' id='error'>error: {_e(meta['error'])}</div>"
                if meta.get("error")
                else ""
            )
            + f"<div>{_e(meta.get('explanation') or '')}</div>"
            f"<div class='muted'>{_e(description)}</div>"
            f"<div class='muted'>run clock {self.clock.at(self.view.start)} → "
            f"{self.clock.at(self.view.end)}"
            + (f" · replay: <code>{_e(replay)}</code>" if replay else "")
            + "</div></header>"
        )

    def verdicts(self) -> str:
        rows = []
        for verdict in self.view.verdicts:
            evidence = "<br>".join(_e(self.clock.evidence(item)) for item in verdict.evidence)
            rows.append(
                f"<tr class='{'deciding' if verdict.deciding else ''}' "
                f"data-oracle='{_e(verdict.name)}'>"
                f"<td>{'★ ' if verdict.deciding else ''}<code>{_e(verdict.name)}</code></td>"
                f"<td class='{_e(verdict.verdict)}'>{_e(verdict.verdict)}</td>"
                f"<td>{_e(verdict.explanation)}"
                + (f"<div class='evidence'>{evidence}</div>" if evidence else "")
                + "</td></tr>"
            )
        return (
            "<section id='verdicts'><h2>Oracle verdicts</h2><table class='grid'>"
            "<tr><th>oracle</th><th>verdict</th><th>sentence and evidence</th></tr>"
            + "".join(rows)
            + "</table></section>"
        )

    def api_errors(self) -> str:
        if not self.view.api_errors:
            return (
                "<section id='api-errors'><h2>API journal errors</h2>"
                "<p class='muted'>Every API request was accepted.</p></section>"
            )
        rows = "".join(
            f'<tr data-detail="{_detail(err)}"><td>{_e(err.get("seq"))}</td>'
            f"<td>{self.clock.at(float(err.get('time') or 0.0))}</td>"
            f"<td>{_e(err.get('agent') or '')}</td>"
            f"<td>{_e(err.get('status'))} {_e(err.get('type') or '')}</td>"
            f"<td>{_e(err.get('message') or err.get('fault') or '')}</td></tr>"
            for err in self.view.api_errors
        )
        return (
            "<section id='api-errors'><h2>API journal errors (tool pairing and faults)</h2>"
            "<table class='grid'><tr><th>seq</th><th>time</th><th>agent</th><th>status</th>"
            f"<th>message</th></tr>{rows}</table></section>"
        )

    def timeline(self) -> str:
        groups = []
        depth: dict[str, int] = {}
        for kind, title in _GROUPS:
            lanes = self.view.lanes_of(kind)  # type: ignore[arg-type]
            if not lanes:
                continue
            rows = []
            for lane in lanes:
                if lane.kind == "agent":
                    d = depth[lane.name] = (
                        depth.get(lane.parent or "", -1) + 1 if lane.parent else 0
                    )
                    rows.append(self.agent_lane(lane, d))
                elif lane.kind == "server":
                    rows.append(self.server_lane(lane))
                else:
                    rows.append(self.other_lane(lane))
            groups.append(self.group(title, kind, rows))
        spans = [self.span_row(row) for row in self.view.spans]
        groups.append(self.group(f"Span tree ({len(spans)} spans)", "spans", spans))
        axis = self.row("<b>time</b>", self.ticks(), height=20, attrs="")
        return (
            "<section id='timeline'><h2>Timeline</h2>"
            "<div class='toolbar'><button id='zoom-out' type='button' title='Zoom out'>−</button>"
            "<button id='zoom-in' type='button' title='Zoom in'>+</button>"
            "<button id='zoom-fit' type='button' title='Fit the whole run'>fit</button>"
            "<button id='zoom-deciding' type='button' title='Zoom to the deciding evidence'>"
            "deciding moment</button>"
            "<span id='zoom-level'>1.0×</span>"
            "<span class='muted'>Ctrl/Alt + wheel zooms at the pointer (or open with "
            "#zoom=8, or #deciding); hover or click for details; click a group title to fold "
            "it.</span></div>"
            + self.legend()
            + "<div class='tl' id='timeline-scroll'><div class='tl-inner'>"
            + axis.replace('class="row"', 'class="row axis"', 1)
            + "".join(groups)
            + "</div></div></section>"
        )

    def group(self, title: str, kind: str, rows: list[str]) -> str:
        head = (
            f'<div class="row group-head"><div class="name">{_e(title)}</div>'
            '<div class="track"></div></div>'
        )
        return f'<div class="group" data-group="{_e(kind)}">{head}{"".join(rows)}</div>'

    def ticks(self) -> str:
        raw = self.span / 8
        magnitude = 10.0 ** math.floor(math.log10(raw))
        step = next((s * magnitude for s in (1, 2, 5) if s * magnitude >= raw), 10 * magnitude)
        first = math.ceil(self.start / step)
        # Ticks by index, not by adding steps: a step below the start's float resolution
        # would never advance.
        count = math.floor((self.start + self.span) / step + 1e-9) - first + 1
        out = []
        for index in range(max(0, min(count, 16))):
            t = (first + index) * step
            out.append(f'<div class="tick" style="left:{self.pct(t)}%">{self.clock.at(t)}</div>')
        return "".join(out)

    def legend(self) -> str:
        items = [
            ("var(--agent)", "agent alive"),
            ("var(--chat)", "LLM call"),
            ("var(--tool)", "MCP tool call"),
            ("#86efac", "local tool (e.g. waiting for a subagent)"),
            ("var(--mcp)", "calls in flight"),
            ("#f5d0fe", "connection generation"),
            ("var(--err)", "error"),
            ("var(--ev)", "deciding evidence"),
        ]
        swatches = "".join(
            f"<span><i class='sw' style='background:{color}'></i>{_e(text)}</span>"
            for color, text in items
        )
        symbols = "".join(
            f"<span>{_e(symbol)} {_e(kind.replace('_', ' '))}</span>"
            for kind, symbol in SYMBOLS.items()
        )
        return f"<div class='legend muted'>{swatches}{symbols}</div>"

    def page(self) -> str:
        meta = self.view.meta
        title = f"{meta.get('scenario')} · {meta.get('policy')} · seed {meta.get('seed')}"
        lanes = sum(1 for _ in self.view.lanes)
        return (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f"<title>{_e(title)} — Heisenharness run report</title>"
            f"<style>{STYLE}</style></head>"
            f"<body data-start='{self.view.start}' data-end='{self.view.start + self.span}' "
            f"data-lanes='{lanes}'{self.clock.script_attributes()}>"
            + self.header()
            + self.verdicts()
            + self.timeline()
            + self.api_errors()
            + "<aside id='detail'><b>Details</b> <span class='muted'>(hover or click an item)"
            "</span><div id='detail-body'></div></aside>"
            f"<script>{SCRIPT}</script></body></html>\n"
        )


def render_html(view: RunView) -> str:
    """The report page of ``view`` as one self-contained HTML document."""
    return _Page(view).page()
