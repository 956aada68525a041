"""The leaderboard: real Inspect logs (a tiny task on mockllm/model) in, a static site out.

Two runs x four stages (base, cold_start, rl-stage1, rl-stage2) x a couple of steps x two benchmarks, plus
two plain logs without fleming metadata and one failed log. Accuracies are chosen per log, so every
number in the tables can be checked against what was put in.
"""
from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from fleming.errors import DataError

N = 4  # samples per log
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
BENCHES = ("medqa", "pubmedqa")
# (stage, stage_index, step, final) in pipeline order
CHECKPOINTS = [("base", 0, None, True), ("cold_start", 1, 10, False), ("cold_start", 1, 20, True),
               ("rl-stage1", 2, 5, False), ("rl-stage1", 2, 10, True), ("rl-stage2", 3, 5, False),
               ("rl-stage2", 3, 10, True)]
# strictly correct answers out of N, per (run, benchmark), one per checkpoint above
CORRECT = {("alpha", "medqa"): [1, 0, 2, 2, 3, 3, 4], ("alpha", "pubmedqa"): [0, 1, 1, 2, 2, 3, 3],
           ("beta", "medqa"): [2, 1, 2, 3, 3, 2, 3], ("beta", "pubmedqa"): [1, 1, 2, 2, 2, 4, 4]}
LENIENT_EXTRA = 1  # one more sample per log is right only under the lenient reading, when room is left


def _plan(correct: int) -> list[str]:
    """Completions for N samples (target always A): `correct` strict hits, a lenient-only hit, then misses."""
    outs = ["Reasoning... <answer>A</answer>"] * correct
    if len(outs) < N:
        outs.append("The answer is A. Answer: A")
    while len(outs) < N:
        outs.append("<answer>B</answer>" if len(outs) % 2 else "I cannot decide.")
    return outs


def _expected(outs: list[str]) -> dict[str, float]:
    """Strict, lenient and no-answer rates of a plan, computed the way the test scorer scores."""
    strict = sum("<answer>A</answer>" in o for o in outs) / N
    lenient = sum("<answer>A</answer>" in o or "Answer: A" in o for o in outs) / N
    none = sum(not re.search(r"<answer>[A-D]</answer>|Answer: [A-D]", o) for o in outs) / N
    return {"strict": strict, "lenient": lenient, "no_answer": none}


def _scorer() -> Any:
    """A scorer with the fleming value shape {strict, lenient, no_answer} and the contract's metrics."""
    from inspect_ai.scorer import Score, Target, accuracy, mean, scorer, stderr
    from inspect_ai.solver import TaskState

    @scorer(metrics={"strict": [accuracy(), stderr()], "lenient": [accuracy(), stderr()], "no_answer": [mean()]})
    def mcq() -> Any:
        async def score(state: TaskState, target: Target) -> Score:
            text = state.output.completion
            strict = re.search(r"<answer>([A-D])</answer>", text)
            loose = strict or re.search(r"Answer: ([A-D])", text)
            letter = loose.group(1) if loose else None
            return Score(value={"strict": float(bool(strict) and strict.group(1) == target.text),
                                "lenient": float(letter == target.text), "no_answer": float(letter is None)},
                         answer=letter)
        return score
    return mcq()


def _task(name: str, outs: list[str], meta: dict[str, Any] | None, questions: list[str] | None = None) -> Any:
    """A tiny Inspect task whose mockllm model answers with `outs`, in sample order."""
    from inspect_ai import Task
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    def output(text: str) -> ModelOutput:
        o = ModelOutput.from_content("mockllm/model", text)
        o.usage = ModelUsage(input_tokens=5, output_tokens=5, total_tokens=10)
        return o

    options = {"A": "Marfan syndrome", "B": "Ehlers-Danlos syndrome", "C": "Homocystinuria", "D": "Stickler syndrome"}
    samples = [Sample(input=(questions or [])[i] if questions and i < len(questions) else f"Question {i}: which?",
                      target="A", choices=list(options.values()), id=f"{name}-{i}",
                      metadata={"id": f"q{i}", "letters": "ABCD", "options": options, "subject": "genetics",
                                "source": name})
               for i in range(N)]
    model = get_model("mockllm/model", custom_outputs=[output(o) for o in outs], memoize=False)
    return Task(dataset=samples, scorer=_scorer(), name=f"fleming/{name}", model=model,
                metadata={"fleming": meta} if meta is not None else None)


def build_logs(root: Path) -> dict[str, Any]:
    """Run the tiny tasks into `root` (run folders runs/<run>/eval plus a plain log folder); return the plan."""
    from inspect_ai import eval as inspect_eval

    expected: dict[tuple[str, str, str, int | None], dict[str, float]] = {}
    per_dir: dict[Path, list[Any]] = {}
    for (run, bench), hits in CORRECT.items():
        for (stage, index, step, final), correct in zip(CHECKPOINTS, hits):
            outs = _plan(correct)
            questions = None
            if (run, bench, stage) == ("alpha", "medqa", "base"):
                outs[0] = f"Thinking {SCRIPT} and {IMG} done. <answer>A</answer>"
                questions = [f"Which syndrome? {SCRIPT}"]
            expected[(run, bench, stage, step)] = _expected(outs)
            meta = {"run": run, "stage": stage, "stage_index": index, "step": step, "final": final,
                    "model": f"{run} {stage}" + (f" step {step}" if step is not None else ""),
                    "model_path": f"/ckpt/{run}/{stage}/{step}"}
            folder = root / "runs" / run / "eval" / (stage if run == "alpha" else "")  # alpha: logs in subfolders
            per_dir.setdefault(folder, []).append(_task(bench, outs, meta, questions))
    plain = [_plan(2), _plan(1)]
    per_dir[root / "plain"] = [_task("medqa", outs, None) for outs in plain]
    broken = _task("pubmedqa", ["<answer>A</answer>"], {"run": "alpha", "stage": "rl-stage2", "stage_index": 3,
                                                         "step": 15, "final": False, "model": "alpha broken"})
    per_dir[root / "runs" / "alpha" / "eval" / "rl-stage2"].append(broken)
    for folder, tasks in per_dir.items():
        fmt = "json" if folder.name == "plain" else "eval"  # both log formats
        inspect_eval(tasks, log_dir=str(folder), display="none", max_samples=1, max_tasks=16, log_realtime=False,
                     log_format=fmt)
    return {"expected": expected, "plain": [_expected(o) for o in plain]}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The logs of both runs, the plain logs and the failed one, with the numbers put in."""
    root = tmp_path_factory.mktemp("lb-logs")
    plan = build_logs(root)
    plan["root"] = root
    return plan


@pytest.fixture(scope="module")
def site(logs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built from both run folders and the plain log folder."""
    from fleming.leaderboard import build_site

    root = logs["root"]
    out = tmp_path_factory.mktemp("lb-site") / "site"
    index = build_site([root / "runs" / "alpha", root / "runs" / "beta", root / "plain"], out, "Test <b>board</b>",
                       page_size=3)
    assert index == out / "index.html"
    return out


class Cells(HTMLParser):
    """Collect table cells carrying data-value, by table id, row key and benchmark."""

    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.row: str | None = None
        self.cells: dict[tuple[str, str, str], float] = {}
        self.rows: dict[str, list[str]] = {}
        self.have: dict[tuple[str, str], int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("id")
        elif tag == "tr" and self.table and "data-row" in a:
            self.row = a["data-row"]
            self.rows.setdefault(self.table, []).append(self.row or "")
        elif tag == "td" and self.table and self.row is not None and "data-value" in a:
            key = a.get("data-bench") or "macro"
            self.cells[(self.table, self.row, key)] = float(a["data-value"] or "nan")
            if "data-have" in a:
                self.have[(self.table, self.row)] = int(a["data-have"] or 0)


def _parse(path: Path) -> Cells:
    parser = Cells()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_collect_reads_every_log_with_its_numbers(logs: dict[str, Any]) -> None:
    from fleming.leaderboard import collect

    root = logs["root"]
    df = collect([root / "runs" / "alpha", root / "runs" / "beta", root / "plain"])
    assert len(df) == len(logs["expected"]) + 2 + 1
    expected_cols = {"run", "stage", "stage_index", "step", "final", "model", "benchmark", "strict", "strict_stderr",
                     "lenient", "lenient_stderr", "no_answer", "samples", "log", "status"}
    assert expected_cols <= set(df.columns)
    ok = df[df["status"] == "success"]
    for rec in ok[ok["run"].notna()].to_dict("records"):
        step = None if rec["step"] is None or rec["step"] != rec["step"] else int(rec["step"])
        want = logs["expected"][(rec["run"], rec["benchmark"], rec["stage"], step)]
        assert rec["strict"] == pytest.approx(want["strict"])
        assert rec["lenient"] == pytest.approx(want["lenient"])
        assert rec["no_answer"] == pytest.approx(want["no_answer"])
        assert rec["samples"] == N
    failed = df[df["status"] != "success"]
    assert failed["status"].tolist() == ["error"] and "ran out of values" in failed["error"].iloc[0]
    plain = df[df["run"].isna()]
    assert len(plain) == 2 and plain["model_key"].nunique() == 2  # same model name, different model args
    assert all(path.endswith(".json") for path in plain["log"])


def test_models_table_matches_the_final_checkpoints(site: Path, logs: dict[str, Any]) -> None:
    cells = _parse(site / "index.html")
    expected = logs["expected"]
    for run in ("alpha", "beta"):
        for stage, _, step, final in CHECKPOINTS:
            key = f"path:/ckpt/{run}/{stage}/{step}"
            if not final:
                assert ("table-strict", key, "medqa") not in cells.cells  # intermediate: run pages only
                continue
            strict = [expected[(run, b, stage, step)]["strict"] for b in BENCHES]
            for bench, value in zip(BENCHES, strict):
                assert cells.cells[("table-strict", key, bench)] == pytest.approx(value)
                want = expected[(run, bench, stage, step)]
                assert cells.cells[("table-lenient", key, bench)] == pytest.approx(want["lenient"])
                assert cells.cells[("table-no_answer", key, bench)] == pytest.approx(want["no_answer"])
            assert cells.cells[("table-strict", key, "macro")] == pytest.approx(sum(strict) / 2)
            assert cells.have[("table-strict", key)] == 2


def test_macro_average_says_when_benchmarks_are_missing(site: Path, logs: dict[str, Any]) -> None:
    cells = _parse(site / "index.html")
    plain_rows = [r for r in cells.rows["table-strict"] if r.startswith("mockllm/model|")]
    assert len(plain_rows) == 2
    got = sorted(cells.cells[("table-strict", r, "macro")] for r in plain_rows)
    assert got == pytest.approx(sorted(p["strict"] for p in logs["plain"]))  # medqa only: mean over 1
    assert all(cells.have[("table-strict", r)] == 1 for r in plain_rows)
    html = (site / "index.html").read_text(encoding="utf-8")
    assert html.count("over 1/2") == 2 * 3  # strict, lenient and no-answer tables
    order = cells.rows["table-strict"]
    assert max(order.index(r) for r in order if r.startswith("path:")) < min(order.index(r) for r in plain_rows)


def test_stage_ablation_rows_follow_the_pipeline(site: Path, logs: dict[str, Any]) -> None:
    cells = _parse(site / "index.html")
    for i, run in enumerate(("alpha", "beta"), start=1):
        table = f"stages-{i}"
        assert cells.rows[table] == ["base", "cold_start", "rl-stage1", "rl-stage2"]
        for stage, _, step, final in CHECKPOINTS:
            if final:
                for bench in BENCHES:
                    want = logs["expected"][(run, bench, stage, step)]["strict"]
                    assert cells.cells[(table, stage, bench)] == pytest.approx(want)
    run_pages = sorted((site / "runs").glob("alpha-*.html"))
    assert len(run_pages) == 1
    text = run_pages[0].read_text(encoding="utf-8")
    assert text.count("<svg") == 2 and text.count('class="point"') == 2 * len(CHECKPOINTS)
    assert text.index("base") < text.index("+ cold start") < text.index("+ RL stage1") < text.index("+ RL stage2")


def test_failed_logs_are_listed_not_counted(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    failed = html[html.index('id="table-failed"'):]
    assert "alpha broken" in failed and "ran out of values" in failed
    assert "alpha broken" not in html[:html.index('id="not-counted"')]
    assert "alpha broken" in (site / "logs.html").read_text(encoding="utf-8")


def test_untrusted_text_is_escaped_everywhere(site: Path) -> None:
    pages = [p for p in site.rglob("*") if p.is_file()]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert SCRIPT not in text and "<img src=x" not in text and "<b>board</b>" not in text, page
        if page.suffix == ".html":
            assert "<script" not in text.lower(), page
    sample_pages = [p.read_text(encoding="utf-8") for p in (site / "samples").glob("medqa-alpha-base-*.html")]
    joined = "".join(sample_pages)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in joined
    assert "&lt;img src=x onerror=alert(2)&gt;" in joined
    assert "Test &lt;b&gt;board&lt;/b&gt;" in (site / "index.html").read_text(encoding="utf-8")


def test_no_external_urls_outside_the_reference_block(site: Path) -> None:
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        start = text.find('<section class="reference"')
        outside = text if start < 0 else text[:start] + text[text.index("</section>", start):]
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", outside, re.I), page
        assert not re.search(r'(href|src)="(https?:)?//', text, re.I), page
    assert (site / "static" / "style.css").is_file()


def test_a_stage_without_final_checkpoint_uses_its_latest_step(logs: dict[str, Any]) -> None:
    from fleming.leaderboard import collect
    from fleming.leaderboard.tables import stage_tables

    df = collect([logs["root"] / "runs" / "beta"])
    df.loc[df["stage"] == "rl-stage2", "final"] = False
    table = stage_tables(df, {})[0].matrix
    last = table.rows[-1]
    assert (table.rows[-1].sub, last.cells["medqa"].note) == ("rl-stage2", "no final checkpoint; step 10")
    assert last.cells["pubmedqa"].value == pytest.approx(logs["expected"][("beta", "pubmedqa", "rl-stage2", 10)]["strict"])


def test_unreadable_logs_are_listed(logs: dict[str, Any], tmp_path: Path) -> None:
    from fleming.leaderboard import build_site, collect

    folder = tmp_path / "mixed"
    shutil.copytree(logs["root"] / "plain", folder)
    (folder / "2026-01-01T00-00-00+00-00_medqa_broken.eval").write_bytes(b"not a zip")
    df = collect([folder])
    bad = df[df["status"] == "unreadable"]
    assert len(df) == 3 and len(bad) == 1 and bad["error"].iloc[0].startswith("not a readable Inspect log")
    html = build_site([folder], tmp_path / "site").read_text(encoding="utf-8")
    assert "not a readable Inspect log" in html[html.index('id="table-failed"'):]


def test_sample_pages_are_paginated_and_capped(logs: dict[str, Any], tmp_path: Path) -> None:
    from fleming.leaderboard import build_site

    out = tmp_path / "capped"
    build_site([logs["root"] / "plain"], out, max_samples=3, page_size=2, max_chars=12)
    pages = sorted((out / "samples").glob("*.html"))
    assert len(pages) == 2 * 2  # two logs, 3 samples each -> pages of 2 and 1
    first = next(p for p in pages if not p.stem.endswith("-p2")).read_text(encoding="utf-8")
    assert "Showing the first 3 of 4 samples" in first
    assert "more characters not shown" in first


def test_rebuild_replaces_only_a_site_it_built(logs: dict[str, Any], tmp_path: Path) -> None:
    from fleming.leaderboard import build_site

    out = tmp_path / "site"
    build_site([logs["root"] / "plain"], out)
    (out / "stale.html").write_text("old", encoding="utf-8")
    build_site([logs["root"] / "plain"], out)
    assert not (out / "stale.html").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(DataError, match="not built by"):
        build_site([logs["root"] / "plain"], other)
    assert (other / "notes.txt").read_text(encoding="utf-8") == "keep"


def test_cli_prints_the_site_and_one_line_errors(logs: dict[str, Any], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from fleming.cli import cli

    runner = CliRunner()
    out = tmp_path / "cli-site"
    result = runner.invoke(cli, ["leaderboard", str(logs["root"] / "runs" / "beta"), "--out", str(out),
                                 "--title", "Beta", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (out / "index.html").resolve().as_uri()
    assert "<title>Beta</title>" in (out / "index.html").read_text(encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, ["leaderboard", str(empty), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: no Inspect evaluation logs (.eval or .json) found in {empty}"]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["leaderboard"])
    assert result.exit_code == 1 and "no runs/*/eval folder here" in result.output
    (tmp_path / "runs").mkdir()
    shutil.copytree(logs["root"] / "runs" / "alpha", tmp_path / "runs" / "alpha")
    result = runner.invoke(cli, ["leaderboard", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "leaderboard" / "index.html").is_file()


def test_reference_block_is_labelled_and_cited(site: Path, tmp_path: Path, logs: dict[str, Any]) -> None:
    from fleming.leaderboard import build_site
    from fleming.leaderboard.reference import load_reference

    html = (site / "index.html").read_text(encoding="utf-8")
    block = html[html.index('<section class="reference"'):]
    assert "Reported in the paper, not measured here" in block and "2509.15279" in block
    packaged = load_reference()
    assert packaged is not None and all(m.scores for m in packaged.models)
    custom = tmp_path / "ref.json"
    data = packaged.model_dump()
    data.update(benchmarks=[{"key": "medqa", "label": "MedQA <x>"}],
                models=[{"name": "Example-7B", "scores": {"medqa": 12.5}}])
    custom.write_text(json.dumps(data), encoding="utf-8")
    index = build_site([logs["root"] / "plain"], tmp_path / "ref-site", reference=custom)
    text = index.read_text(encoding="utf-8")
    table = text[text.index('id="table-reference"'):]
    assert "Example-7B" in table and "12.5" in table and "MedQA &lt;x&gt;" in table
    custom.write_text('{"title": "x"}', encoding="utf-8")
    with pytest.raises(DataError, match="ref.json: authors"):
        build_site([logs["root"] / "plain"], tmp_path / "bad-ref", reference=custom)


def test_site_renders_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    sample_page = next(p for p in (site / "samples").glob("medqa-alpha-base-*.html") if not re.search(r"-p\d+$", p.stem))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                          "--disable-background-networking", "--disable-component-update",
                                          "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            dialogs: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            for target in (site / "index.html", sample_page, next((site / "runs").glob("*.html"))):
                page.goto(target.as_uri(), wait_until="load")
                assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 247, 250)"
                page.screenshot(path=str(tmp_path / f"{target.stem}.png"), full_page=True)
            page.goto(sample_page.as_uri(), wait_until="load")
            assert SCRIPT in page.locator("pre.completion").first.inner_text()
            assert IMG in page.locator("pre.completion").first.inner_text()
            assert page.locator("pre.completion script").count() == 0 and page.locator("main img").count() == 0
            assert problems == [] and dialogs == []
            assert (tmp_path / "index.png").stat().st_size > 10_000
        finally:
            browser.close()


def test_real_benchmark_task_log(benchmarks_dir: Path, tmp_path: Path) -> None:
    """A log of the real fleming/medqa task: name, subjects, prompt and answers reach the site."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from markupsafe import escape

    from fleming.leaderboard import build_site, collect
    from fleming.tasks import load_task

    def output(text: str) -> ModelOutput:
        o = ModelOutput.from_content("mockllm/model", text)
        o.usage = ModelUsage(input_tokens=5, output_tokens=5, total_tokens=10)
        return o

    first = json.loads((benchmarks_dir / "medqa_usmle_4opt_test.jsonl").open(encoding="utf-8").readline())
    replies = [f"<answer>{first['answer']}</answer>", f"So {SCRIPT}. Answer: C", "no idea"]
    meta = {"run": "real", "stage": "base", "stage_index": 0, "step": None, "final": True,
            "model": "smollm2", "model_path": "/models/smollm2"}
    model = get_model("mockllm/model", custom_outputs=[output(r) for r in replies], memoize=False)
    inspect_eval(load_task("medqa", data_dir=benchmarks_dir), model=model, limit=3, max_samples=1,
                 log_dir=str(tmp_path / "runs" / "real" / "eval"), display="none", metadata={"fleming": meta})
    row = collect([tmp_path / "runs" / "real"]).iloc[0]
    assert (row["benchmark"], row["status"], row["samples"], row["run"]) == ("medqa", "success", 3, "real")
    assert row["strict"] == pytest.approx(1 / 3) and row["no_answer"] == pytest.approx(2 / 3)
    assert row["strict_by_subject"]  # medqa's subject is the USMLE step
    build_site([tmp_path / "runs" / "real"], tmp_path / "site")
    page = next((tmp_path / "site" / "samples").glob("medqa-real-base-*.html")).read_text(encoding="utf-8")
    assert str(escape(first["question"][:40])) in page
    assert "&lt;script&gt;" in page and SCRIPT not in page
    assert "Strict accuracy by subject" in page and "lenient reading <b>C</b>" in page
