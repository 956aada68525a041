"""A run's RL charts as standalone SVG files (for a README or a paper): each RL stage's four charts from its
``steps.jsonl`` and ``events.jsonl`` (mean reward per reward plugin, share of groups whose rewards are all
equal, mean completion length, clipped share), the same charts the leaderboard's run page shows, in a 2 x 2
grid with the site's chart styles inlined.

    python bench/rl_charts.py runs/quickstart --out docs

writes ``docs/<run>-<stage>.svg`` for each RL stage that recorded signals.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from fleming.leaderboard.rl_curves import stage_curves
from fleming.rl_signals import stage_signals

CSS = Path(__file__).resolve().parents[1] / "leaderboard" / "static" / "style.css"


def chart_styles(css: str) -> str:
    """The site's colour variables and its ``svg`` rules: what a chart needs outside the site."""
    root = re.search(r":root\s*{[^}]*}", css)
    rules = [line for line in css.splitlines() if line.lstrip().startswith("svg ")]
    return "\n".join([root.group(0) if root else "", *rules, "svg { font-family: sans-serif; }"])


def stage_svg(charts: list[str], styles: str, title: str) -> str:
    """The charts of one stage, two per row, in one SVG document."""
    width, height, cols = 420, 236, 2
    rows = (len(charts) + cols - 1) // cols
    parts = []
    for i, chart in enumerate(charts):
        x, y = (i % cols) * width, 24 + (i // cols) * height
        parts.append(chart.replace("<svg ", f'<svg x="{x}" y="{y}" ', 1))
    total_w, total_h = cols * width, 24 + rows * height
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
            f'viewBox="0 0 {total_w} {total_h}"><style>{styles}</style>'
            f'<rect width="100%" height="100%" fill="#fff"/>'
            f'<text x="8" y="17" class="chart-title">{title}</text>{"".join(parts)}</svg>\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the run's folder (runs/<recipe name>)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the SVG files go")
    args = parser.parse_args()
    styles = chart_styles(CSS.read_text(encoding="utf-8"))
    args.out.mkdir(parents=True, exist_ok=True)
    found = stage_signals(args.run)
    if not found:
        raise SystemExit(f"{args.run}: no RL stage recorded signals (no rl-*/steps.jsonl)")
    for signals in found:
        curves = stage_curves(signals)
        title = f"{args.run.name} / {signals.stage}: {curves.steps} GRPO steps"
        path = args.out / f"{args.run.name}-{signals.stage}.svg"
        path.write_text(stage_svg([str(c) for c in curves.charts], styles, title), encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
