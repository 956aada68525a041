"""Inline SVG charts drawn in Python: accuracy versus checkpoint, and horizontal bars per benchmark.

Every piece of text (labels, tooltips) is escaped; colours come from CSS classes in static/style.css.
The SVG needs no JavaScript and no external resource.
"""
from __future__ import annotations

from collections.abc import Sequence

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
