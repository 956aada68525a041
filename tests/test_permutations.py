"""Option-order consistency (``permutations=K``): rotated samples, their ids and targets, the consistent and
flip-rate metrics through Inspect, the first N items with rotations, and the recipe and suite args."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleming.errors import DataError, RecipeError
from fleming.testing import write_jsonl

LETTERS = "ABCDEFGHIJ"


def item(i: int, answer: str = "B", n: int = 4) -> dict[str, Any]:
    """A uniform record whose right option says ``right`` and whose others say ``wrong``."""
    return {"id": f"q{i}", "question": f"Marker-{i}: which option is right?",
            "options": {k: f"{'right' if k == answer else 'wrong'} {k.lower()} of {i}" for k in LETTERS[:n]},
            "answer": answer, "meta": {"meta_info": "step1" if i % 2 else "step2&3"}}


def items(count: int, n: int = 4) -> list[dict[str, Any]]:
    return [item(i, LETTERS[i % n], n) for i in range(count)]


def model(reply: Any) -> Any:
    """mockllm replying `reply(prompt)` (usage set: no tokenizer needed)."""
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    def respond(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
        out = ModelOutput.from_content(model="mockllm", content=reply(messages[-1].text))
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
        return out

    return get_model("mockllm/model", custom_outputs=respond, memoize=False)


def always_a(prompt: str) -> str:
    return "I will go with the first one.\n<answer>A</answer>"


def right_text(prompt: str) -> str:
    letter = re.search(r"^([A-Z])\. right ", prompt, re.MULTILINE)
    assert letter, prompt
    return f"<answer>{letter.group(1)}</answer>"


def run(task: Any, reply: Any, log_dir: Path) -> Any:
    from inspect_ai import eval as inspect_eval

    (log,) = inspect_eval(task, model=model(reply), log_dir=str(log_dir), display="none")
    assert log.status == "success", log.error
    return log


def metrics(log: Any) -> dict[str, dict[str, Any]]:
    return {s.name: dict(s.metrics) for s in log.results.scores}


def medqa(tmp_path: Path, records: list[dict[str, Any]], **args: Any) -> Any:
    from fleming.tasks import load_task

    return load_task("medqa", data_file=str(write_jsonl(tmp_path / "items.jsonl", records)), **args)


# ------------------------------------------------------------------ through Inspect

def test_constant_answer_on_four_orders_scores_a_quarter_never_consistent_always_flipping(tmp_path: Path) -> None:
    log = run(medqa(tmp_path, items(6), permutations=4), always_a, tmp_path / "logs")
    assert log.results.completed_samples == 24
    got = metrics(log)
    strict = {k: m.value for k, m in got["strict"].items()}
    assert strict["accuracy"] == 0.25 and strict["consistent"] == 0.0 and strict["flip_rate"] == 1.0
    assert {"accuracy", "stderr", "consistent", "flip_rate"} <= set(strict)
    # each item is right in exactly one order of four: clustered by item, nothing varies between items
    assert got["strict"]["stderr"].params.get("cluster") == "id" and strict["stderr"] == pytest.approx(0.0)
    assert got["lenient"]["stderr"].params.get("cluster") == "id"
    sample = next(s for s in log.samples if s.id == "q1#r2")
    assert sample.metadata["id"] == "q1" and sample.metadata["rotation"] == 2
    (score,) = sample.scores.values()
    assert score.metadata["item"] == "q1" and score.metadata["choice"] == sample.metadata["options"]["A"]


def test_right_text_in_every_order_is_consistent_and_never_flips(tmp_path: Path) -> None:
    log = run(medqa(tmp_path, items(5), permutations=3), right_text, tmp_path / "logs")
    strict = {k: m.value for k, m in metrics(log)["strict"].items()}
    assert (strict["accuracy"], strict["consistent"], strict["flip_rate"]) == (1.0, 1.0, 0.0)


def test_one_order_is_todays_task_samples_and_metrics(tmp_path: Path) -> None:
    from fleming.tasks import mcq_task

    records = items(4)
    plain, one = mcq_task(records, name="probe"), mcq_task(records, name="probe", permutations=1)
    assert [(s.id, s.input, s.target, s.metadata) for s in plain.dataset] == \
        [(s.id, s.input, s.target, s.metadata) for s in one.dataset]
    assert [s.id for s in one.dataset] == ["q0", "q1", "q2", "q3"]
    assert [s.target for s in one.dataset] == [r["answer"] for r in records]
    assert all("rotation" not in s.metadata and s.metadata["id"] == s.id for s in one.dataset)
    got = metrics(run(one, always_a, tmp_path / "logs"))
    assert set(got) == {"strict", "lenient", "no_answer"}
    assert set(got["strict"]) == {"accuracy", "stderr"} and set(got["lenient"]) == {"accuracy", "stderr"}
    assert not got["strict"]["stderr"].params.get("cluster")
    assert got["strict"]["accuracy"].value == 0.25  # q0 is the one item whose answer is A


# ------------------------------------------------------------------ the samples

@pytest.mark.parametrize("seed", [None, 7])
def test_each_rotation_moves_the_target_with_the_right_text(seed: int | None) -> None:
    from fleming.tasks import mcq_task

    records = items(6, n=5)
    rotated = mcq_task(records, name="probe", permutations=5, shuffle_seed=seed)
    today = {s.id: s for s in mcq_task(records, name="probe", shuffle_seed=seed).dataset}
    assert [s.id for s in rotated.dataset if s.metadata["rotation"] == 0] == list(today)  # the same item order
    by_id = {r["id"]: r for r in records}
    for s in rotated.dataset:
        base, k = today[s.metadata["id"]], s.metadata["rotation"]
        assert s.id == (base.id if k == 0 else f"{base.id}#r{k}")
        if k == 0:
            assert (s.input, s.target, s.metadata["options"]) == (base.input, base.target, base.metadata["options"])
        texts = list(base.metadata["options"].values())  # shuffled first (with a seed), then rotated
        assert list(s.metadata["options"].values()) == texts[k:] + texts[:k]
        assert s.metadata["letters"] == list("ABCDE")
        assert s.target == LETTERS[(LETTERS.index(base.target) - k) % 5]
        right = by_id[s.metadata["id"]]
        assert s.metadata["options"][s.target] == right["options"][right["answer"]]
        assert f"\n{s.target}. {right['options'][right['answer']]}\n" in s.input


def test_an_item_with_fewer_options_than_orders_is_asked_under_all_of_its_own(
        caplog: pytest.LogCaptureFixture) -> None:
    from fleming.tasks import mcq_task

    with caplog.at_level(logging.WARNING):
        task = mcq_task([item(0, "A", 3), item(1, "B", 4), item(2, "C", 5)], name="probe", permutations=4)
    assert [s.id for s in task.dataset] == ["q0", "q0#r1", "q0#r2", "q1", "q1#r1", "q1#r2", "q1#r3",
                                            "q2", "q2#r1", "q2#r2", "q2#r3"]
    assert "probe: 1 of 3 items have fewer than 4 options" in caplog.text


@pytest.mark.parametrize("bad", [0, -2, True, 1.5, "2"])
def test_permutations_below_one_or_not_whole_is_one_line_naming_the_benchmark(bad: Any, tmp_path: Path) -> None:
    from fleming.tasks import mcq_task

    with pytest.raises(DataError, match=r"^probe: permutations must be a whole number of at least 1"):
        mcq_task(items(2), name="probe", permutations=bad)
    with pytest.raises(DataError, match=r"^medqa: permutations"):
        medqa(tmp_path, items(2), permutations=0)


def test_an_item_id_clashing_with_a_rotation_id_is_named() -> None:
    from fleming.tasks import mcq_task

    clash = {**item(1), "id": "q0#r1"}
    with pytest.raises(DataError, match=r"two samples have the id 'q0#r1'"):
        mcq_task([item(0), clash], name="probe", permutations=2)


# ------------------------------------------------------------------ the metrics on their own

def test_flip_rate_counts_no_answer_as_a_choice_and_never_answering_as_no_flip() -> None:
    from inspect_ai.scorer import SampleScore, Score

    from fleming.tasks._permutations import consistent, flip_rate

    def scores(item_id: str, outcomes: list[tuple[float, str | None]]) -> list[SampleScore]:
        return [SampleScore(score=Score(value=v, metadata={"item": item_id, "choice": c}), sample_id=f"{item_id}#{k}")
                for k, (v, c) in enumerate(outcomes)]

    silent = scores("a", [(0.0, None)] * 3)                            # never answers: no flip
    once = scores("b", [(1.0, "x"), (0.0, None), (1.0, "x")])         # no answer once: a flip
    steady = scores("c", [(1.0, "y")] * 3)                             # right every time
    assert flip_rate()(silent) == 0.0 and flip_rate()(once) == 1.0 and flip_rate()(steady) == 0.0
    assert consistent()(silent + once + steady) == pytest.approx(1 / 3)
    assert flip_rate()(silent + once + steady) == pytest.approx(1 / 3)


def test_the_metrics_are_logged_by_their_plain_names_in_every_install() -> None:
    from inspect_ai._util.registry import registry_info, registry_log_name, set_registry_info

    from fleming.tasks._permutations import consistent, logged_as

    namespaced = consistent()  # what a wheel install gives
    set_registry_info(namespaced, registry_info(namespaced).model_copy(update={"name": "fleming/consistent"}))
    assert registry_log_name(logged_as(namespaced, "consistent")) == "consistent"


# ------------------------------------------------------------------ the first N items, recipes and suites

def test_the_first_n_items_keep_every_order_of_each(tmp_path: Path) -> None:
    from fleming.benchmarks import first_items
    from fleming.evaluation import _length_sorted

    task = medqa(tmp_path, items(5), permutations=3, shuffle_seed=1)
    order = list(dict.fromkeys(s.metadata["id"] for s in task.dataset))
    kept = first_items(task, 2).dataset
    assert len(kept) == 6 and {s.metadata["id"] for s in kept} == set(order[:2])
    assert {s.metadata["id"] for s in _length_sorted(task, 2).dataset} == set(order[:2])
    plain = medqa(tmp_path, items(5))
    assert [s.id for s in first_items(plain, 2).dataset] == ["q0", "q1"]


def test_recipe_args_and_the_suite_pass_permutations_through(tmp_path: Path) -> None:
    from fleming.benchmarks import benchmark_makers
    from fleming.components import validate_args
    from fleming.testing import fresh_registry

    data = write_jsonl(tmp_path / "medqa_usmle_4opt_test.jsonl", items(5))
    _, registry = fresh_registry()
    one = registry.get("benchmarks", "medqa")
    bench = one.factory(**validate_args(one, {"permutations": 4, "data_file": str(data), "limit": 2},
                                        "eval.benchmarks[0]", tmp_path))
    assert [s.id for s in bench.task(None, None).dataset] == [f"q{i}{r}" for i in range(2)
                                                             for r in ("", "#r1", "#r2", "#r3")]
    with pytest.raises(RecipeError, match=r"eval.benchmarks\[0\].args.permutations"):
        validate_args(one, {"permutations": 0}, "eval.benchmarks[0]", tmp_path)

    reg = registry.get("benchmarks", "med9")
    suite = reg.factory(**validate_args(reg, {"limit": 3, "missing": "skip", "permutations": 2},
                                        "eval.benchmarks[1]", tmp_path))
    (name, make), = benchmark_makers(suite, "med9", str(tmp_path), None, log=lambda line: None)
    assert name == "medqa" and [s.id for s in make().dataset] == ["q0", "q0#r1", "q1", "q1#r1", "q2", "q2#r1"]


def test_fleming_eval_passes_permutations_as_a_task_arg() -> None:
    from fleming.cli.eval_cmd import _task_args

    assert _task_args(("permutations=4",), ["medqa", "pubmedqa"]) == {"medqa": {"permutations": 4},
                                                                       "pubmedqa": {"permutations": 4}}


def test_plain_inspect_eval_takes_permutations(tmp_path: Path) -> None:
    """``inspect eval fleming/medqa -T permutations=4``: mockllm's canned reply has no answer in any order."""
    data = write_jsonl(tmp_path / "items.jsonl", items(3))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "INSPECT_LOG_LEVEL": "warning",
           "NO_COLOR": "1"}
    cmd = [str(Path(sys.executable).with_name("inspect")), "eval", "fleming/medqa", "--model", "mockllm/model",
           "-T", f"data_file={data}", "-T", "permutations=4", "--log-dir", str(tmp_path / "logs"),
           "--display", "none"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    from inspect_ai.log import list_eval_logs, read_eval_log

    (info,) = list_eval_logs(str(tmp_path / "logs"))
    log = read_eval_log(info)
    assert log.status == "success" and log.results.completed_samples == 12
    strict = {k: m.value for k, m in metrics(log)["strict"].items()}
    assert (strict["accuracy"], strict["consistent"], strict["flip_rate"]) == (0.0, 0.0, 0.0)
    assert log.eval.metadata["permutations"] == 4
