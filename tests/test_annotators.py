"""The difficulty and pass-rate annotators: parsing, buckets, failures, the base model default, the swap."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import _scripted_llm as scripted
from fleming.errors import StageError
from fleming.plugins.verifiers.difficulty import DifficultyAnnotator, difficulty_messages, parse_difficulty
from fleming.plugins.verifiers.pass_rate import PassRateAnnotator, base_model, bucket
from fleming.recipe import load_recipe
from fleming.testing import fresh_registry, make_item, stage_ctx


pytestmark = pytest.mark.usefixtures("own_cache")


def _ctx(folder: Path) -> Any:
    return stage_ctx(folder, "annotate")


@pytest.mark.parametrize(("reply", "level"), [
    ("Rare syndrome, multi-step. <difficulty>difficult</difficulty>", "difficult"),
    ("<difficulty> **Moderate** </difficulty>", "moderate"),
    ("<difficulty>easy</difficulty> ... on reflection <difficulty>moderate</difficulty>", "moderate"),
    ("It is easy.", None),
    ("<difficulty>trivial</difficulty>", None),
    ("<difficulty>easy", None),
])
def test_parse_difficulty(reply: str, level: str | None) -> None:
    assert parse_difficulty(reply) == level


def test_the_prompt_holds_the_paper_definitions_and_the_item() -> None:
    system, user = difficulty_messages(make_item(3, answer="C"))
    assert "basic medical knowledge" in system["content"] and "rare conditions" in system["content"]
    assert "multi-step inference" in system["content"] and "<difficulty>" in system["content"]
    assert "Question number 3?" in user["content"] and "Correct answer: C. gamma 3" in user["content"]


def test_difficulty_sets_levels_and_leaves_unparseable_or_failed_items_unverified(tmp_path: Path) -> None:
    scripted.reset({"number 0?": ["<difficulty>easy</difficulty>"], "number 1?": ["hard to say"],
                    "number 2?": [TimeoutError("provider timed out")], "number 3?": ["<difficulty>difficult</difficulty>"]})
    items = [make_item(i) for i in range(4)]
    ctx = _ctx(tmp_path)
    annotator = DifficultyAnnotator(model="fleming-scripted/grader", retries=1, backoff=0.0)
    verdicts = annotator.verify(items, ctx)
    assert [v.status for v in verdicts] == ["pass", "unverified", "unverified", "pass"]
    assert [v.item.difficulty for v in verdicts] == ["easy", None, None, "difficult"]
    assert "no <difficulty>" in verdicts[1].reason and "hard to say" in verdicts[1].reason
    assert "TimeoutError: provider timed out (2 attempts)" in verdicts[2].reason
    assert verdicts[0].item.provenance["difficulty_by"] == {"annotator": "difficulty",
                                                            "model": "fleming-scripted/grader"}
    assert ctx.notes["difficulty"]["calls"] == 5  # 4 items, one retried
    # overwrite: false keeps difficulties items already have, without a call
    scripted.CALLS.clear()
    keep = DifficultyAnnotator(model="fleming-scripted/grader", overwrite=False, cache=False)
    kept = keep.verify([items[0].replace(difficulty="moderate"), items[3]], _ctx(tmp_path / "b"))
    assert [v.item.difficulty for v in kept] == ["moderate", "difficult"] and dict(scripted.CALLS) == {"number 3?": 1}


@pytest.mark.parametrize(("rate", "level"), [(1.0, "easy"), (0.8, "easy"), (0.6, "moderate"), (0.3, "moderate"),
                                             (0.2, "difficult"), (0.0, "difficult")])
def test_pass_rate_buckets(rate: float, level: str) -> None:
    assert bucket(rate, easy_at=0.8, moderate_at=0.3) == level


def test_pass_rate_annotates_from_k_samples(tmp_path: Path) -> None:
    right, wrong = "<answer>B</answer>", "<answer>D</answer>"
    scripted.reset({"number 0?": [right], "number 1?": [right, right, wrong], "number 2?": [wrong],
                    "number 3?": [right, ConnectionError("reset by peer")]})
    items = [make_item(i) for i in range(4)]
    verdicts = PassRateAnnotator(model="fleming-scripted/policy", k=5, retries=0).verify(items, _ctx(tmp_path))
    assert [v.item.difficulty for v in verdicts] == ["easy", "moderate", "difficult", None]
    assert [v.status for v in verdicts] == ["pass", "pass", "pass", "unverified"]
    assert verdicts[1].item.provenance["pass_rate"] == {"rate": 0.4, "k": 5, "model": "fleming-scripted/policy",
                                                        "parser": "strict"}
    assert "reset by peer" in verdicts[3].reason


def test_pass_rate_reads_untagged_answers_only_when_told_to_be_lenient(tmp_path: Path) -> None:
    untagged = "Looking at the options, the answer is B."
    scripted.reset({"number 0?": [untagged], "number 1?": ["<answer>B</answer>"]})
    items = [make_item(i) for i in range(2)]
    strict = PassRateAnnotator(model="fleming-scripted/policy", k=2, retries=0).verify(items, _ctx(tmp_path))
    lenient = PassRateAnnotator(model="fleming-scripted/policy", k=2, retries=0,
                                parser="lenient").verify(items, _ctx(tmp_path))
    assert [v.item.difficulty for v in strict] == ["difficult", "easy"]
    assert [v.item.difficulty for v in lenient] == ["easy", "easy"]
    assert lenient[0].item.provenance["pass_rate"]["parser"] == "lenient"
    assert lenient[0].details["lenient"] == ["B", "B"] and lenient[0].details["answers"] == [None, None]


def test_pass_rate_defaults_to_the_runs_base_model(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="annotate: pass-rate: no model given and the run's base model is unknown"):
        base_model(_ctx(tmp_path))
    ctx = stage_ctx(tmp_path, "annotate", base_model="/models/smollm2-135m-instruct")
    assert base_model(ctx) == ("hf/smollm2-135m-instruct", {"model_path": "/models/smollm2-135m-instruct"})


def test_swapping_annotators_is_one_line(tmp_path: Path) -> None:
    _, registry = fresh_registry()
    (tmp_path / "qa.jsonl").write_text(json.dumps(make_item(0).to_record()) + "\n", encoding="utf-8")
    for line in ("{plugin: difficulty, args: {model: openai/gpt-4o}}", "{plugin: pass-rate, args: {k: 8}}"):
        path = tmp_path / "recipe.yaml"
        path.write_text("name: swap\nmodel: tiny-random\ndata:\n  sources: [{plugin: jsonl, args: {path: qa.jsonl}}]\n"
                        f"  annotate: [{line}]\n", encoding="utf-8")
        loaded = load_recipe(path, registry)
        assert loaded.recipe.data.annotate[0].plugin in ("difficulty", "pass-rate")
