"""Inline SVG charts drawn in Python: accuracy versus checkpoint, horizontal bars per benchmark, and training
signals versus step with event markers.

Every piece of text (labels, tooltips) is escaped; colours come from CSS classes in static/style.css.
The SVG needs no JavaScript and no external resource.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from fleming.leaderboard.tables import Series, stage_label

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def _pct(value: float) -> str:
    """Format a fraction as a percentage with one decimal."""
    return f"{100 * value:.1f}%"


def _short(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(x: float, y: float, text: str, cls: str, anchor: str = "start") -> str:
    """An escaped SVG text element."""
    return f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'


def line_chart(series: Series, checkpoints: Sequence[tuple[str, int | None]], width: int = 380,
               height: int = 210) -> Markup:
    """Strict accuracy of one benchmark across a run's checkpoints, with stderr bars and stage bands."""
    left, right, top, bottom = 44, 12, 26, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(checkpoints), 1)

    def x_of(i: float) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y_of(v: float) -> float:
        return top + plot_h * (1 - min(max(v, 0.0), 1.0))

    parts = [_text(left, 16, series.benchmark, "chart-title")]
    for g in GRID:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y_of(g):.1f}" y2="{y_of(g):.1f}" class="grid"/>')
        parts.append(_text(left - 6, y_of(g) + 4, f"{int(g * 100)}%", "axis", "end"))
    start = 0
    for i in range(1, n + 1):
        if i == n or checkpoints[i][0] != checkpoints[start][0]:
            mid = (x_of(start) + x_of(i - 1)) / 2
            parts.append(_text(mid, height - 22, _short(stage_label(checkpoints[start][0]), 14), "axis", "middle"))
            if i < n:
                edge = (x_of(i - 1) + x_of(i)) / 2
                parts.append(f'<line x1="{edge:.1f}" x2="{edge:.1f}" y1="{top}" y2="{top + plot_h}" class="stage-edge"/>')
            start = i
    parts.append(_text(left + plot_w / 2, height - 6, "checkpoint (stage, then step)", "axis-note", "middle"))
    coords = [(x_of(x), y_of(v)) for x, v, _, _ in series.points]
    if len(coords) > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline points="{path}" class="series"/>')
    for (x, v, se, label), (cx, cy) in zip(series.points, coords):
        if se:
            parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y_of(v + se):.1f}" y2="{y_of(v - se):.1f}" '
                         f'class="whisker"/>')
        tip = f"{label}: {_pct(v)}" + (f" ± {100 * se:.1f}" if se else "")
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" class="point"><title>{escape(tip)}</title></circle>')
    label = f"{series.benchmark}: strict accuracy across {n} checkpoints"
    return Markup(f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')


def bar_chart(title: str, items: Sequence[tuple[str, float, float | None]], width: int = 560) -> Markup:
    """Horizontal bars (strict accuracy, 0-100 %) with stderr whiskers, one per labelled item."""
    left, right, top, bar_h, gap = 200, 60, 28, 16, 8
    height = top + len(items) * (bar_h + gap) + 10
    plot_w = width - left - right
    parts = [_text(0, 16, title, "chart-title")]
    for g in GRID:
        gx = left + plot_w * g
        parts.append(f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="{top - 4}" y2="{height - 8}" class="grid"/>')
    for i, (label, value, se) in enumerate(items):
        y = top + i * (bar_h + gap)
        w = plot_w * min(max(value, 0.0), 1.0)
        parts.append(f'<text x="{left - 8}" y="{y + bar_h - 4}" class="bar-label" text-anchor="end">'
                     f'<title>{escape(label)}</title>{escape(_short(label, 28))}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" class="bar"/>')
        if se:
            lo, hi = left + plot_w * max(value - se, 0), left + plot_w * min(value + se, 1)
            parts.append(f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{y + bar_h / 2}" y2="{y + bar_h / 2}" class="whisker"/>')
        parts.append(_text(left + plot_w + 6, y + bar_h - 4, _pct(value), "bar-value"))
    return Markup(f'<svg class="chart" role="img" aria-label="{escape(title)}: strict accuracy per model" '
                  f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')


@dataclass(frozen=True)
class Marker:
    """A vertical line at a step with a short label; `tip` is the full text shown on hover."""

    step: float
    label: str
    tip: str
    kind: str = "event"


def _ticks(lo: float, hi: float) -> list[float]:
    """Three to five round values spanning [lo, hi]."""
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1.0
    for mult in (1, 2, 2.5, 5, 10):
        if span / (step * mult) <= 4:
            step *= mult
            break
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _value(v: float, percent: bool) -> str:
    return f"{100 * v:.0f}%" if percent else f"{v:.3g}"


def step_chart(title: str, series: Sequence[tuple[str, Sequence[tuple[int, float]]]], markers: Sequence[Marker] = (),
               *, percent: bool = False, threshold: tuple[float, str] | None = None, width: int = 420,
               height: int = 236) -> Markup:
    """Values versus training step, one line per named series (each a CSS class ``s0``, ``s1`` ...), vertical
    markers at events and an optional dashed threshold line; points carry their value on hover."""
    legend_rows = -(-len(series) // 3) if len(series) > 1 else 0
    left, right, bottom = 48, 14, 30
    top = 24 + 11 * legend_rows + (24 if markers else 6)  # title, legend, then a band for the markers' labels
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, pts in series for _, v in pts] + ([threshold[0]] if threshold else [])
    steps = [s for _, pts in series for s, _ in pts] + [m.step for m in markers]
    x_lo, x_hi = min(steps, default=0), max(steps, default=1)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    lo, hi = (0.0, 1.0) if percent else (min(0.0, *values) if values else 0.0, max(values, default=1.0))
    hi = hi if hi > lo else lo + 1

    def x_of(step: float) -> float:
        return left + plot_w * (step - x_lo) / (x_hi - x_lo)

    def y_of(v: float) -> float:
        return top + plot_h * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    parts = [_text(left, 14, title, "chart-title")]
    for i, (name, _) in enumerate(series if len(series) > 1 else ()):
        lx = left + (i % 3) * (plot_w / 3)
        ly = 30 + 11 * (i // 3)
        parts.append(f'<line x1="{lx:.1f}" x2="{lx + 14:.1f}" y1="{ly - 3}" y2="{ly - 3}" class="series s{i % 6}"/>')
        parts.append(_text(lx + 18, ly, _short(name, 18), "legend"))
    for g in _ticks(lo, hi):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y_of(g):.1f}" y2="{y_of(g):.1f}" class="grid"/>')
        parts.append(_text(left - 6, y_of(g) + 4, _value(g, percent), "axis", "end"))
    for t in _ticks(x_lo, x_hi):
        parts.append(_text(x_of(t), top + plot_h + 14, f"{t:g}", "axis", "middle"))
    parts.append(_text(left + plot_w, height - 2, "step", "axis-note", "end"))
    if threshold is not None:
        ty = y_of(threshold[0])
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" class="threshold">'
                     f'<title>{escape(threshold[1])}</title></line>')
        parts.append(_text(left + 4, ty - 3, threshold[1], "threshold-label"))
    for i, m in enumerate(markers):
        mx = x_of(m.step)
        parts.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top - 22 + 11 * (i % 2)}" y2="{top + plot_h}" '
                     f'class="marker {m.kind}">'
                     f'<title>{escape(m.tip)}</title></line>')
        anchor = "end" if mx > left + plot_w * 0.8 else "start"
        parts.append(f'<text x="{mx + (-3 if anchor == "end" else 3):.1f}" y="{top - 14 + 11 * (i % 2)}" '
                     f'class="marker-label" text-anchor="{anchor}"><title>{escape(m.tip)}</title>'
                     f'{escape(_short(m.label, 26))}</text>')
    for i, (name, pts) in enumerate(series):
        coords = [(x_of(s), y_of(v), s, v) for s, v in pts]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)
            parts.append(f'<polyline points="{path}" class="series s{i % 6}"><title>{escape(name)}</title></polyline>')
        if len(coords) <= 60:
            for cx, cy, s, v in coords:
                tip = f"{name}, step {s}: " + (_pct(v) if percent else f"{v:.4g}")
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" class="point s{i % 6}">'
                             f'<title>{escape(tip)}</title></circle>')
    return Markup(f'<svg class="chart" role="img" aria-label="{escape(title)} per training step" width="{width}" '
                  f'height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')
