"""The data filters: structure, dedup, decontaminate (with benchmark questions planted into a source), phi."""
from __future__ import annotations

import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from fleming import QAItem, Rejected
from fleming.errors import DataError, RecipeError
from fleming.plugins.filters.decontaminate import DecontaminateFilter
from fleming.plugins.filters.dedup import DedupFilter
from fleming.plugins.sources.jsonl import JsonlSource
from fleming.plugins.filters.phi import PhiFilter, PhiScrubber
from fleming.plugins.filters.structure import StructureFilter
from fleming.testing import fresh_registry, make_item, write_jsonl

REPO = Path(__file__).resolve().parents[1]


def _item(i: int, question: str, options: dict[str, str] | list[str], answer: str = "A", **kw: Any) -> QAItem:
    if isinstance(options, list):
        options = {"ABCDEFGHIJ"[k]: v for k, v in enumerate(options)}
    return QAItem(id=f"t:{i}", question=question, options=options, answer=answer, source="t", **kw)


def _items(path: Path) -> list[QAItem]:
    return [i for i in JsonlSource(path).items() if isinstance(i, QAItem)]


def _reasons(rejected: list[Rejected]) -> dict[str, str]:
    return {r.where: r.reason for r in rejected}


# ---------------------------------------------------------------- structure

def test_structure_names_every_problem() -> None:
    items = [
        _item(0, "Which vitamin deficiency causes scurvy?", ["Vitamin C", "Vitamin D", "Vitamin K"]),
        _item(1, "   ", ["a", "b"]),
        _item(2, "Only one?", ["a"]),
        _item(3, "Empty option?", ["a", " ", "c"]),
        _item(4, "Duplicate?", ["Measles.", "Mumps", "measles"]),
        _item(5, "Answer missing?", ["a", "b"], answer="E"),
        _item(6, "Gaps?", {"A": "a", "B": "b", "D": "d"}),
        _item(7, "The patient\u2019s caf\u00c3\u00a9 visit", ["a", "b"]),
        _item(8, "Clean question", ["fine", "itâ€™s broken"]),
        _item(9, "Undecodable \ufffd byte", ["a", "b"]),
        _item(10, "Bell\x07", ["a", "b"]),
        _item(11, "Clean", ["a", "b"], rationale="ä¸­æ–‡"),
    ]
    kept, rejected = StructureFilter().apply(items)
    assert [i.id for i in kept] == ["t:0"]
    got = _reasons(rejected)
    assert got["t:1"] == "empty question"
    assert got["t:2"] == "only 1 option (need at least 2)"
    assert got["t:3"] == "empty option B"
    assert got["t:4"] == "options A and C are the same ('measles')"
    assert got["t:5"] == "answer 'E' is not among the options (A, B)"
    assert got["t:6"] == "option letters A, B, D are not contiguous from A"
    assert got["t:7"] == "encoding artefact 'Ã©' in question"
    assert got["t:8"] == "encoding artefact 'â€™' in option B"
    assert got["t:9"] == "encoding artefact replacement character U+FFFD in question"
    assert got["t:10"] == "encoding artefact control character U+0007 in question"
    assert got["t:11"] == "encoding artefact 'ä¸\\xad' in rationale"
    assert rejected[0].record["id"] == "t:1"  # the whole item is kept for review


def test_structure_lists_several_problems_and_checks_switch_off() -> None:
    bad = _item(0, "", {"A": "x", "C": "x"}, answer="Z")
    (reject,) = StructureFilter().apply([bad])[1]
    assert reject.reason == ("empty question; options A and C are the same ('x'); answer 'Z' is not among the "
                             "options (A, C); option letters A, C are not contiguous from A")
    lenient = StructureFilter(empty_question=False, duplicate_options=False, answer_in_options=False,
                              contiguous_letters=False)
    assert lenient.apply([bad]) == ([bad], [])
    assert StructureFilter(min_options=0).apply([_item(1, "q", ["a"])])[1] == []
    assert StructureFilter(mojibake=False).apply([_item(2, "caf\u00c3\u00a9", ["a", "b"])])[1] == []


def test_structure_keeps_clean_unicode_text() -> None:
    texts = ["Café-au-lait spots and naïve T cells", "Ångström, São Paulo, Ölçek, Œdème", "Temperature 38.5°C ± 0.2",
             "Dose 5 µg/kg; β-blocker; α1-antitrypsin; ≥ 140 mm Hg", "Tab\tand\nnewline",
             "患者，男，45岁，发热3天。首选的退热药物是", "«café» “quoted” — dash … ellipsis", "日本語のテキスト"]
    items = [_item(i, t, [t + " A", t + " B"]) for i, t in enumerate(texts)]
    kept, rejected = StructureFilter().apply(items)
    assert rejected == [] and len(kept) == len(texts)


def test_structure_on_the_benchmark_suite(benchmarks_dir: Path) -> None:
    """MedQA is clean; MedMCQA's known duplicate-option rows (21 exact copies upstream) are all caught."""
    kept, rejected = StructureFilter().apply(_items(benchmarks_dir / "medqa_usmle_4opt_test.jsonl"))
    assert rejected == [] and len(kept) == 1273
    items = _items(benchmarks_dir / "medmcqa_dev.jsonl")
    exact = {i.id for i in items if len(set(i.options.values())) < len(i.options)}
    assert len(exact) == 21
    _, rejected = StructureFilter().apply(items)
    duplicates = {r.where for r in rejected if "are the same" in r.reason}
    assert exact <= duplicates


# ---------------------------------------------------------------- dedup

LONG = ("A 45-year-old man comes to the emergency department because of crushing substernal chest pain that "
        "began two hours ago while he was shovelling snow. He has hypertension and smokes one pack of "
        "cigarettes daily. An ECG shows ST-segment elevations in leads II, III and aVF. Which coronary artery "
        "is most likely occluded?")
OPTS = ["Right coronary artery", "Left anterior descending artery", "Left circumflex artery", "Left main artery"]


def test_dedup_exact_and_near_duplicates_keep_the_first() -> None:
    items = [
        _item(0, LONG, OPTS),
        _item(1, "  " + LONG.upper() + " ", list(reversed(OPTS)), answer="D"),       # exact: case, spaces, order
        _item(2, LONG.replace("two hours ago", "2 hours ago"), OPTS),                # near
        _item(3, LONG.replace("leads II, III and aVF", "leads V1 to V4"), OPTS),     # near, lower similarity
        _item(4, "Which vitamin deficiency causes scurvy?", ["Vitamin C", "Vitamin D"]),
        _item(5, "Which vitamin deficiency causes rickets?", ["Vitamin C", "Vitamin D"]),
    ]
    kept, rejected = DedupFilter().apply(items)
    got = _reasons(rejected)
    assert [i.id for i in kept] == ["t:0", "t:3", "t:4", "t:5"]
    assert got["t:1"] == "exact duplicate of t:0"
    assert got["t:2"].startswith("near duplicate of t:0 (jaccard 0.9")
    kept, rejected = DedupFilter(threshold=0.8).apply(items)
    assert [i.id for i in kept] == ["t:0", "t:4", "t:5"]
    assert _reasons(rejected)["t:3"].startswith("near duplicate of t:0 (jaccard 0.8")
    assert DedupFilter(exact=False, near=False).apply(items) == (items, [])
    only_exact = DedupFilter(near=False).apply(items)[1]
    assert [r.where for r in only_exact] == ["t:1"]


def test_dedup_is_deterministic_and_compares_with_kept_items_only() -> None:
    words = [f"w{k}" for k in range(60)]
    chain = [_item(i, " ".join(words[i * 3:] + words[:i * 3]), ["x", "y"]) for i in range(4)]
    first = DedupFilter(threshold=0.5, options=False).apply(chain)
    again = DedupFilter(threshold=0.5, options=False).apply(list(chain))
    assert [i.id for i in first[0]] == [i.id for i in again[0]]
    assert [r.reason for r in first[1]] == [r.reason for r in again[1]]
    # the same shingles, rotated: no two share all 3-word shingles, and rejects name only kept items
    kept_ids = {i.id for i in first[0]}
    assert all(r.reason.split()[3] in kept_ids for r in first[1])


def test_dedup_finds_medbullets_op4_in_op5(benchmarks_dir: Path) -> None:
    """op4 is op5 with one distractor removed: every op4 question is a near duplicate of its op5 twin."""
    op5 = _items(benchmarks_dir / "medbullets_op5.jsonl")
    op4 = _items(benchmarks_dir / "medbullets_op4.jsonl")
    _, rejected = DedupFilter(threshold=0.8).apply(op5 + op4)
    twins = {r.where for r in rejected if r.where.startswith("medbullets_op4:")}
    by_id = {i.id: i for i in op5}
    assert len(twins) == len(op4)
    for r in rejected:
        if r.where.startswith("medbullets_op4:"):
            twin = by_id.get(r.reason.split()[3])
            if twin is not None:  # op5's own repeated stems may be matched first
                assert twin.options[twin.answer] == r.record["options"][r.record["answer"]]


# ---------------------------------------------------------------- decontaminate

def _bench(folder: Path) -> Path:
    write_jsonl(folder / "mini_test.jsonl", [
        {"id": "m-1", "question": LONG, "options": dict(zip("ABCD", OPTS)), "answer": "A"},
        {"id": "m-2", "question": "Which enzyme is deficient in classic phenylketonuria?",
         "options": {"A": "Phenylalanine hydroxylase", "B": "Tyrosinase"}, "answer": "A"},
    ])
    return folder


def test_decontaminate_removes_copies_and_names_the_benchmark(tmp_path: Path) -> None:
    bench = _bench(tmp_path / "bench")
    items = [
        _item(0, LONG, OPTS),                                                          # verbatim
        _item(1, "Context: " + LONG + " Answer briefly.", ["a", "b"]),                  # embedded in a longer text
        _item(2, "Which enzyme is deficient in classic phenylketonuria?",
              ["Phenylalanine hydroxylase", "Tyrosinase"]),                            # short: shorter than 13 words
        _item(3, "Which coronary artery supplies the sinoatrial node in most people?", OPTS),
        _item(4, "Which enzyme is deficient in phenylketonuria?", ["Phenylalanine hydroxylase", "Tyrosinase"]),
    ]
    kept, rejected = DecontaminateFilter(benchmarks=bench).apply(items)
    assert [i.id for i in kept] == ["t:3", "t:4"]
    got = _reasons(rejected)
    assert got["t:0"] == "overlaps mini_test.jsonl line 1 (id m-1; 13-gram overlap 1.00)"
    assert got["t:1"].startswith("overlaps mini_test.jsonl line 1 (id m-1; 13-gram overlap")
    assert got["t:2"] == "overlaps mini_test.jsonl line 2 (id m-2; 13-gram overlap 1.00)"
    paraphrase = _item(5, LONG.replace("shovelling snow", "lifting boxes").replace("hypertension", "diabetes"), OPTS)
    assert DecontaminateFilter(benchmarks=bench).apply([paraphrase])[1] != []
    assert DecontaminateFilter(benchmarks=bench, threshold=0.9).apply([paraphrase])[1] == []
    short_ngrams = DecontaminateFilter(benchmarks=[bench / "mini_test.jsonl"], n=3).apply([items[4]])[1]
    assert short_ngrams[0].reason == "overlaps mini_test.jsonl line 2 (id m-2; 3-gram overlap 0.71)"


def test_decontaminate_needs_benchmarks_or_the_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEMING_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="set the arg benchmarks .* or the environment variable FLEMING_DATA_DIR"):
        DecontaminateFilter()
    monkeypatch.setenv("FLEMING_DATA_DIR", str(_bench(tmp_path / "env")))
    assert DecontaminateFilter().apply([_item(0, LONG, OPTS)])[1][0].reason.startswith("overlaps mini_test.jsonl")
    from fleming.recipe import load_recipe

    source = write_jsonl(tmp_path / "qa.jsonl", [make_item(0).to_record()])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "r", "model": "tiny-random", "data": {
        "sources": [{"plugin": "jsonl", "args": {"path": str(source)}}], "filters": ["decontaminate"]}}))
    _, registry = fresh_registry()
    assert load_recipe(recipe, registry).args["data.filters[0]"]["benchmarks"] == tmp_path / "env"
    monkeypatch.delenv("FLEMING_DATA_DIR")
    with pytest.raises(RecipeError) as err:
        load_recipe(recipe, registry)
    assert "data.filters[0].args.benchmarks: no benchmark files" in str(err.value)
    assert "FLEMING_DATA_DIR" in str(err.value) and "\n" not in str(err.value)


VIGNETTES = [
    ("A 34-year-old gardener has a painless ulcer on the right index finger, then nodules spreading up the forearm "
     "along the lymphatics over three weeks after pruning rose bushes. Which organism is most likely responsible?",
     ["Sporothrix schenckii", "Staphylococcus aureus", "Pasteurella multocida", "Bartonella henselae"]),
    ("A 6-year-old boy has had puffy eyes and cola-coloured urine for two days; three weeks earlier he had a sore "
     "throat that resolved without treatment. Which serum finding is most likely?",
     ["Low C3", "High IgE", "Low IgA", "High ferritin"]),
    ("Which of the following is the most likely diagnosis in a 70-year-old woman with new temporal headache, jaw "
     "claudication and an erythrocyte sedimentation rate of 95 mm/h seen at a rural clinic on a Tuesday?",
     ["Giant cell arteritis", "Migraine", "Trigeminal neuralgia", "Cluster headache"]),
    ("A marathon runner collapses at the finish line on a hot day; his rectal temperature is 41.2 C and he is "
     "confused. Which is the most appropriate immediate management?",
     ["Cold water immersion", "Oral paracetamol", "Dantrolene", "Observation in a cool room"]),
]
PLANTED = {"medqa_usmle_4opt_test.jsonl": (3, 400, 1200), "medmcqa_dev.jsonl": (10, 2000, 4100),
           "medxpertqa_text.jsonl": (1, 1500, 2400), "careqa_en.jsonl": (20, 3000, 5600),
           "mmlu_pro_biology.jsonl": (5, 700), "mmlu_pro_health.jsonl": (8, 800), "pubmedqa_pqal.jsonl": (2, 999),
           "medbullets_op5.jsonl": (30, 300)}


def test_planted_benchmark_questions_are_removed_by_the_pipeline(benchmarks_dir: Path, tmp_path: Path) -> None:
    """Done-when of the data issue: benchmark questions planted in a source all land in the filter's rejects."""
    from fleming.pipeline import RunContext, run_pipeline
    from fleming.recipe import load_recipe

    records: list[dict[str, Any]] = [make_item(i).to_record() for i in range(6)]
    records += [_item(100 + i, q, o).to_record() for i, (q, o) in enumerate(VIGNETTES)]
    fixture_ids = {f"qa:{r['id']}" for r in records}
    planted: dict[str, tuple[str, int]] = {}
    for file, lines in PLANTED.items():
        with open(benchmarks_dir / file, encoding="utf-8") as fh:
            rows = fh.read().splitlines()
        for line in lines:
            rec = json.loads(rows[line - 1])
            records.insert(len(records) // 2, {**rec, "id": f"planted-{file}-{line}", "meta": {}})
            planted[f"qa:planted-{file}-{line}"] = (file, line)
    assert len(planted) == 20
    write_jsonl(tmp_path / "qa.jsonl", records)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}", encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "planted", "model": "model", "data": {
        "sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl"}}],
        "filters": [{"plugin": "decontaminate", "args": {"benchmarks": str(benchmarks_dir)}}]}}), encoding="utf-8")
    pm, registry = fresh_registry()
    run = RunContext(loaded=load_recipe(recipe, registry), registry=registry, pm=pm,
                     run_dir=tmp_path / "runs" / "planted", console=Console(file=io.StringIO()), show_progress=False)
    run_pipeline(run)
    folder = run.run_dir / "filter"
    rejects = [json.loads(line) for line in (folder / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    by_id = {r["record"]["id"]: r["reason"] for r in rejects}
    assert set(by_id) == set(planted)
    for item_id, (file, line) in planted.items():
        assert by_id[item_id].startswith(f"decontaminate: overlaps {file} line {line} (id "), by_id[item_id]
        assert by_id[item_id].endswith("13-gram overlap 1.00)")
    kept = {json.loads(line)["id"] for line in (folder / "items.jsonl").read_text(encoding="utf-8").splitlines()}
    assert kept == fixture_ids
    counts = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["counts"]
    assert counts["filter:decontaminate:0:rejected"] == 20 and counts["items"] == len(fixture_ids)


# ---------------------------------------------------------------- phi

CLINICAL = [
    "A 45-year-old man with Parkinson disease and Down syndrome presents after 3 days of fever.",
    "BP 120/80 mm Hg, pulse 96/min, Na+ 140 mEq/L, platelets 150,000/mm3, HbA1c 7.5%, pH 7.35, INR 2.5.",
    "He takes metformin 500 mg twice daily and 0.5 mg/kg of prednisone; titer 1:160; in 2019 he had a stroke.",
    "Kernig sign, Dr. Kernig's sign and Brudzinski sign are positive; the child was named Kawasaki disease's "
    "first case.",
    "Ask Dr. on call; Dr. and nurse agree. Cushing syndrome, Graves disease, Barr bodies, Epstein-Barr virus.",
    "WBC 12,000/mm3; dose 5-10 mg/kg; 0.9% saline; T 38.5°C; 17-hydroxyprogesterone; 46,XY; t(9;22); HIV-1.",
    "Treatment for 6 months; a 24-hour urine; stage 3; grade IV; COVID-19; ICD-10 I10; Brand name: Tylenol.",
    "Symptoms began in March; the 3rd dose; a 2-week history; +2 pitting edema; K+ 5.9; a 12-lead ECG.",
]


def test_phi_keeps_clinical_text_untouched() -> None:
    scrubber = PhiScrubber()
    for text in CLINICAL:
        counts: Counter[str] = Counter()
        assert scrubber.scrub(text, counts) == text
        assert not counts


@pytest.mark.parametrize("text, scrubbed", [
    ("Mr. John Smith was seen by Dr. Jones.", "Mr. [NAME] was seen by Dr. [NAME]."),
    ("Mrs. O'Brien and Prof. A. B. Turner; Dr House's patient.", "Mrs. [NAME] and Prof. [NAME]; Dr [NAME]'s patient."),
    ("Patient name: Jane Doe. Her name is Maria. A boy named Tom Lee.",
     "Patient name: [NAME]. Her name is [NAME]. A boy named [NAME]."),
    ("Seen on 03/12/2019, 3/4/19, 12.03.2019, 2019-03-12, March 3, 1960, 12th of March and Mar. 2019.",
     "Seen on [DATE], [DATE], [DATE], [DATE], [DATE], [DATE] and [DATE]."),
    ("Call (555) 123-4567, 555-123-4567, +1 555 123 4567, +33 1 23 45 67 89 or +44 20 7946 0958.",
     "Call [PHONE], [PHONE], [PHONE], [PHONE] or [PHONE]."),
    ("Write to john.smith@example.org.", "Write to [EMAIL]."),
    ("MRN 12345678; medical record number: AB-123456; patient ID 998877; SSN 123-45-6789.",
     "MRN [ID]; medical record number: [ID]; patient ID [ID]; SSN [ID]."),
])
def test_phi_replaces_identifiers(text: str, scrubbed: str) -> None:
    assert PhiScrubber().scrub(text, Counter()) == scrubbed


def test_phi_filter_records_counts_and_rejects_only_collapsed_options() -> None:
    items = [
        _item(0, "Dr. Smith saw Mr. Brown on March 3, 2020 (MRN 1234567). Diagnosis?", ["Gout", "Pseudogout"],
              rationale="Dr. Smith noted crystals."),
        _item(1, "Who should the resident tell?", ["Dr. Smith", "Dr. Jones", "The nurse"]),
        _item(2, "When was the vaccine given?", ["March 3, 2020", "April 5, 2021"]),
        _item(3, "A 30-year-old with Crohn disease. Next step?", ["Colonoscopy", "CT"]),
    ]
    kept, rejected = PhiFilter().apply(items)
    assert [i.id for i in kept] == ["t:0", "t:3"]
    first = kept[0]
    assert first.question == "Dr. [NAME] saw Mr. [NAME] on [DATE] (MRN [ID]). Diagnosis?"
    assert first.rationale == "Dr. [NAME] noted crystals."
    assert first.provenance["phi_scrubbed"] == {"DATE": 1, "ID": 1, "NAME": 3}
    assert kept[1] is items[3] and "phi_scrubbed" not in kept[1].provenance
    got = _reasons(rejected)
    assert got["t:1"] == "scrubbing made options A and B identical ('Dr. [NAME]')"
    assert got["t:2"] == "scrubbing made options A and B identical ('[DATE]')"
    no_names = PhiFilter(names=False, dates=False).apply(items)
    assert [i.id for i in no_names[0]] == ["t:0", "t:1", "t:2", "t:3"]
    assert no_names[0][0].question.startswith("Dr. Smith saw Mr. Brown on March 3, 2020 (MRN [ID])")


def test_phi_changes_few_benchmark_items(benchmarks_dir: Path) -> None:
    """Exam questions hold almost no identifiers: scrubbing MedQA must leave nearly every item as it was."""
    items = _items(benchmarks_dir / "medqa_usmle_4opt_test.jsonl")
    kept, rejected = PhiFilter().apply(items)
    changed = [i for i in kept if "phi_scrubbed" in i.provenance]
    assert rejected == [] and len(kept) == len(items)
    assert len(changed) <= len(items) // 100


def test_the_filters_are_registered_and_the_curated_recipe_runs(benchmarks_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from fleming.pipeline import RunContext, run_pipeline
    from fleming.recipe import load_recipe

    _, registry = fresh_registry()
    assert {"structure", "dedup", "decontaminate", "phi"} <= set(registry.names("filters"))
    monkeypatch.setenv("FLEMING_DATA_DIR", str(benchmarks_dir))
    text = (REPO / "recipes" / "curated.yaml").read_text(encoding="utf-8")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}", encoding="utf-8")
    data = yaml.safe_load(text)
    data["model"] = "model"
    for source in data["data"]["sources"]:
        source["args"]["limit"] = 1500  # the first rows of each set keep the test short
    recipe = tmp_path / "curated.yaml"
    recipe.write_text(yaml.safe_dump(data), encoding="utf-8")
    pm, registry = fresh_registry()
    run = RunContext(loaded=load_recipe(recipe, registry), registry=registry, pm=pm,
                     run_dir=tmp_path / "runs" / "curated", console=Console(file=io.StringIO()), show_progress=False)
    run_pipeline(run)
    manifest = json.loads((run.run_dir / "filter" / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    rejects = (run.run_dir / "filter" / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert counts["rejected"] == len(rejects) == sum(v for k, v in counts.items() if k.startswith("filter:"))
    assert counts["in"] == counts["items"] + counts["rejected"]
    assert counts["filter:structure:0:rejected"] >= 12  # CareQA's duplicated translated options
    assert counts["filter:dedup:1:rejected"] > 0
    prefixes = Counter(json.loads(line)["reason"].split(":")[0] for line in rejects)
    assert set(prefixes) <= {"structure", "dedup", "decontaminate", "phi"}
    assert os.path.exists(run.run_dir / "mix" / "train.jsonl")
