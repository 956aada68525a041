"""The leaderboard's reasoning columns, pinned data, audit marks on sample pages and the paper's tables, from
logs written by hand: one run (base, cold start, two RL stages) on the held-out items (audited) and on medqa
(accuracy only, its last log read another file), plus a consistency-only log."""
from __future__ import annotations

import csv
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from _hand_logs import BASIC, SHA_A, SHA_B, sample, write_log

SHARED_PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper"
STAGES = [("base", 0), ("cold_start", 1), ("rl-stage1", 2), ("rl-stage2", 3)]
LABELS = {"base": "HuggingFaceTB/SmolLM2-135M-Instruct", "cold_start": "quickstart/cold_start",
          "rl-stage1": "quickstart/rl-stage1", "rl-stage2": "quickstart/rl-stage2"}
KG = {"strict": [0.25, 0.5, 0.5, 0.75], "faithful_accuracy": [0.05, 0.2, 0.4, 0.6],
      "path_recall": [0.1, 0.3, 0.5, 0.7], "contradiction_rate": [0.4, 0.3, 0.2, 0.1]}
MEDQA = [0.5, 0.5, 0.75, 0.75]
PAPER_MODELS = ("DeepSeek-R1-671B", "Fleming-R1-7B", "Fleming-R1-32B", "Qwen2.5-7B", "HuatuoGPT-O1-7B")

TEXT = ("The patient has tall stature and lens dislocation, no intellectual disability. "
        "This suggests Marfan syndrome <script>alert(1)</script>. <answer>A</answer>")


def _at(word: str) -> tuple[int, int]:
    start = TEXT.index(word)
    return start, start + len(word)


def audit() -> dict[str, Any]:
    """An audit of TEXT with good, overlapping, out-of-range, malformed and hostile spans."""
    def link(word: str, kind: str, on_path: bool, name: str = "") -> dict[str, Any]:
        start, end = _at(word)
        return {"start": start, "end": end, "id": "HP:1", "name": name or word, "kind": kind, "on_path": on_path}

    supported = {"start": _at("lens dislocation")[0], "end": _at("Marfan syndrome")[1], "disease": "Marfan syndrome",
                 "relation": "has_phenotype", "target": "Ectopia lentis", "negated": False, "verdict": "supported"}
    return {"path_recall": 0.5, "path_entities": ["HP:1", "HP:2", "OMIM:154700", "HP:9"],
            "named": ["HP:1", "OMIM:154700"], "reasoning_end": TEXT.index("<answer>"),
            "links": [link("tall stature", "finding", True), link("lens dislocation", "phenotype", True),
                      link("Marfan syndrome", "disease", True),
                      link("syndrome", 'disease" onmouseover="alert(3)', False, "<img src=x onerror=alert(4)>"),
                      link("patient", "finding", False),
                      {"start": 5000, "end": 6000, "kind": "finding"}, {"start": "3", "end": None},
                      {"start": -10, "end": 3, "kind": "gene", "on_path": False}, {"start": 9, "end": 2}, "junk"],
            "claims": [supported,
                       {**dict(zip(("start", "end"), _at("no intellectual disability"))),
                        "disease": "Marfan <img src=x>", "relation": "has_phenotype",
                        "target": "Intellectual disability", "negated": True, "verdict": "contradicted"},
                       {"start": _at("tall")[0], "end": _at("tall")[1], "verdict": "<b>bogus"},
                       {"start": True, "end": 4, "verdict": "supported"}]}


def build(root: Path) -> Path:
    """Write the run's logs under root/runs/quick/eval; return the run folder."""
    folder = root / "runs" / "quick" / "eval"
    for i, (stage, index) in enumerate(STAGES):
        tag = {"run": "quick", "stage": stage, "stage_index": index, "step": 10, "final": True,
               "model": LABELS[stage], "model_path": f"/ckpt/{stage}"}
        when = f"2026-01-0{i + 1}T00:00:00+00:00"
        kg = {**BASIC, ("strict", "accuracy"): KG["strict"][i],
              **{(m, "mean"): KG[m][i] for m in ("faithful_accuracy", "path_recall", "contradiction_rate")},
              **{(m, "stderr"): 0.01 for m in ("faithful_accuracy", "path_recall", "contradiction_rate")}}
        samples = []
        if stage == "rl-stage2":
            kg[("reasoning_alone", "mean")] = 0.875
            samples = [sample(0, TEXT, audit=audit()), sample(1, "No audit here. <answer>A</answer>")]
        write_log(folder, "kg_heldout", kg, fleming=tag, data_sha256=SHA_A, created=when, samples=samples)
        write_log(folder, "medqa", {**BASIC, ("strict", "accuracy"): MEDQA[i]}, fleming=tag, created=when,
                  data_sha256=SHA_B if stage == "rl-stage2" else SHA_A)
    return root / "runs" / "quick"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("reasoning-logs"))


@pytest.fixture(scope="module")
def site(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fleming.leaderboard import build_site

    out = tmp_path_factory.mktemp("reasoning-site") / "site"
    build_site([run_dir], out)
    return out


class Tables(HTMLParser):
    """Every table by id: its header texts, its rows' data-row keys and cells with data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.row: str | None = None
        self.in_head = False
        self.heads: dict[str, list[str]] = {}
        self.rows: dict[str, list[str]] = {}
        self.cells: dict[tuple[str, str, str], dict[str, str | None]] = {}
        self.links: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("id") or "?"
        elif tag == "thead":
            self.in_head = True
        elif tag == "a" and self.in_head and self.table:
            self.links.setdefault(self.table, []).append(a.get("href") or "")
        elif tag == "tr" and self.table and "data-row" in a:
            self.row = a["data-row"]
            self.rows.setdefault(self.table, []).append(self.row or "")
        elif tag == "td" and self.table and self.row is not None:
            key = a.get("data-bench") or a.get("data-measure") or ("gain" if "data-gain" in a else None)
            if key:
                self.cells[(self.table, self.row, key)] = a

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self.in_head = False
        elif tag == "table":
            self.table, self.row = None, None

    def handle_data(self, data: str) -> None:
        if self.in_head and self.table and data.strip():
            self.heads.setdefault(self.table, []).append(data.strip())


def parse(path: Path) -> Tables:
    parser = Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_collect_reads_the_optional_measures_and_the_data_file(run_dir: Path) -> None:
    from fleming.leaderboard import collect

    df = collect([run_dir])
    kg = df[df["benchmark"] == "kg_heldout"].sort_values("stage_index")
    assert kg["path_recall"].tolist() == pytest.approx(KG["path_recall"])
    assert kg["reasoning_alone"].isna().tolist() == [True, True, True, False]
    medqa = df[df["benchmark"] == "medqa"].sort_values("stage_index")
    assert medqa["faithful_accuracy"].isna().all()
    assert medqa["data_differs"].tolist() == [False, False, False, True]
    assert set(df["data_common"]) == {SHA_A} and medqa["data_name"].iloc[0] == "medqa.jsonl"


def test_measure_columns_appear_only_where_measured_and_link_to_their_definitions(site: Path) -> None:
    tables = parse(site / "index.html")
    heads = tables.heads["table-measures"]
    assert heads[:2] == ["Model", "Benchmark"]
    assert ["strict acc", "faithful acc", "path recall", "contradiction rate"] == [
        h for h in heads if h in ("strict acc", "faithful acc", "path recall", "contradiction rate")]
    assert "reasoning alone" in heads and "consistent" not in heads and "flip rate" not in heads
    assert all(f"definitions.html#{f}" in tables.links["table-measures"]
               for f in ("strict", "faithful_accuracy", "path_recall", "contradiction_rate", "reasoning_alone"))
    assert all(key.startswith("path:") for key in tables.rows["table-measures"])  # kg_heldout rows only
    stage = "stage-measures-1"
    assert tables.rows[stage] == [f"{s}|kg_heldout" for s, _ in STAGES]
    for i, (s, _) in enumerate(STAGES):
        for m in ("faithful_accuracy", "path_recall", "contradiction_rate"):
            assert float(tables.cells[(stage, f"{s}|kg_heldout", m)]["data-value"] or "nan") == pytest.approx(KG[m][i])
    assert "data-value" not in tables.cells[(stage, "base|kg_heldout", "reasoning_alone")]  # shown as —
    definitions = (site / "definitions.html").read_text(encoding="utf-8")
    for anchor in ("strict", "lenient", "no_answer", "macro", "faithful_accuracy", "path_recall", "contradiction_rate",
                   "consistent", "flip_rate", "reasoning_alone", "data"):
        assert f'id="{anchor}"' in definitions
    run_page = next((site / "runs").glob("quick-*.html"))
    assert 'id="stage-measures"' in run_page.read_text(encoding="utf-8")


def test_a_log_with_only_consistency_shows_only_those_columns(tmp_path: Path) -> None:
    from fleming.leaderboard import build_site

    plain = tmp_path / "plain"
    write_log(plain, "medqa", BASIC, name="plain")
    text = build_site([plain], tmp_path / "a").read_text(encoding="utf-8")
    assert 'id="table-measures"' not in text and "faithful" not in text.split('id="reference"')[0]
    write_log(plain, "pubmedqa", {**BASIC, ("strict", "consistent"): 0.5, ("strict", "flip_rate"): 0.25}, name="k")
    tables = parse(build_site([plain], tmp_path / "b"))
    heads = tables.heads["table-measures"]
    assert "consistent" in heads and "flip rate" in heads and "faithful acc" not in heads
    assert len(tables.rows["table-measures"]) == 1


def test_the_data_hash_is_shown_per_benchmark_and_another_file_is_marked(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    tables = parse(site / "index.html")
    assert SHA_A[:12] in tables.heads["table-strict"]
    differs = [(k[1], k[2]) for k, a in tables.cells.items() if k[0] == "table-strict" and "data-differs" in a]
    assert differs == [("path:/ckpt/rl-stage2", "medqa")]
    assert tables.cells[("table-strict", "path:/ckpt/rl-stage2", "medqa")]["data-differs"] == SHA_B[:12]
    data = html[html.index('id="table-data"'):]
    assert data.index(SHA_A[:12]) < data.index(SHA_B[:12]) and "≠ data" in data
    assert "≠ data" in (site / "logs.html").read_text(encoding="utf-8")


def test_stage_ablation_shows_the_gain_over_base(site: Path) -> None:
    tables = parse(site / "index.html")
    base = (KG["strict"][0] + MEDQA[0]) / 2
    for i, (stage, _) in enumerate(STAGES):
        gain = float(tables.cells[("stages-1", stage, "gain")]["data-gain"] or "nan")
        assert gain == pytest.approx((KG["strict"][i] + MEDQA[i]) / 2 - base)


def test_the_paper_tables_sit_beside_the_measured_rows_never_among_them(site: Path) -> None:
    from fleming.leaderboard.reference import load_reference

    ref = load_reference()
    assert ref is not None and len(ref.models) == 11 and [len(a.rows) for a in ref.ablation] == [4, 3]
    ours = ["careqa", "jmed", "medbullets", "medmcqa", "medqa", "medxpertqa", "pubmedqa", "mmlu_pro_biology",
            "mmlu_pro_health"]
    assert [b.key for b in ref.benchmarks] == ours and all(set(m.scores) == set(ours) for m in ref.models)
    assert [r.stage for r in ref.ablation[0].rows] == ["base", "cold_start", "rl-stage1", "rl-stage2"]
    assert "10 options" in ref.notes()["medxpertqa"]
    html = (site / "index.html").read_text(encoding="utf-8")
    block = html[html.index('<section class="reference"'):]
    assert "Fleming-R1 paper, Table 3" in block and "Fleming-R1 paper, Table 4" in block
    assert 'id="note-medxpertqa"' in block
    tables = parse(site / "index.html")
    measured = [t for t in tables.rows if not t.startswith("table-reference")]
    assert measured and all(name not in row for t in measured for row in tables.rows[t] for name in PAPER_MODELS)
    outside = html[:html.index('<section class="reference"')]
    assert not any(name in outside for name in PAPER_MODELS)
    assert "Table 3" not in outside and "Table 4" in outside  # only the pointer to the paper's ablation
    assert tables.rows["table-reference"][:2] == ["DeepSeek-R1-671B", "GPT-OSS-120B"]
    assert all("quickstart" not in row for t in tables.rows if t.startswith("table-reference")
               for row in tables.rows[t])
    run_page = next((site / "runs").glob("quick-*.html")).read_text(encoding="utf-8")
    paper = run_page[run_page.index('<div class="reference"'):]
    assert run_page.index('id="stages"') < run_page.index('<div class="reference"')
    assert "Fleming-R1 paper, Table 4" in paper and "+ CoT cold start" in paper and "+7.9" in paper


def test_medxpertqa_numbers_beside_the_papers_carry_the_option_count_note(tmp_path: Path) -> None:
    from fleming.leaderboard import build_site

    write_log(tmp_path / "logs", "medxpertqa", BASIC, name="x")
    html = build_site([tmp_path / "logs"], tmp_path / "site").read_text(encoding="utf-8")
    measured = html[html.index('id="table-strict"'):html.index("</table>", html.index('id="table-strict"'))]
    assert 'href="index.html#note-medxpertqa"' in measured and "10 options" in measured


def test_the_reference_equals_the_papers_csv_files() -> None:
    from fleming.leaderboard.reference import load_reference

    if not (SHARED_PAPER / "table3_main_results.csv").is_file():
        pytest.skip(f"the paper's CSV transcriptions are not present ({SHARED_PAPER.parent.name}/paper/ is kept "
                    "outside the repository); the shipped reference.json is checked against them where they are")
    ref = load_reference()
    assert ref is not None
    keys = [b.key for b in ref.benchmarks]
    table3 = list(csv.DictReader((SHARED_PAPER / "table3_main_results.csv").open(encoding="utf-8")))
    assert [(m.tier, m.name) for m in ref.models] == [(r["tier"], r["model"]) for r in table3]
    for model, row in zip(ref.models, table3):
        assert model.scores == {k: float(row[k]) for k in keys} and model.average == float(row["avg"])
    table4 = list(csv.DictReader((SHARED_PAPER / "table4_ablation.csv").open(encoding="utf-8")))
    ours = [(group.size, stage) for group in ref.ablation for stage in group.rows]
    assert [size for size, _ in ours] == [r["size"] for r in table4]
    for (_, stage), row in zip(ours, table4):
        assert stage.scores == {k: float(row[k]) for k in keys}
        assert (stage.average, stage.gain) == (float(row["avg"]), float(row["delta_avg"]))
        assert stage.variant.replace(" ", "").lower() == row["variant"].replace(" ", "").lower()


def test_audit_segments_cover_the_text_whatever_the_offsets() -> None:
    from fleming.leaderboard.highlight import audit_view, kind_class

    view = audit_view(audit(), TEXT)
    assert view is not None and "".join(s.text for s in view.segments) == TEXT
    marked = {s.text: s.link for s in view.segments if s.link}
    assert marked["tall"] == marked[" stature"] == "finding on-path"
    assert marked["lens dislocation"] == "phenotype on-path"
    assert marked["Marfan "] == "disease on-path" and marked["patient"] == "finding"
    assert marked["syndrome"] == "other"  # the innermost link wins; its hostile kind is no class
    assert marked["The"] == "gene"  # clipped from -10
    claims = {s.text: s.claim for s in view.segments if s.claim}
    assert claims["no intellectual disability"] == "contradicted" and claims["tall"] == "unknown"
    assert claims["lens dislocation"] == "supported"
    assert [s.audited for s in view.segments][-1] is False and view.dropped == 5
    assert view.verdicts == ["supported", "contradicted"] and view.path_recall == 0.5
    assert audit_view(None, TEXT) is None and audit_view({"links": "x", "claims": 3}, TEXT) is not None
    assert [kind_class(k) for k in ("drug_class", "Phenotype", "x y")] == ["drug-class", "phenotype", "other"]
    ids = audit_view({"links": [{"start": 0, "end": 3, "id": "OMIM:1", "name": "Marfan", "kind": "disease"}],
                      "claims": [{"start": 0, "end": 3, "disease": "OMIM:1", "target": "HP:7", "verdict": "supported"}],
                      "path_entities": ["OMIM:1", "HP:7"], "named": ["OMIM:1"]}, TEXT)
    assert ids is not None and (ids.claims[0]["disease"], ids.claims[0]["target"]) == ("Marfan (OMIM:1)", "HP:7")
    assert ids.path_entities == ["Marfan (OMIM:1)", "HP:7"] and ids.named == ["Marfan (OMIM:1)"]
    short = audit_view(audit(), TEXT[:20])  # the page shows a cut text: spans past it go
    assert short is not None and "".join(s.text for s in short.segments) == TEXT[:20]


class Completion(HTMLParser):
    """The first audited completion: its text, and the text inside each mark / claim class."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.stack: list[str] = []
        self.text = ""
        self.by_class: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag == "pre" and "audited" in cls and not self.text:
            self.depth = 1
        elif self.depth:
            self.depth += 1
            self.stack.append(cls)

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1
            if self.stack and self.depth:
                self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text += data
            for cls in self.stack:
                self.by_class[cls] = self.by_class.get(cls, "") + data


def test_the_sample_page_marks_entities_and_claim_verdicts_escaped(site: Path) -> None:
    page = next(p for p in (site / "samples").glob("kg_heldout-quick-rl-stage2-*.html"))
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<img" not in html and 'onmouseover="' not in html
    parsed = Completion()
    parsed.feed(html)
    assert parsed.text == TEXT  # every character shown once, in order
    assert parsed.by_class["entity kind-finding on-path"] == "tall stature"
    assert parsed.by_class["entity kind-disease on-path"] == "Marfan "
    assert parsed.by_class["entity kind-other"] == "syndrome"
    assert "no intellectual disability" == parsed.by_class["claim claim-contradicted"]
    assert parsed.by_class["unaudited"] == "<answer>A</answer>"
    assert "Reasoning audit" in html and "2 of 4 path entities named" in html and "HP:2, HP:9" in html
    assert re.search(r'<tr class="claim-row-contradicted"><td>Marfan &lt;img src=x&gt;</td><td>not has_phenotype',
                     html)
    assert html.count('<pre class="completion">') == 1  # the sample without an audit stays plain


def test_model_names_wrap_between_words_and_wide_tables_scroll(site: Path) -> None:
    from fleming.leaderboard.site import breakable

    assert str(breakable("quickstart/rl-stage2 <b>")) == "quickstart/<wbr>rl-stage2 &lt;b&gt;"
    css = (site / "static" / "style.css").read_text(encoding="utf-8")
    assert "anywhere" not in css.split(".name, th .label")[1].split("}")[0]
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    tops = """(el) => { const r = document.createRange(), out = [];
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT); let n;
        while ((n = walker.nextNode())) { for (let i = 0; i < n.length; i++) { r.setStart(n, i); r.setEnd(n, i + 1);
          const b = r.getClientRects()[0]; if (b) out.push([n.data[i], Math.round(b.top)]); } }
        return out; }"""  # each character of the label with the top of its line box
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 420, "height": 900})
            page.goto((site / "index.html").as_uri(), wait_until="load")
            assert page.evaluate("document.documentElement.scrollWidth") <= 420  # the page itself never scrolls
            wrapper = page.locator("#table-strict").locator("xpath=..")
            assert wrapper.evaluate("e => e.scrollWidth > e.clientWidth")  # the table scrolls in its wrapper
            label = page.locator('#table-strict tr[data-row="path:/ckpt/rl-stage2"] th .label')
            chars = label.evaluate(tops)
            text = "".join(c for c, _ in chars)
            assert text == "quickstart/rl-stage2"
            breaks = [chars[i - 1][0] for i in range(1, len(chars)) if chars[i][1] != chars[i - 1][1]]
            assert all(c in "/- " for c in breaks), f"the name breaks inside a word: {chars}"
        finally:
            browser.close()
