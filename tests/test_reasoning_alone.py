"""The reasoning-alone check: what the cut removes, the share over right answers in the log, the judge's default,
and the cache that spares a re-run its judge calls."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from fleming.testing import write_jsonl
from fleming.tasks._reasoning_alone import cut_reasoning, weights_fingerprint

OPTIONS = {"A": "Insulin", "B": "Metformin", "C": "Sulfonylurea", "D": "Diet alone"}
JUDGE_ASKED = "Which option does this reasoning lead to?"


@pytest.fixture(autouse=True)
def _own_inspect_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Inspect's generate cache (where judge replies are kept) in a folder of this test's own."""
    folder = tmp_path / "inspect-cache"
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(folder))
    return folder


# ------------------------------------------------------------------ the cut

@pytest.mark.parametrize("completion, reasoning", [
    ("Obese, HbA1c 8.1%: type 2 diabetes. Metformin lowers hepatic glucose output.\n<answer>B</answer>",
     "Obese, HbA1c 8.1%: type 2 diabetes. Metformin lowers hepatic glucose output."),
    ("Type 2 diabetes in an obese adult. Metformin lowers hepatic glucose output. Therefore, the answer is B."
     "\n\n<answer>B</answer>", "Type 2 diabetes in an obese adult. Metformin lowers hepatic glucose output."),
    ("Insulin (A) is for type 1 or failure of oral drugs. So the correct option is (B) Metformin.\n<answer>B</answer>",
     "Insulin (A) is for type 1 or failure of oral drugs."),
    ("Insulin is not first line here.\n\n**Final Answer:**\nB. Metformin\n\n<answer>B</answer>",
     "Insulin is not first line here."),
    ("Insulin is not first line here.\n\n---\nAnswer: B\n<answer>B</answer>", "Insulin is not first line here."),
    ("Lifestyle alone has failed. Thus metformin is the most appropriate next step.\n<answer>(B)</answer>",
     "Lifestyle alone has failed."),
    ("Lifestyle alone has failed.<answer>B</answer>\nThe answer is B because metformin is first line.",
     "Lifestyle alone has failed."),
    ("Option B, metformin, is first line; option A, insulin, comes later. Sulfonylureas cause weight gain.\n"
     "<answer>B</answer><|im_end|>",
     "Option B, metformin, is first line; option A, insulin, comes later. Sulfonylureas cause weight gain."),
    ("<answer>B</answer>", ""),
    ("Therefore, the answer is B.\n<answer>B</answer>", ""),
], ids=["tag-only", "closing-sentence", "letter-and-text", "final-answer-heading", "answer-line",
        "text-conclusion", "text-after-tag", "answer-named-mid-text-kept", "nothing-but-the-tag",
        "nothing-but-the-conclusion"])
def test_the_cut_drops_the_tag_and_closing_statements_and_keeps_the_reasoning(completion: str,
                                                                               reasoning: str) -> None:
    assert cut_reasoning(completion, OPTIONS) == reasoning


def test_the_cut_keeps_a_last_sentence_that_names_the_answer_without_concluding() -> None:
    text = "Obese adult with a high HbA1c. First-line treatment is metformin.\n<answer>B</answer>"
    assert cut_reasoning(text, OPTIONS) == "Obese adult with a high HbA1c. First-line treatment is metformin."


# ------------------------------------------------------------------ the score in the log

def record(i: int, answer: str) -> dict[str, Any]:
    return {"id": f"q{i}", "question": f"Marker-{i}: which drug first?", "options": dict(OPTIONS),
            "answer": answer, "meta": {}}


RECORDS = [record(0, "B"), record(1, "B"), record(2, "A"), record(3, "C"), record(4, "D"), record(5, "B")]
COMPLETIONS = {  # the evaluated model's reply to each question
    "Marker-0:": "LEADS metformin lowers glucose. Therefore, the answer is B.\n<answer>B</answer>",  # judge right
    "Marker-1:": "LEADS weight-neutral drug first.\n<answer>B</answer>",                             # judge right
    "Marker-2:": "ASTRAY oral drugs come first. So the answer is A.\n<answer>A</answer>",          # judge wrong
    "Marker-3:": "<answer>C</answer>",                           # right, nothing left: 0 without a call
    "Marker-4:": "LEADS diet alone.\n<answer>A</answer>",        # wrong: not judged
    "Marker-5:": "No tag at all, B.",                             # no strict answer: not judged
}
RIGHT_SHARE = 2 / 4  # of the four right answers, two reasonings lead the judge to them


def judge_reply(prompt: str) -> str:
    """The judge follows a reasoning marked LEADS to the right option and any other one to D."""
    if "LEADS" not in prompt:
        return "<answer>D</answer>"
    marker = next(m for m in COMPLETIONS if m in prompt)
    return f"<answer>{next(r['answer'] for r in RECORDS if r['question'].startswith(marker))}</answer>"


def mock(reply: Callable[[str], str], calls: list[str], **model_args: Any) -> Any:
    """mockllm answering with `reply(prompt)` and recording each prompt in `calls`."""
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    def respond(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
        calls.append(messages[-1].text)
        out = ModelOutput.from_content(model="mockllm", content=reply(messages[-1].text))
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
        return out

    return get_model("mockllm/model", custom_outputs=respond, memoize=False, **model_args)


def evaluated_reply(prompt: str) -> str:
    """The evaluated model: its completion for an evaluation prompt, the judge's reply for a judge prompt."""
    if JUDGE_ASKED in prompt:
        return judge_reply(prompt)
    return next((r for key, r in COMPLETIONS.items() if key in prompt), "no idea")


def run(tmp_path: Path, model: Any, roles: Mapping[str, Any] | None = None, **task_args: Any) -> Any:
    from inspect_ai import eval as inspect_eval

    from fleming.tasks import load_task

    data = write_jsonl(tmp_path / "items.jsonl", RECORDS)
    task = load_task("medmcqa", data_file=str(data), **task_args)
    (log,) = inspect_eval(task, model=model, model_roles=dict(roles) if roles else None,
                          log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    return log


def judged(calls: list[str]) -> list[str]:
    return [c for c in calls if JUDGE_ASKED in c]


def reasoning_score(log: Any) -> Any:
    return next(s for s in log.results.scores if s.name == "reasoning_alone")


def test_the_share_is_over_right_answers_only_with_a_judge_of_its_own(tmp_path: Path) -> None:
    evaluated, judge = [], []
    log = run(tmp_path, mock(evaluated_reply, evaluated), roles={"judge": mock(judge_reply, judge)},
              reasoning_alone=True)

    assert [s.name for s in log.results.scores] == ["strict", "lenient", "no_answer", "reasoning_alone"]
    score = reasoning_score(log)
    assert set(score.metrics) == {"mean", "stderr"}
    assert score.metrics["mean"].value == pytest.approx(RIGHT_SHARE)
    assert score.metrics["stderr"].value == pytest.approx(math.sqrt(1 / 12))  # sample sd of 1,1,0,0 / sqrt(4)
    assert (score.scored_samples, score.unscored_samples) == (4, 2)
    strict = next(s for s in log.results.scores if s.name == "strict")
    assert strict.metrics["accuracy"].value == pytest.approx(4 / 6)

    assert not judged(evaluated) and len(judge) == 3  # the empty cut (q3) and the wrong answers ask nothing
    by_id = {s.id: s.scores["answer_scorer"] for s in log.samples}
    assert by_id["q0"].value["reasoning_alone"] == 1.0 and by_id["q2"].value["reasoning_alone"] == 0.0
    assert by_id["q0"].metadata["reasoning_alone"] == {"cut": "LEADS metformin lowers glucose.",
                                                       "judge_answer": "B", "judge": "mockllm/model"}
    assert by_id["q2"].metadata["reasoning_alone"]["judge_answer"] == "D"
    assert by_id["q3"].metadata["reasoning_alone"] == {"cut": "", "judge_answer": None, "judge": "mockllm/model"}
    assert by_id["q3"].value["reasoning_alone"] == 0.0
    for wrong in ("q4", "q5"):
        assert math.isnan(by_id[wrong].value["reasoning_alone"]) and by_id[wrong].metadata["reasoning_alone"] is None
    prompt = next(c for c in judge if "Marker-0:" in c)
    assert "Marker-0: which drug first?" in prompt and "B. Metformin" in prompt
    assert "LEADS metformin lowers glucose." in prompt and "Therefore" not in prompt and "<answer>B" not in prompt


def test_the_log_on_disk_keeps_the_score_and_its_metrics(tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log

    log = run(tmp_path, mock(evaluated_reply, []), roles={"judge": mock(judge_reply, [])}, reasoning_alone=True)
    again = read_eval_log(log.location)
    score = reasoning_score(again)
    assert score.metrics["mean"].value == pytest.approx(RIGHT_SHARE) and "stderr" in score.metrics
    assert math.isnan(next(s for s in again.samples if s.id == "q4").scores["answer_scorer"].value["reasoning_alone"])


def test_the_judge_defaults_to_the_evaluated_model(tmp_path: Path) -> None:
    calls: list[str] = []
    log = run(tmp_path, mock(evaluated_reply, calls), reasoning_alone=True)
    assert reasoning_score(log).metrics["mean"].value == pytest.approx(RIGHT_SHARE)
    assert len(judged(calls)) == 3 and len(calls) == len(RECORDS) + 3


def test_a_named_judge_is_asked(tmp_path: Path) -> None:
    calls: list[str] = []
    log = run(tmp_path, mock(evaluated_reply, calls), reasoning_alone=True, judge="mockllm/model")
    assert not judged(calls)  # the named judge (mockllm's canned reply, no letter) answered instead
    assert reasoning_score(log).metrics["mean"].value == 0.0
    q0 = next(s for s in log.samples if s.id == "q0").scores["answer_scorer"]
    assert q0.metadata["reasoning_alone"]["judge"] == "mockllm/model"
    assert q0.metadata["reasoning_alone"]["judge_answer"] is None


def test_a_rerun_makes_no_new_judge_calls(tmp_path: Path) -> None:
    first, second = [], []
    log1 = run(tmp_path / "1", mock(evaluated_reply, first), reasoning_alone=True)
    log2 = run(tmp_path / "2", mock(evaluated_reply, second), reasoning_alone=True)
    assert len(judged(first)) == 3 and judged(second) == []
    assert len(second) == len(RECORDS)  # the evaluation itself is not cached
    assert reasoning_score(log2).metrics["mean"].value == reasoning_score(log1).metrics["mean"].value


def test_new_weights_under_the_same_name_are_judged_anew(tmp_path: Path) -> None:
    weights = tmp_path / "checkpoint"
    weights.mkdir()
    (weights / "config.json").write_text('{"step": 1}')
    (weights / "model.safetensors").write_bytes(b"\x00" * 64)
    counts = []
    for step in range(3):
        if step == 2:
            (weights / "model.safetensors").write_bytes(b"\x01" * 64)  # same size, new contents
        calls: list[str] = []
        run(tmp_path / str(step), mock(evaluated_reply, calls, model_path=str(weights)), reasoning_alone=True)
        counts.append(len(judged(calls)))
    assert counts == [3, 0, 3]


def test_the_weights_fingerprint_follows_the_contents(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"abc")
    before = weights_fingerprint(str(tmp_path))
    assert weights_fingerprint(str(tmp_path)) == before
    (tmp_path / "w.bin").write_bytes(b"abd")
    assert weights_fingerprint(str(tmp_path)) != before
    assert weights_fingerprint(str(tmp_path / "w.bin")) != weights_fingerprint(str(tmp_path))


def test_without_the_check_the_scores_are_as_before(tmp_path: Path) -> None:
    calls: list[str] = []
    log = run(tmp_path, mock(evaluated_reply, calls))
    assert [s.name for s in log.results.scores] == ["strict", "lenient", "no_answer"]
    assert not judged(calls) and len(calls) == len(RECORDS)
    q0 = next(s for s in log.samples if s.id == "q0").scores["answer_scorer"]
    assert q0.value == {"strict": 1.0, "lenient": 1.0, "no_answer": 0.0}
    assert "reasoning_alone" not in q0.metadata and q0.metadata["lenient_answer"] == "B"
    strict = next(s for s in log.results.scores if s.name == "strict")
    assert strict.metrics["accuracy"].value == pytest.approx(4 / 6)
