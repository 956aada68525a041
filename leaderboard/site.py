"""Build the static site: index (models table, reasoning and consistency measures, bars, stage ablations, data
files, the paper's tables), one page per run (its ablation beside the paper's, accuracy-versus-step charts, and
each RL stage's own signals per step when the run's folder is here), a list of every log, the definitions of
every column, and paginated per-sample pages.

Templates render with autoescape on: model outputs, questions, labels and run names are untrusted text.
The site is written to a temporary folder beside `out_dir` and swapped in at the end, so a failed build
never leaves half a site; an existing folder is only replaced if an earlier build made it.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup, escape

from fleming.data_pins import short
from fleming.errors import DataError
from fleming.eval_rows import measured
from fleming.leaderboard import charts, measures, rl_curves, tables
from fleming.leaderboard.logs import collect
from fleming.leaderboard.pins import data_files
from fleming.leaderboard.reference import Reference, load_reference
from fleming.leaderboard.samples import read_samples

MARKER = ".fleming-leaderboard"
DEFAULT_TITLE = "fleming leaderboard"


def _environment() -> jinja2.Environment:
    """The template environment: packaged templates, autoescape always on, missing values are errors."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("fleming.leaderboard", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.1f}"
    env.filters["pm"] = lambda v: "" if v is None else f"±{100 * v:.1f}"
    env.filters["signed"] = lambda v: "" if v is None else f"{100 * v:+.1f}"
    env.filters["paper"] = lambda v, places=2, signed=False: f"{v:+.{places}f}" if signed else f"{v:.{places}f}"
    env.filters["short"] = lambda v: short(v) if isinstance(v, str) else ""
    env.filters["breakable"] = breakable
    return env


def breakable(text: Any) -> Markup:
    """Escape a name and let it wrap after each ``/`` (spaces and hyphens wrap anyway), never inside a word."""
    return Markup(str(escape(str(text))).replace("/", "/<wbr>"))


def _safe(text: Any, limit: int = 40) -> str:
    """A file-name-safe fragment of `text`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text or "")).strip("-.")[:limit] or "x"


def _hash(text: str) -> str:
    """A short stable hash used to keep file names unique."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def log_slug(row: dict[str, Any]) -> str:
    """The file-name stem of a log's sample pages."""
    parts = [row.get("benchmark") or "log", row.get("run"), row.get("stage"), row.get("step")]
    stem = "-".join(_safe(p, 30) for p in parts if p is not None and p is not pd.NA)
    return f"{stem}-{_hash(row['log'])}"


def run_page(run: str) -> str:
    """The path (from the site root) of a run's page."""
    return f"runs/{_safe(run)}-{_hash(run)}.html"


def _pages(slug: str, count: int) -> list[str]:
    """The paths (from the site root) of a log's `count` sample pages."""
    return [f"samples/{slug}.html" if i == 0 else f"samples/{slug}-p{i + 1}.html" for i in range(max(count, 1))]


def _check_target(out_dir: Path) -> None:
    """Refuse to replace a file, or a non-empty folder that an earlier build did not make."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a folder; choose another output folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise DataError(f"{out_dir}: folder is not empty and was not built by `fleming leaderboard` "
                        f"(no {MARKER} file); choose another output folder")


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace `out_dir` by the freshly built `tmp` folder."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{_hash(str(tmp))}")
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _copy_static(dest: Path) -> None:
    """Copy the packaged static assets (CSS) into the site."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in resources.files("fleming.leaderboard").joinpath("static").iterdir():
        if item.is_file() and not item.name.startswith("."):
            (dest / item.name).write_bytes(item.read_bytes())


def _progress(items: Sequence[Any], show: bool, description: str) -> Iterable[Any]:
    """Iterate `items`, with a rich progress bar on stderr when `show`."""
    if not show:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=description, console=Console(stderr=True), transient=True)


class _Writer:
    """Renders templates into the site folder with the shared context."""

    def __init__(self, root: Path, title: str) -> None:
        self.root, self.env = root, _environment()
        self.base = {"site_title": title,
                     "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}

    def write(self, rel: str, template: str, **context: Any) -> None:
        """Render `template` to the site path `rel`; links inside use `root` to reach the site root."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        depth = rel.count("/")
        html = self.env.get_template(template).render(root="../" * depth, page=rel, **self.base, **context)
        path.write_text(html, encoding="utf-8")


def _write_samples(writer: _Writer, row: dict[str, Any], max_samples: int, page_size: int,
                   max_chars: int) -> None:
    """Write one log's sample pages (`page_size` samples each, at most `max_samples` in all)."""
    views, total, problem = [], 0, None
    if row["status"] != "unreadable":
        try:
            views, total = read_samples(row["log"], max_samples, max_chars)
        except Exception as exc:  # a damaged log: say so on its page
            problem = " ".join(f"{type(exc).__name__}: {exc}".split())
    pages = _pages(log_slug(row), -(-len(views) // page_size))
    for i, rel in enumerate(pages):
        chunk = views[i * page_size:(i + 1) * page_size]
        writer.write(rel, "samples.html", row=row, samples=chunk, index=i, pages=pages, shown=len(views),
                     extra=measured([row]),
                     total=total, first=i * page_size + 1, max_chars=max_chars, problem=problem,
                     run_href=run_page(row["run"]) if row.get("run") else None)


def _checkpoint_order(row: dict[str, Any]) -> tuple[Any, ...]:
    """Sort key of a run's logs: pipeline order (stage_index, step), then benchmark."""
    index = row.get("stage_index")
    return (index if index is not None else 1 << 30, row.get("stage") or "",
            row["step"] if row.get("step") is not None else -1, row.get("benchmark") or "")


def _bars(strict: tables.Matrix) -> list[Any]:
    """One bar chart per benchmark: strict accuracy of every model that has it."""
    out = []
    for bench in strict.benchmarks:
        items = [(r.label, r.cells[bench].value, r.cells[bench].stderr) for r in strict.rows
                 if bench in r.cells and r.cells[bench].value is not None]
        if items:
            out.append(charts.bar_chart(bench, items))
    return out


def build_site(sources: Sequence[Path | str] | None, out_dir: Path | str, title: str = DEFAULT_TITLE, *,
               reference: Path | None = None, max_samples: int = 1000, page_size: int = 50,
               max_chars: int = 20000, progress: bool = False) -> Path:
    """Build the leaderboard from the Inspect logs in `sources` into `out_dir`; return its index.html.

    `sources`: run folders, folders of logs or log files (empty: every ``runs/*/eval``). Each log's sample
    pages hold `page_size` samples, at most `max_samples` per log, texts cut at `max_chars` characters.
    """
    frame = collect(sources)
    ref: Reference | None = load_reference(reference)
    out_dir = Path(out_dir)
    _check_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _render(frame, _Writer(tmp, title), ref, max_samples, page_size, max_chars, progress)
        _copy_static(tmp / "static")
        (tmp / MARKER).write_text("built by fleming leaderboard; this folder is replaced on the next build\n",
                                  encoding="utf-8")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "index.html"


def _render(frame: pd.DataFrame, writer: _Writer, ref: Reference | None, max_samples: int, page_size: int,
            max_chars: int, progress: bool) -> None:
    """Render every page of the site into the writer's folder."""
    rows = tables.records(frame)
    for row in rows:
        row["href"] = _pages(log_slug(row), 1)[0]
    links = {row["log"]: row["href"] for row in rows}
    matrices = tables.model_tables(frame, links)
    ablations = tables.stage_tables(frame, links)
    series = {s.run: s for s in tables.step_series(frame)}
    failed = [r for r in rows if r["status"] != "success"]
    runs = sorted({r["run"] for r in rows if r.get("run")})
    notes = ref.notes() if ref else {}
    per_stage = measures.stage_measures(frame, links)
    writer.write("index.html", "index.html", tables=matrices, metrics=tables.METRICS, bars=_bars(matrices["strict"]),
                 ablations=ablations, run_pages={r: run_page(r) for r in runs}, failed=failed, reference=ref,
                 counts={"logs": len(rows), "success": len(rows) - len(failed), "failed": len(failed)},
                 model_measures=measures.model_measures(frame, links), stage_measures=per_stage, notes=notes,
                 data_files=data_files(frame))
    by_order = sorted(rows, key=lambda r: (r.get("run") is None, r.get("run") or "", _checkpoint_order(r)))
    writer.write("logs.html", "logs.html", rows=by_order, run_pages={r: run_page(r) for r in runs},
                 extra=measured(rows))
    writer.write("definitions.html", "definitions.html")
    by_run = {t.run: t for t in ablations}
    for run in runs:
        run_series = series.get(run)
        chart_list = [charts.line_chart(s, run_series.checkpoints) for s in run_series.series] if run_series else []
        run_rows = sorted((r for r in rows if r.get("run") == run), key=_checkpoint_order)
        writer.write(run_page(run), "run.html", run=run, ablation=by_run.get(run), charts=chart_list,
                     checkpoints=run_series.checkpoints if run_series else [], stage_label=tables.stage_label,
                     rows=run_rows, extra=measured(run_rows), reference=ref, notes=notes,
                     stage_measures=per_stage.get(run), rl_stages=rl_curves.run_curves(run, run_rows))
    for row in _progress(rows, progress, "sample pages"):
        _write_samples(writer, row, max_samples, page_size, max_chars)
