"""The lm-eval export: lm-eval's own TaskManager loads the YAMLs and builds the same prompts from the files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fleming.errors import DataError, RecipeError
from fleming.testing import write_jsonl

FIXTURES = Path(__file__).parent / "fixtures"


def load(out: Path, name: str) -> dict[str, Any]:
    """Load task or group `name` from `out` with lm-eval's TaskManager (its own tasks left out: faster)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(out), include_defaults=False).load([name])


def test_med9_exports_and_lm_eval_builds_the_same_prompts(benchmarks_dir: Path, tmp_path: Path) -> None:
    from fleming.tasks import SUITES, load_task
    from fleming.tasks.lm_eval_export import export_lm_eval

    jmed = FIXTURES / "jmed_sample.jsonl"
    paths = export_lm_eval(tmp_path / "out", benchmarks_dir, "med9", data_files={"jmed": jmed})
    assert [p.name for p in paths] == [f"fleming_{n}.yaml" for n in SUITES["med9"]] + ["fleming_med9.yaml"]
    config = yaml.safe_load(paths[1].read_text(encoding="utf-8"))
    assert config["dataset_path"] == "json" and config["output_type"] == "multiple_choice"
    assert config["dataset_kwargs"]["data_files"]["test"] == str((benchmarks_dir / "medqa_usmle_4opt_test.jsonl")
                                                                 .resolve())

    loaded = load(tmp_path / "out", "fleming_med9")
    assert list(loaded["group_map"]["fleming_med9"]) == [f"fleming_{n}" for n in SUITES["med9"]]
    for name in SUITES["med9"]:
        task = loaded["tasks"][f"fleming_{name}"]
        docs = list(task.test_docs())
        inspect_task = load_task(name, data_file=str(jmed)) if name == "jmed" else load_task(
            name, data_dir=benchmarks_dir)
        samples = list(inspect_task.dataset)
        assert len(docs) == len(samples), name
        for doc, sample in list(zip(docs, samples))[:3] + [(docs[-1], samples[-1])]:
            assert task.doc_to_text(doc) == sample.input + "\n<answer>"
            letters = task.doc_to_choice(doc)
            assert letters == sample.metadata["letters"]
            assert letters[task.doc_to_target(doc)] == sample.target
    # requests build without a model: one per option, each continuation a letter after "<answer>"
    medqa = loaded["tasks"]["fleming_medqa"]
    medqa.build_all_requests(limit=2)
    assert len(medqa.instances) == 8
    context, continuation = medqa.instances[0].arguments
    assert context.endswith("<answer>") and continuation == "A"


def test_variable_option_counts_and_texts_mode(tmp_path: Path) -> None:
    from fleming.tasks.lm_eval_export import export_lm_eval

    rows = [{"id": "a", "question": "Three?", "options": {"A": "x", "B": "y", "C": "z"}, "answer": "C", "meta": {}},
            {"id": "b", "question": "Five?", "options": {k: f"t{k}" for k in "ABCDE"}, "answer": "D",
             "meta": {"n": 1}}]
    data = write_jsonl(tmp_path / "mmlu_pro_health.jsonl", rows)
    export_lm_eval(tmp_path / "letters", tmp_path, "mmlu_pro_health")
    export_lm_eval(tmp_path / "texts", None, ["mmlu_pro_health"], choices="texts",
                   data_files={"mmlu_pro_health": data})

    task = load(tmp_path / "letters", "fleming_mmlu_pro_health")["tasks"]["fleming_mmlu_pro_health"]
    docs = list(task.test_docs())
    assert [task.doc_to_choice(d) for d in docs] == [list("ABC"), list("ABCDE")]
    assert [task.doc_to_target(d) for d in docs] == [2, 3]

    texts = load(tmp_path / "texts", "fleming_benchmarks")["tasks"]["fleming_mmlu_pro_health"]
    docs = list(texts.test_docs())
    assert [texts.doc_to_choice(d) for d in docs] == [["x", "y", "z"], [f"t{k}" for k in "ABCDE"]]
    assert texts.doc_to_text(docs[0]).endswith("<answer>X</answer>.\nAnswer:")
    assert {m["metric"] for m in texts.config.metric_list} == {"acc", "acc_norm"}


def test_export_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fleming.tasks.lm_eval_export import export_lm_eval

    monkeypatch.delenv("FLEMING_DATA_DIR", raising=False)
    with pytest.raises(RecipeError, match="needs local files.*medqa"):
        export_lm_eval(tmp_path / "out", None, "medqa")
    with pytest.raises(DataError, match="no file matching 'medqa_usmle_4opt_test.jsonl'"):
        export_lm_eval(tmp_path / "out", tmp_path, "medqa")
    with pytest.raises(RecipeError, match="kg_heldout is not exported"):
        export_lm_eval(tmp_path / "out", tmp_path, "kg-heldout")
    with pytest.raises(RecipeError, match="unknown benchmark"):
        export_lm_eval(tmp_path / "out", tmp_path, "medqaa")
    assert not (tmp_path / "out").exists()
