"""The label-check verifier: k trials over an Inspect model, the flag rule and policies, caching, failures."""
from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import _scripted_llm as scripted
from fleming.formats import chat_messages
from fleming.plugins.verifiers.label_check import LabelCheck
from fleming.review import read_decisions
from fleming.testing import fresh_registry, make_item, stage_ctx
from fleming.components import build
from fleming.errors import PluginError
from fleming.types import QAItem

RIGHT, WRONG, OTHER = "I think <answer>B</answer>", "<answer>A</answer>", "<answer>C</answer>"


pytestmark = pytest.mark.usefixtures("own_cache")


def _ctx(folder: Path) -> Any:
    return stage_ctx(folder, "verify")


def _items() -> list[QAItem]:
    """Item 0 always right, 1 always wrong, 2 right in 2 of 5, 3 never answers with a tag (answer B)."""
    scripted.reset({"number 0?": [RIGHT], "number 1?": [WRONG],
                    "number 2?": [RIGHT, RIGHT, OTHER], "number 3?": ["B is my guess"]})
    return [make_item(i) for i in range(4)]


def test_never_right_is_flagged_always_right_passes_mixed_follows_min_correct(tmp_path: Path) -> None:
    items = _items()
    ctx = _ctx(tmp_path / "a")
    verdicts = LabelCheck(model="fleming-scripted/checker", policy="flag").verify(items, ctx)
    assert [v.status for v in verdicts] == ["pass", "flag", "pass", "flag"]
    assert [v.details["correct"] for v in verdicts] == [5, 0, 2, 0]
    assert verdicts[1].details["answers"] == ["A"] * 5
    assert verdicts[3].details["answers"] == [None] * 5 and verdicts[3].details["lenient"] == ["B"] * 5
    assert verdicts[1].item.provenance["label_check"]["status"] == "flag"
    assert dict(scripted.CALLS) == {"number 0?": 5, "number 1?": 5, "number 2?": 5, "number 3?": 5}
    # the item is posed exactly as the evaluation poses it, options in their order
    assert scripted.PROMPTS[0] in [chat_messages(it) for it in items]
    # min_correct: 3 flags the item right only 2/5 times
    scripted.CALLS.clear()
    strict = LabelCheck(model="fleming-scripted/checker", policy="flag", min_correct=3, cache=False)
    assert [v.status for v in strict.verify(items, _ctx(tmp_path / "b"))] == ["pass", "flag", "flag", "flag"]


def test_policies_review_and_drop_hold_flagged_items_out_and_queue_them(tmp_path: Path) -> None:
    items = _items()
    for policy in ("review", "drop"):
        ctx = _ctx(tmp_path / policy)
        verdicts = LabelCheck(model="fleming-scripted/checker", policy=policy).verify(items, ctx)
        assert [v.status for v in verdicts] == ["pass", "drop", "pass", "drop"]
        assert verdicts[1].reason.startswith("awaiting review") == (policy == "review")
        queue = (ctx.dir / "review_queue.jsonl").read_text(encoding="utf-8")
        assert '"id": "fixture-1"' in queue and '"id": "fixture-3"' in queue and "fixture-0" not in queue
        assert "fixture-1" in (ctx.dir / "review_queue.csv").read_text(encoding="utf-8")
        assert "Question number 1?" in (ctx.dir / "review_queue.html").read_text(encoding="utf-8")
        assert ctx.counts["label-check:queue"] == 2


def test_a_second_run_makes_no_model_calls_and_usage_reaches_the_notes(tmp_path: Path) -> None:
    items = _items()
    first = _ctx(tmp_path / "1")
    LabelCheck(model="fleming-scripted/checker").verify(items, first)
    usage = first.notes["label-check"]
    assert usage["calls"] == 20 and usage["cached"] == 0 and usage["input_tokens"] == 400
    assert usage["cost"] == pytest.approx(0.02)
    scripted.CALLS.clear()
    second = _ctx(tmp_path / "2")
    again = LabelCheck(model="fleming-scripted/checker").verify(items, second)
    assert sum(scripted.CALLS.values()) == 0
    assert second.notes["label-check"]["calls"] == 0 and second.notes["label-check"]["cached"] == 20
    assert [v.status for v in again] == ["pass", "drop", "pass", "drop"]
    # another model, other trials or other args are other cache entries
    LabelCheck(model="fleming-scripted/checker", trials=6).verify(items, _ctx(tmp_path / "3"))
    assert sum(scripted.CALLS.values()) == 4  # only the sixth trial of each item is new


def test_calls_that_keep_failing_leave_the_item_unverified_and_the_run_goes_on(tmp_path: Path) -> None:
    """mockllm/model whose outputs raise for one item and hang for another."""
    from inspect_ai.model import ModelOutput, ModelUsage

    calls: list[str] = []

    async def outputs(input: Any, tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        text = input[-1].text
        calls.append(text)
        if "number 1?" in text:
            raise ConnectionError("rate limited (429)")
        if "number 2?" in text:
            await asyncio.sleep(5)
        out = ModelOutput.from_content(model="mockllm", content=RIGHT)
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    items = [make_item(i) for i in range(3)]
    check = LabelCheck(model="mockllm/model", model_args={"custom_outputs": outputs}, trials=2, retries=1,
                       backoff=0.0, timeout=0.2, policy="drop")
    ctx = _ctx(tmp_path)
    verdicts = check.verify(items, ctx)
    assert [v.status for v in verdicts] == ["pass", "unverified", "unverified"]
    assert "ConnectionError: rate limited (429) (2 attempts)" in verdicts[1].reason
    assert "timed out after 0.2 s" in verdicts[2].reason
    assert sum("number 1?" in c for c in calls) == 4  # 2 trials x (1 try + 1 retry)
    assert ctx.notes["label-check"]["failed"] == 4
    assert "fixture-1" in (ctx.dir / "review_queue.jsonl").read_text(encoding="utf-8")
    # failures are not cached: the next run asks again, successes come from the cache
    calls.clear()
    check.verify(items, _ctx(tmp_path / "again"))
    assert not any("number 0?" in c for c in calls) and any("number 1?" in c for c in calls)


def test_args_are_checked_when_the_recipe_is_built(tmp_path: Path) -> None:
    _, registry = fresh_registry()
    spec = SimpleNamespace(plugin="label-check", args={"model": "mockllm/model", "trials": 3, "min_correct": 4})
    with pytest.raises(PluginError, match="min_correct .4. cannot exceed trials .3."):
        build(registry, "verifiers", spec, "data.verify[0]", tmp_path)
    spec = SimpleNamespace(plugin="label-check", args={"model": "mockllm/model", "temperature": 0})
    with pytest.raises(Exception, match=r"data.verify\[0\].args.temperature"):
        build(registry, "verifiers", spec, "data.verify[0]", tmp_path)


def test_secret_model_args_stay_out_of_the_cache_key() -> None:
    from fleming.llm_calls import LLMRequest, cache_key

    request = LLMRequest([{"role": "user", "content": "hi"}], {"temperature": 0.5}, 1)
    base = cache_key("openai/gpt-4o", {"base_url": "http://x"}, request)
    assert cache_key("openai/gpt-4o", {"base_url": "http://x", "api_key": "sk-1"}, request) == base
    assert cache_key("openai/gpt-4o", {"base_url": "http://y"}, request) != base
    assert cache_key("openai/gpt-4o", {"base_url": "http://x"}, LLMRequest(request.messages, {}, 1)) != base
    assert cache_key("openai/gpt-4o", {"base_url": "http://x"}, LLMRequest(request.messages,
                                                                            request.config, 2)) != base
    assert read_decisions(Path("no-such-run")) == {}


@pytest.mark.parametrize(("model", "args", "local"), [
    ("openai/gpt-4o", {}, None), ("anthropic/claude-sonnet-4-0", {}, None), ("mockllm/model", {}, None),
    ("fleming-scripted/checker", {}, None), ("tiny-random", {}, "tiny-random"),
    ("smollm2-135m-instruct", {}, "smollm2-135m-instruct"), ("hf/checker", {"model_path": "/m/c"}, "/m/c"),
    ("hf/owner/name", {}, "owner/name"), ("fleming/tiny-random", {}, "tiny-random"),
])
def test_local_models_sample_through_an_engine_and_hosted_ones_through_inspect(
        model: str, args: dict[str, Any], local: str | None) -> None:
    from fleming.sampling import local_model

    assert local_model(model, args) == local
    assert (LabelCheck(model=model, model_args=args).local is None) == (local is None)


def test_a_local_folder_is_a_local_model(tmp_path: Path) -> None:
    from fleming.sampling import local_model

    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert local_model(str(tmp_path)) == str(tmp_path.resolve())
    assert local_model(str(tmp_path / "missing")) is None

