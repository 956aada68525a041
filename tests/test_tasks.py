"""The Inspect benchmark tasks: samples, the one-parser scorer and its metrics in the log, data loading, names."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from fleming.errors import DataError, RecipeError
from fleming.testing import write_jsonl

FIXTURES = Path(__file__).parent / "fixtures"

# file, rows, distinct subjects (None: the benchmark has none), one per benchmark of the suite
SHARED_FILES = {
    "medxpertqa": ("medxpertqa_text.jsonl", 2450, {"Reasoning", "Understanding"}),
    "medqa": ("medqa_usmle_4opt_test.jsonl", 1273, {"step1", "step2&3"}),
    "medmcqa": ("medmcqa_dev.jsonl", 4183, None),
    "mmlu_pro_biology": ("mmlu_pro_biology.jsonl", 717, None),
    "mmlu_pro_health": ("mmlu_pro_health.jsonl", 818, None),
    "careqa": ("careqa_en.jsonl", 5621, {"Medicine", "Nursing", "Pharmacology", "Psychology", "Biology",
                                         "Chemistry"}),
    "pubmedqa": ("pubmedqa_pqal.jsonl", 1000, None),
    "medbullets": ("medbullets_op5.jsonl", 308, None),
}


def record(i: int, answer: str = "B", subject: str = "anatomy", n: int = 4) -> dict[str, Any]:
    """A uniform record whose question carries a unique marker the scripted model keys on."""
    letters = "ABCDEFGHIJ"[:n]
    return {"id": f"q{i}", "question": f"Marker-{i}: which option is right?",
            "options": {k: f"option {k.lower()} of {i}" for k in letters}, "answer": answer,
            "meta": {"template": subject, "origin": "synthetic"}}


def scripted_model(replies: Mapping[str, str]) -> Any:
    """mockllm answering each prompt with the reply whose key occurs in it (usage set: no tokenizer needed)."""
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    def respond(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
        prompt = messages[-1].text
        reply = next((r for key, r in replies.items() if key in prompt), "no idea")
        out = ModelOutput.from_content(model="mockllm", content=reply)
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
        return out

    return get_model("mockllm/model", custom_outputs=respond, memoize=False)


def run(task: Any, model: Any, log_dir: Path) -> Any:
    """Evaluate in-process, quietly, logging into `log_dir`; return the one log."""
    from inspect_ai import eval as inspect_eval

    (log,) = inspect_eval(task, model=model, log_dir=str(log_dir), display="none")
    assert log.status == "success", log.error
    return log


def scores(log: Any) -> dict[str, dict[str, float]]:
    """The log's results as {score name: {metric key: value}}."""
    return {s.name: {k: m.value for k, m in s.metrics.items()} for s in log.results.scores}


# ------------------------------------------------------------------ the scorer and the metrics in the log

def test_scripted_completions_give_exact_strict_lenient_and_no_answer(tmp_path: Path) -> None:
    from fleming.tasks import load_task

    records = [record(0, "B", "anatomy"), record(1, "C", "anatomy"), record(2, "A", "anatomy"),
               record(3, "D", "cardiology"), record(4, "A", "cardiology"), record(5, "B", "cardiology")]
    replies = {
        "Marker-0:": "The artery supplies it.\n<answer>B</answer>",     # strict right
        "Marker-1:": "Reasoning...\n<answer>(C)</answer>",              # strict right
        "Marker-2:": "So the answer is <answer>D</answer>",             # strict wrong
        "Marker-3:": "I think the answer is D.",                        # no tag: lenient right
        "Marker-4:": "Probably C, not A... final: C",                   # no tag: lenient wrong
        "Marker-5:": "<answer>B</answer> or <answer>C</answer>",        # two letters: no answer, lenient C
    }
    data = write_jsonl(tmp_path / "items.jsonl", records)
    task = load_task("kg_heldout", data_file=str(data))
    log = run(task, scripted_model(replies), tmp_path / "logs")

    got = scores(log)
    assert [s.name for s in log.results.scores] == ["strict", "lenient", "no_answer"]
    assert got["strict"]["accuracy"] == pytest.approx(2 / 6)
    assert got["lenient"]["accuracy"] == pytest.approx(3 / 6)
    assert got["no_answer"]["mean"] == pytest.approx(3 / 6)
    assert got["strict"]["stderr"] > 0 and got["lenient"]["stderr"] > 0
    # per-subject strict accuracy (kg_heldout's subject is meta.template)
    assert got["strict"]["grouped_anatomy"] == pytest.approx(2 / 3)
    assert got["strict"]["grouped_cardiology"] == pytest.approx(0.0)
    metric = next(s for s in log.results.scores if s.name == "strict").metrics["grouped_anatomy"]
    assert (metric.name, metric.group) == ("anatomy", "grouped")

    by_id = {s.id: s for s in log.samples}
    assert list(by_id["q0"].scores) == ["answer_scorer"]
    first = by_id["q0"].scores["answer_scorer"]
    assert first.value == {"strict": 1.0, "lenient": 1.0, "no_answer": 0.0}
    assert first.answer == "B"
    assert first.explanation == replies["Marker-0:"]
    lenient_only = by_id["q3"].scores["answer_scorer"]
    assert lenient_only.answer == ""
    assert lenient_only.metadata == {"lenient_answer": "D", "subject": "cardiology"}
    assert by_id["q5"].scores["answer_scorer"].metadata["lenient_answer"] == "C"


def test_prompt_system_message_and_generation_budget_reach_the_model(tmp_path: Path) -> None:
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from fleming.prompts import render
    from fleming.tasks import load_task

    seen: list[Any] = []

    def respond(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
        seen.append((messages, config))
        out = ModelOutput.from_content(model="mockllm", content="<answer>A</answer>")
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    data = write_jsonl(tmp_path / "items.jsonl", [record(0, "A")])
    task = load_task("kg_heldout", data_file=str(data), max_tokens=77)
    log = run(task, get_model("mockllm/model", custom_outputs=respond, memoize=False), tmp_path / "logs")
    assert scores(log)["strict"]["accuracy"] == 1.0
    (messages, config), = seen
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].text == render("eval_system")
    assert "<answer>" in messages[0].text
    assert messages[1].text.startswith("Marker-0: which option is right?\n\nA. option a of 0\nB. option b of 0")
    assert "<answer></answer>" in messages[1].text
    assert config.max_tokens == 77


def test_subprocess_inspect_eval_fleming_medqa_with_mockllm(benchmarks_dir: Path, tmp_path: Path) -> None:
    """The plain command a user types; offline, token counts fall back to an estimate (no tiktoken download)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "INSPECT_LOG_LEVEL": "warning",
           "NO_COLOR": "1"}
    env.pop("FLEMING_DATA_DIR", None)
    inspect_cli = Path(sys.executable).with_name("inspect")
    cmd = [str(inspect_cli), "eval", "fleming/medqa", "--model", "mockllm/model", "--limit", "5",
           "-T", f"data_dir={benchmarks_dir}", "--log-dir", str(tmp_path / "logs"), "--display", "none"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    from inspect_ai.log import list_eval_logs, read_eval_log

    (info,) = list_eval_logs(str(tmp_path / "logs"))
    log = read_eval_log(info)
    assert log.status == "success"
    assert log.eval.task == "fleming/medqa"
    assert log.results.completed_samples == 5
    got = scores(log)
    assert got["strict"]["accuracy"] == 0.0 and got["no_answer"]["mean"] == 1.0  # mockllm's canned reply
    assert {"grouped_step1"} <= set(got["strict"])


# ------------------------------------------------------------------ the benchmark files

@pytest.mark.parametrize("name", list(SHARED_FILES))
def test_each_shared_benchmark_file_builds_its_task(name: str, benchmarks_dir: Path) -> None:
    from fleming.answers import extract_answer
    from fleming.tasks import load_task

    file, rows, subjects = SHARED_FILES[name]
    task = load_task(name, data_dir=benchmarks_dir)
    samples = list(task.dataset)
    assert len(samples) == rows
    assert len({s.id for s in samples}) == rows
    assert task.metadata["data"] == str(benchmarks_dir / file)
    raw = [json.loads(line) for line in open(benchmarks_dir / file, encoding="utf-8")]
    for s, rec in zip(samples, raw):
        meta = s.metadata
        assert s.id == meta["id"] == rec["id"]
        assert s.target == rec["answer"] and s.target in meta["letters"]
        assert meta["options"] == rec["options"] and meta["letters"] == list(rec["options"])  # order kept
        assert meta["source"] == name
        assert s.input.startswith(rec["question"])
        # the parser accepts the target letter as the sample's strict answer
        assert extract_answer(f"<answer>{s.target}</answer>", meta["letters"]) == s.target
    if subjects is not None:
        assert {s.metadata["subject"] for s in samples} == subjects
    if name == "pubmedqa":
        assert all(s.input.startswith("Context: ") and "\n\nQuestion: " in s.input for s in samples)
        assert samples[0].metadata["subject"] is None


def test_benchmark_variants(benchmarks_dir: Path) -> None:
    from fleming.tasks import load_task

    op4 = list(load_task("medbullets", data_dir=benchmarks_dir, options=4).dataset)
    assert len(op4) == 308 and all(s.metadata["letters"] == list("ABCD") for s in op4)
    assert len(load_task("pubmedqa", data_dir=benchmarks_dir, official_test=True).dataset) == 500
    with pytest.raises(RecipeError, match="options must be 4 or 5"):
        load_task("medbullets", data_dir=benchmarks_dir, options=3)


def test_jmed_is_not_taken_from_the_unofficial_prerelease(benchmarks_dir: Path) -> None:
    from fleming.tasks import load_task

    with pytest.raises(DataError, match=r"jmed: no file matching 'jmed\*\.jsonl'.*data_file"):
        load_task("jmed", data_dir=benchmarks_dir)


def test_jmed_official_format_with_21_options_builds_and_scores(tmp_path: Path) -> None:
    from fleming.tasks import load_task

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "JMED.jsonl").write_bytes((FIXTURES / "jmed_sample.jsonl").read_bytes())
    task = load_task("jmed", data_dir=folder)  # found by the jmed*.jsonl pattern, any case
    samples = list(task.dataset)
    assert [s.id for s in samples] == ["jmed-00001", "jmed-00002", "jmed-00003"]
    assert [s.target for s in samples] == ["A", "K", "U"]
    assert all(s.metadata["letters"] == list("ABCDEFGHIJKLMNOPQRSTU") for s in samples)
    assert "\nU. 以上都不是\n" in samples[2].input
    replies = {"咽痛": "考虑急性咽炎。<answer>A</answer>", "反酸": "<answer>K</answer>", "血压正常": "答案是 U"}
    log = run(load_task("jmed", data_file=str(FIXTURES / "jmed_sample.jsonl")), scripted_model(replies),
              tmp_path / "logs")
    got = scores(log)
    assert got["strict"]["accuracy"] == pytest.approx(2 / 3)
    assert got["lenient"]["accuracy"] == pytest.approx(1.0)
    assert got["no_answer"]["mean"] == pytest.approx(1 / 3)


def test_bad_rows_stop_the_task_naming_file_and_line(tmp_path: Path) -> None:
    from fleming.tasks import load_task

    bad = write_jsonl(tmp_path / "medqa_usmle_4opt_test.jsonl",
                      [record(0), {**record(1), "answer": "Z"}, '{"id": ', record(3)])
    with pytest.raises(DataError, match=rf"{bad}:2: answer 'Z' is not one of the option letters \(ABCD\) "
                                        r"\(2 bad rows"):
        load_task("medqa", data_dir=tmp_path)
    dup = write_jsonl(tmp_path / "dup.jsonl", [record(0), record(0)])
    with pytest.raises(DataError, match=rf"{dup}:2: duplicate id 'q0' \(first at {dup}:1\)"):
        load_task("medqa", data_file=str(dup))


def test_missing_data_names_the_way_to_give_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    from fleming.tasks import load_task

    with pytest.raises(DataError, match=r"careqa: no file matching 'careqa_en.jsonl' in "):
        load_task("careqa", data_dir=tmp_path)
    with pytest.raises(DataError, match="data_file not found"):
        load_task("careqa", data_file=str(tmp_path / "nope.jsonl"))

    def offline(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the hub cannot be reached")

    monkeypatch.delenv("FLEMING_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as err:
        load_task("medqa")
    message = str(err.value)
    assert "\n" not in message
    assert "-T data_dir=DIR" in message and "FLEMING_DATA_DIR" in message
    assert "'GBaker/MedQA-USMLE-4-options' failed: ConnectionError: the hub cannot be reached" in message


def test_data_dir_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fleming.tasks import load_task

    write_jsonl(tmp_path / "careqa_en.jsonl", [record(0), record(1)])
    monkeypatch.setenv("FLEMING_DATA_DIR", str(tmp_path))
    assert [s.id for s in load_task("careqa").dataset] == ["q0", "q1"]


# ------------------------------------------------------------------ hub rows -> uniform records

HUB_ROWS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # benchmark: (a row shaped like the hub copy's, the fields its record must have)
    "medqa": ({"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer": "c",
               "answer_idx": "C", "meta_info": "step1"},
              {"id": "medqa-test-00007", "answer": "C", "subject": "step1"}),
    "medmcqa": ({"id": "u-1", "question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 3,
                 "subject_name": "Anatomy", "topic_name": None, "exp": "because"},
                {"id": "u-1", "answer": "D", "subject": "Anatomy"}),
    "medxpertqa": ({"id": "Text-3", "question": "Stem text.\nAnswer Choices: (A) a (B) b",
                    "options": {"A": "a", "B": "b"}, "label": "B", "medical_task": "Diagnosis",
                    "body_system": "Skeletal", "question_type": "Reasoning"},
                   {"id": "Text-3", "question": "Stem text.", "answer": "B", "subject": "Reasoning"}),
    "mmlu_pro_health": ({"question_id": 6001, "question": "Q?", "options": ["a", "b", "c"], "answer": "C",
                         "answer_index": 2, "category": "health", "src": "ori_mmlu-virology"},
                        {"id": "6001", "answer": "C", "subject": "ori_mmlu-virology"}),
    "careqa": ({"unique_id": "x-1", "question": "Q?", "op1": "a", "op2": "b", "op3": "c", "op4": "d", "cop": 1,
                "exam_id": 3, "year": 2024, "category": "Nursing"},
               {"id": "x-1", "answer": "A", "subject": "Nursing"}),
    "pubmedqa": ({"pubid": 123, "question": "Does it work?", "final_decision": "maybe", "long_answer": "secret",
                  "context": {"contexts": ["First.", "Second."], "labels": ["A", "B"], "meshes": ["M"]}},
                 {"id": "123", "question": "Context: First.\nSecond.\n\nQuestion: Does it work?", "answer": "C"}),
    "medbullets": ({"idx": "7", "question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d", "E": None},
                    "answer": "c", "explanation": "e", "link": "l"},
                   {"id": "7", "answer": "C", "letters": "ABCD"}),
    "jmed": ({"question": "问题？", "options": {k: f"选项{k}" for k in "ABCDEFGHIJKLMNOPQRSTU"}, "answer": ["U"]},
             {"id": "jmed-00007", "answer": "U", "letters": "ABCDEFGHIJKLMNOPQRSTU"}),
}


@pytest.mark.parametrize("name", list(HUB_ROWS))
def test_hub_rows_become_uniform_records(name: str) -> None:
    import importlib

    from fleming.tasks._records import normalise

    spec = importlib.import_module(f"fleming.tasks.{name}").SPEC
    row, want = HUB_ROWS[name]
    got = normalise(spec.hub.convert(row, 7), "hub", f"{name}-{7:05d}")
    assert isinstance(got, dict), got
    for key in ("id", "question", "answer"):
        if key in want:
            assert got[key] == want[key]
    if "subject" in want:
        assert got["meta"][spec.subject] == want["subject"]
    if "letters" in want:
        assert "".join(got["options"]) == want["letters"]
    assert "secret" not in json.dumps(got)  # PubMedQA's conclusion gives the answer away


def test_mmlu_pro_hub_rows_of_other_categories_are_not_items() -> None:
    from fleming.tasks.mmlu_pro_biology import SPEC

    assert SPEC.hub.convert({"question_id": 1, "category": "law", "question": "Q", "options": ["a", "b"],
                             "answer": "A"}, 0) is None


# ------------------------------------------------------------------ shuffling

def test_no_shuffling_by_default_and_seeded_shuffle_keeps_the_answer_text(tmp_path: Path) -> None:
    from fleming.tasks import load_task

    records = [record(i, "ABCDE"[i % 5], n=5) for i in range(30)]
    data = str(write_jsonl(tmp_path / "items.jsonl", records))
    plain = list(load_task("kg_heldout", data_file=data).dataset)
    assert [s.id for s in plain] == [r["id"] for r in records]
    assert [s.metadata["options"] for s in plain] == [r["options"] for r in records]

    a = list(load_task("kg_heldout", data_file=data, shuffle_seed=3).dataset)
    b = list(load_task("kg_heldout", data_file=data, shuffle_seed=3).dataset)
    assert [(s.id, s.target, s.input) for s in a] == [(s.id, s.target, s.input) for s in b]
    assert [s.id for s in a] != [r["id"] for r in records]
    by_id = {r["id"]: r for r in records}
    moved = 0
    for s in a:
        rec = by_id[s.id]
        assert s.metadata["letters"] == list("ABCDE")
        assert sorted(s.metadata["options"].values()) == sorted(rec["options"].values())
        assert s.metadata["options"][s.target] == rec["options"][rec["answer"]]
        assert f"\n{s.target}. {rec['options'][rec['answer']]}\n" in s.input
        moved += s.target != rec["answer"]
    assert moved > 10


# ------------------------------------------------------------------ kg_heldout

def test_kg_heldout_reads_a_runs_synthetic_heldout_items(tmp_path: Path) -> None:
    from fleming.tasks import load_task

    synth = [record(i, subject="findings_to_diagnosis") for i in range(3)]
    curated = {**record(9), "meta": {"origin": "curated"}}
    write_jsonl(tmp_path / "run" / "mix" / "heldout.jsonl", [synth[0], curated, synth[1], synth[2]])
    task = load_task("kg_heldout", run_dir=str(tmp_path / "run"))
    assert [s.id for s in task.dataset] == ["q0", "q1", "q2"]
    assert {s.metadata["subject"] for s in task.dataset} == {"findings_to_diagnosis"}
    assert task.dataset[0].metadata["source"] == "kg_heldout"
    assert len(load_task("kg_heldout", run_dir=str(tmp_path / "run"), all_items=True).dataset) == 4

    write_jsonl(tmp_path / "curated" / "mix" / "heldout.jsonl", [curated])
    with pytest.raises(DataError, match="none of the 1 items .* is synthetic.*all_items=true"):
        load_task("kg_heldout", run_dir=str(tmp_path / "curated"))
    with pytest.raises(DataError, match="held-out file not found"):
        load_task("kg_heldout", run_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="run_dir=RUN"):
        load_task("kg_heldout")


# ------------------------------------------------------------------ names

def test_expand_benchmarks() -> None:
    from fleming.tasks import BENCHMARKS, SUITES, expand_benchmarks

    nine = ["medxpertqa", "medqa", "medmcqa", "mmlu_pro_biology", "mmlu_pro_health", "careqa", "jmed",
            "pubmedqa", "medbullets"]
    assert SUITES["med9"] == nine and list(BENCHMARKS) == [*nine, "kg_heldout", "kg_heldout_known",
                                                                   "kg_dev"]
    assert expand_benchmarks("med9") == nine
    assert expand_benchmarks("medqa, kg-heldout") == ["medqa", "kg_heldout"]
    assert expand_benchmarks(["pubmedqa", "med9,kg_heldout"]) == ["pubmedqa", *[n for n in nine if n != "pubmedqa"],
                                                                "kg_heldout"]
    with pytest.raises(RecipeError, match=r"unknown benchmark 'medqaa' — did you mean 'medqa'"):
        expand_benchmarks("med9,medqaa")
    with pytest.raises(RecipeError, match="no benchmarks given"):
        expand_benchmarks(" , ")


def test_load_task_checks_its_arguments() -> None:
    from fleming.tasks import load_task

    with pytest.raises(RecipeError, match=r"medqa: unknown task argument 'shuffle_sed' — did you mean 'shuffle_seed'"):
        load_task("medqa", shuffle_sed=1)
    with pytest.raises(RecipeError, match="unknown benchmark 'medxpert'"):
        load_task("medxpert")
    with pytest.raises(RecipeError, match="is a suite"):
        load_task("med9")


def test_importing_the_package_does_not_import_inspect() -> None:
    code = "import sys, fleming.tasks; print('inspect_ai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_task_registers_as_fleming_name() -> None:
    from inspect_ai._util.registry import registry_info

    from fleming.tasks import BENCHMARKS, task_function

    for name in BENCHMARKS:
        assert registry_info(task_function(name)).name == f"fleming/{name}"


# ------------------------------------------------------------------ the benchmark plugin

def test_benchmark_plugin_builds_tasks_and_validates_args(benchmarks_dir: Path, tmp_path: Path) -> None:
    from fleming.components import validate_args
    from fleming.protocols import Benchmark
    from fleming.tasks import BENCHMARKS, SUITES
    from fleming.testing import fresh_registry

    _, registry = fresh_registry()
    assert set(registry.names("benchmarks")) >= {*BENCHMARKS, "kg-heldout", "med9"}
    reg = registry.get("benchmarks", "medbullets")
    args = validate_args(reg, {"options": 4, "shuffle_seed": 1}, "eval.benchmarks[0]", tmp_path)
    bench = reg.factory(**args)
    assert isinstance(bench, Benchmark)
    task = bench.task(benchmarks_dir, 5)
    assert len(task.dataset) == 5 and all(s.metadata["letters"] == list("ABCD") for s in task.dataset)
    with pytest.raises(RecipeError, match=r"eval.benchmarks\[0\].args.option: .*did you mean 'options'"):
        validate_args(reg, {"option": 4}, "eval.benchmarks[0]", tmp_path)

    write_jsonl(tmp_path / "run" / "mix" / "heldout.jsonl", [record(0), record(1)])
    held = registry.get("benchmarks", "kg-heldout")
    task = held.factory(**validate_args(held, {}, "eval.benchmarks[1]", tmp_path)).task(None, None,
                                                                                       run_dir=tmp_path / "run")
    assert [s.id for s in task.dataset] == ["q0", "q1"]
    suite = registry.get("benchmarks", "med9").factory()
    assert suite.members == SUITES["med9"]


def test_suite_keeps_a_fixed_subset_of_each_benchmark_found_and_says_which_are_missing(tmp_path: Path) -> None:
    from fleming.components import validate_args
    from fleming.benchmarks import benchmark_makers
    from fleming.testing import fresh_registry

    write_jsonl(tmp_path / "medqa_usmle_4opt_test.jsonl", [record(i) for i in range(8)])
    _, registry = fresh_registry()
    reg = registry.get("benchmarks", "med9")
    suite = reg.factory(**validate_args(reg, {"limit": 3, "missing": "skip"}, "eval.benchmarks[1]", tmp_path))
    said: list[str] = []
    makers = benchmark_makers(suite, "med9", str(tmp_path), None, log=said.append)
    assert [name for name, _ in makers] == ["medqa"]
    assert [s.id for s in makers[0][1]().dataset] == ["q0", "q1", "q2"]  # the first 3, every time
    assert len(said) == 1 and "skipping 8 of 9" in said[0] and "jmed" in said[0]
    assert benchmark_makers(suite, "med9", None, None, log=said.append) == []  # no folder: nothing local
    assert "no benchmark folder" in said[-1]
    strict = reg.factory()  # the default: every member, and a missing file stops the evaluation
    assert len(benchmark_makers(strict, "med9", str(tmp_path), None)) == 9
    with pytest.raises(RecipeError, match=r"eval.benchmarks\[1\].args.missing"):
        validate_args(reg, {"missing": "ignore"}, "eval.benchmarks[1]", tmp_path)
    one = registry.get("benchmarks", "medqa")
    bench = one.factory(**validate_args(one, {"limit": 2}, "eval.benchmarks[0]", tmp_path))
    assert len(bench.task(tmp_path, None).dataset) == 2 and len(bench.task(tmp_path, 1).dataset) == 1


@pytest.mark.parametrize("name", ["medqa", "pubmedqa", "medbullets", "kg_heldout", "kg_heldout_known", "kg_dev"])
def test_recipe_args_match_the_task_arguments(name: str) -> None:
    import inspect

    from fleming.tasks import BENCHMARKS, task_function

    params = set(inspect.signature(task_function(name)).parameters) - {"data_dir"}
    assert set(BENCHMARKS[name].args.model_fields) - {"limit"} == params  # limit: the component's own subset


# ------------------------------------------------------------------ the public builder

def test_mcq_task_builds_fleming_scoring_over_any_items(tmp_path: Path) -> None:
    from fleming import QAItem
    from fleming.tasks import mcq_task

    items = [QAItem(id=f"p{i}", question=f"Marker-{i}: pick one", options={"A": "yes", "B": "no"}, answer="A",
                    provenance={"organ": "heart" if i < 2 else "lung"}) for i in range(3)]
    task = mcq_task([*items, record(9)], name="probe", subject_field="organ", max_tokens=64)
    assert [s.id for s in task.dataset] == ["p0", "p1", "p2", "q9"] and task.config.max_tokens == 64
    assert task.metadata["benchmark"] == "probe" and "<answer>" in task.dataset[0].input
    replies = {"Marker-0": "<answer>A</answer>", "Marker-1": "I think A", "Marker-2": "<answer>B</answer>"}
    got = scores(run(task, scripted_model(replies), tmp_path / "logs"))
    assert got["strict"]["accuracy"] == pytest.approx(1 / 4) and got["lenient"]["accuracy"] == pytest.approx(2 / 4)
    assert got["no_answer"]["mean"] == pytest.approx(2 / 4)
    assert got["strict"]["grouped_heart"] == pytest.approx(1 / 2) and got["strict"]["grouped_lung"] == 0.0


def test_mcq_task_names_a_bad_item() -> None:
    from fleming.tasks import mcq_task

    with pytest.raises(DataError, match=r"^probe: item 1: answer 'Z' is not one of the option letters"):
        mcq_task([record(0), record(1, answer="Z")], name="probe")
    with pytest.raises(DataError, match=r"probe: item 1: duplicate id 'q0'"):
        mcq_task([record(0), record(0)], name="probe")
    with pytest.raises(DataError, match="probe: no items to evaluate"):
        mcq_task([], name="probe")
    with pytest.raises(DataError, match="probe: max_tokens must be a whole number"):
        mcq_task([record(0)], name="probe", max_tokens=0)


# ------------------------------------------------------------------ offline token counting

def test_token_count_falls_back_to_an_estimate_when_the_tokenizer_cannot_load() -> None:
    from fleming.tasks._offline import estimate_tokens, with_fallback

    calls: list[str] = []

    def broken(text: str) -> int:
        calls.append(text)
        raise ConnectionError("no network")

    count: Callable[[str], int] = with_fallback(broken)
    assert count("x" * 40) == estimate_tokens("x" * 40) == 11
    assert count("abc") == 1
    assert calls == ["x" * 40]  # not retried after the first failure
    assert with_fallback(len)("abcdef") == 6  # a working counter is used as it is

    def buggy(text: str) -> int:
        raise ValueError("a real bug")

    with pytest.raises(ValueError):
        with_fallback(buggy)("text")
