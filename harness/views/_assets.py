"""The report's inline stylesheet and script (the page loads nothing from anywhere)."""

from __future__ import annotations

__all__ = ["SCRIPT", "STYLE"]

STYLE = """
:root { --name-w: 230px; --zoom: 1; --bg: #fff; --fg: #1d2330; --mute: #6b7280;
  --line: #e5e7eb; --agent: #0e7490; --chat: #2563eb; --tool: #16a34a; --mcp: #a21caf;
  --err: #dc2626; --warn: #d97706; --ev: #facc15; }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
header, section { padding: 10px 16px; }
h1 { font-size: 18px; margin: 0 0 4px; }
h2 { font-size: 14px; margin: 0 0 6px; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px; font-weight: 600;
  font-size: 12px; background: #e5e7eb; margin-right: 4px; }
.badge.good { background: #dcfce7; color: #166534; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.muted { color: var(--mute); }
table.grid { border-collapse: collapse; width: 100%; }
table.grid th, table.grid td { text-align: left; vertical-align: top; padding: 3px 8px;
  border-bottom: 1px solid var(--line); }
tr.deciding td { background: #fef9c3; }
td.fails { color: var(--err); font-weight: 600; }
td.holds { color: var(--tool); font-weight: 600; }
.evidence { font-family: ui-monospace, Menlo, monospace; font-size: 11px; color: #374151; }
.toolbar { display: flex; gap: 6px; align-items: center; margin-bottom: 6px; }
.toolbar button { font: inherit; padding: 1px 9px; cursor: pointer; }
.legend span { margin-right: 12px; white-space: nowrap; }
.sw { display: inline-block; width: 12px; height: 8px; margin-right: 3px; }
.tl { overflow-x: auto; overflow-y: hidden; border: 1px solid var(--line); }
.tl-inner { width: calc(var(--name-w) + var(--zoom) * (100% - var(--name-w))); min-width: 100%; }
.row { display: flex; border-bottom: 1px solid #f3f4f6; }
.row .name { position: sticky; left: 0; z-index: 3; flex: 0 0 var(--name-w);
  width: var(--name-w); background: var(--bg); padding: 2px 6px; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; border-right: 1px solid var(--line); }
/* Room on both sides so a marker at the run's first or last instant is not clipped. */
.row .track { position: relative; flex: 1 1 auto; margin: 0 64px 0 12px; }
.group-head { background: #f9fafb; font-weight: 600; cursor: pointer; }
.group.collapsed > .row:not(.group-head) { display: none; }
.axis .track { height: 20px; }
.tick { position: absolute; top: 0; height: 100%; border-left: 1px solid var(--line);
  padding-left: 3px; font-size: 11px; color: var(--mute); white-space: nowrap; }
.iv { position: absolute; min-width: 3px; border-radius: 2px; height: 10px; }
.iv.agent { background: transparent; border-top: 2px solid var(--agent); height: 2px; top: 13px; }
.iv.chat { background: var(--chat); top: 3px; opacity: .85; }
.iv.tool { background: var(--tool); top: 15px; height: 13px; opacity: .85; }
.iv.tool.local { background: #86efac; }
.iv.tool.local .lbl { color: #14532d; }
.iv.call { background: var(--tool); height: 13px; }
.iv .lbl { position: absolute; left: 3px; right: 0; top: -1px; font-size: 10px; color: #fff;
  white-space: nowrap; overflow: hidden; pointer-events: none; }
.iv.connection { background: #f5d0fe; height: 6px; top: 2px; border-left: 2px solid var(--mcp); }
.iv.in_flight { background: var(--mcp); opacity: .55; border-radius: 0; }
.iv.span { height: 10px; top: 4px; background: #94a3b8; }
.iv.span.agent { background: var(--agent); border: 0; }
.iv.span.chat { background: var(--chat); }
.iv.span.tool { background: var(--tool); }
.iv.span.mcp { background: var(--mcp); opacity: .7; }
.iv.span.http { background: #60a5fa; }
.iv.span.reconnect, .iv.span.compaction { background: var(--warn); }
.iv.span.fault { background: var(--err); }
.iv.err, .iv.span.err { background: var(--err); border-color: var(--err); }
.iv.deciding, .mk.deciding { outline: 3px solid var(--ev); outline-offset: 1px; z-index: 2; }
.mk { position: absolute; top: 1px; z-index: 2; transform: translateX(-50%); font-size: 14px;
  line-height: 16px; width: 16px; text-align: center; border-radius: 8px; background: #fff7ed;
  color: var(--warn); border: 1px solid var(--warn); cursor: default; }
.mk.err { color: #fff; background: var(--err); border-color: var(--err); }
.mk.deciding { box-shadow: 0 0 0 3px var(--ev); }
[data-detail] { cursor: pointer; }
.span-name { font-family: ui-monospace, Menlo, monospace; font-size: 11px; }
.span-name.err { color: var(--err); }
.span-name.deciding { background: var(--ev); }
#detail { position: sticky; bottom: 0; z-index: 10; background: #f8fafc;
  border-top: 2px solid var(--line);
  padding: 6px 16px; max-height: 22vh; overflow: auto; }
#detail .kv { display: inline-block; margin: 0 16px 2px 0; font-size: 12px; }
#detail .kv b { color: var(--mute); font-weight: 500; }
"""

# The script only lays out and explains what the server-side HTML already holds; the page is
# complete without it. It records its own errors on <body> so a headless browser can check it.
SCRIPT = """
(function () {
  "use strict";
  var body = document.body;
  var errors = [];
  window.addEventListener("error", function (ev) {
    errors.push(String(ev.message));
    body.setAttribute("data-js-errors", errors.join(" | "));
  });
  var root = document.documentElement;
  var tl = document.getElementById("timeline-scroll");
  var t0 = parseFloat(body.getAttribute("data-start"));
  var t1 = parseFloat(body.getAttribute("data-end"));
  var zoom = 1;
  var zoomLabel = document.getElementById("zoom-level");

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  // A moment of the run, as RunClock.at draws it: the time of day on the scenario's clock for
  // a long run with a start (data-origin), else seconds into the run.
  var origin = body.hasAttribute("data-origin") ?
    parseFloat(body.getAttribute("data-origin")) : null;
  var offset = parseFloat(body.getAttribute("data-origin-offset") || "0");
  function at(s) {
    if (origin !== null) {
      var moment = new Date((origin + offset + s) * 1000);
      var text = pad(moment.getUTCHours()) + ":" + pad(moment.getUTCMinutes()) + ":" +
        pad(moment.getUTCSeconds());
      var tenths = Math.floor(moment.getUTCMilliseconds() / 100);
      text = tenths ? text + "." + tenths : text;
      var days = Math.round((Date.UTC(moment.getUTCFullYear(), moment.getUTCMonth(),
        moment.getUTCDate()) - Math.floor((origin + offset) / 86400) * 86400000) / 86400000);
      return days ? text + " (+" + days + " d)" : text;
    }
    var a = Math.abs(s);
    if (a >= 3600) {
      var whole = Math.round(s);
      return "T+" + Math.floor(whole / 3600) + ":" + pad(Math.floor(whole % 3600 / 60)) + ":" +
        pad(whole % 60);
    }
    if (s === Math.round(s)) return s.toFixed(0) + " s";
    if (a < 1) return (s * 1000).toFixed(0) + " ms";
    return s.toFixed(1) + " s";
  }

  function niceStep(range, count) {
    var raw = range / Math.max(count, 1);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * mag >= raw) return steps[i] * mag;
    }
    return 10 * mag;
  }

  function drawTicks() {
    var track = document.querySelector(".axis .track");
    if (!track) return;
    while (track.firstChild) track.removeChild(track.firstChild);
    var range = t1 - t0;
    var step = niceStep(range, 8 * zoom);
    var first = Math.ceil(t0 / step);
    // By index, not t += step: a step below t0's float resolution would never advance.
    for (var i = 0; i < 4096; i++) {
      var t = (first + i) * step;
      if (t > t1 + 1e-9) break;
      var tick = document.createElement("div");
      tick.className = "tick";
      tick.style.left = ((t - t0) / range * 100) + "%";
      tick.textContent = at(t);
      track.appendChild(tick);
    }
  }

  function setZoom(next, anchorX) {
    next = Math.max(1, Math.min(next, 512));
    var nameW = document.querySelector(".row .name").offsetWidth;
    var x = anchorX === undefined ? (tl.clientWidth - nameW) / 2 : anchorX;
    var before = (tl.scrollLeft + x) / zoom;
    zoom = next;
    root.style.setProperty("--zoom", String(zoom));
    tl.scrollLeft = before * zoom - x;
    zoomLabel.textContent = zoom.toFixed(zoom < 10 ? 1 : 0) + "×";
    drawTicks();
  }

  document.getElementById("zoom-in").addEventListener("click", function () { setZoom(zoom * 2); });
  document.getElementById("zoom-out").addEventListener("click", function () { setZoom(zoom / 2); });
  document.getElementById("zoom-fit").addEventListener("click", function () { setZoom(1); });

  // Zoom to the deciding evidence with its surroundings (a quarter of the run, or more when
  // the evidence is spread) and centre it: in a long run it is otherwise a sliver.
  function zoomToDeciding() {
    var items = document.querySelectorAll(".mk.deciding, .iv.deciding");
    if (!items.length) return false;
    var lo = 100, hi = 0;
    Array.prototype.forEach.call(items, function (el) {
      var left = parseFloat(el.style.left) || 0;
      lo = Math.min(lo, left);
      hi = Math.max(hi, left + (parseFloat(el.style.width) || 0));
    });
    var window_ = Math.min(100, Math.max((hi - lo) * 2, 25));
    setZoom(100 / window_);
    var track = document.querySelector(".axis .track");
    var nameW = document.querySelector(".row .name").offsetWidth;
    var x = track.getBoundingClientRect().left - tl.getBoundingClientRect().left + tl.scrollLeft;
    var centre = x + (lo + hi) / 200 * track.offsetWidth;
    tl.scrollLeft = Math.max(0, centre - nameW - (tl.clientWidth - nameW) / 2);
    return true;
  }
  document.getElementById("zoom-deciding").addEventListener("click", zoomToDeciding);
  tl.addEventListener("wheel", function (ev) {
    if (!(ev.ctrlKey || ev.altKey || ev.metaKey)) return;
    ev.preventDefault();
    var rect = tl.getBoundingClientRect();
    var nameW = document.querySelector(".row .name").offsetWidth;
    var x = Math.max(0, ev.clientX - rect.left - nameW);
    setZoom(zoom * (ev.deltaY < 0 ? 1.25 : 0.8), x);
  }, { passive: false });

  Array.prototype.forEach.call(document.querySelectorAll(".group-head"), function (head) {
    head.addEventListener("click", function () {
      head.parentNode.classList.toggle("collapsed");
    });
  });

  var pane = document.getElementById("detail-body");
  function show(el) {
    var data;
    try { data = JSON.parse(el.getAttribute("data-detail")); } catch (e) { return; }
    var list = document.createElement("div");
    Object.keys(data).forEach(function (key) {
      var item = document.createElement("span");
      var k = document.createElement("b");
      var value = data[key];
      item.className = "kv";
      k.textContent = key;
      item.appendChild(k);
      item.appendChild(document.createTextNode(
        " " + (typeof value === "string" ? value : JSON.stringify(value))));
      list.appendChild(item);
    });
    while (pane.firstChild) pane.removeChild(pane.firstChild);
    pane.appendChild(list);
  }
  document.addEventListener("mouseover", function (ev) {
    var el = ev.target.closest && ev.target.closest("[data-detail]");
    if (el) show(el);
  });
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest && ev.target.closest("[data-detail]");
    if (el) show(el);
  });

  // The pane opens on the deciding evidence, the first thing a reader wants to see.
  var deciding = document.querySelector(".mk.deciding[data-detail], .iv.deciding[data-detail]");
  if (deciding) show(deciding);
  // A link can open the page zoomed: report.html#zoom=8
  var asked = /zoom=([0-9.]+)/.exec(window.location.hash);
  if (asked) {
    setZoom(parseFloat(asked[1]));
  } else if (!(/deciding/.test(window.location.hash) && zoomToDeciding())) {
    drawTicks();
  }
  var lanes = document.querySelectorAll("[data-lane]").length;
  var expected = parseInt(body.getAttribute("data-lanes"), 10);
  if (lanes === expected && errors.length === 0) {
    body.setAttribute("data-selfcheck", "ok");
  } else {
    body.setAttribute("data-selfcheck", "failed: " + lanes + " of " + expected + " lanes");
  }
})();
"""
