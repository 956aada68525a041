"""The `answer` and `format` rewards on written completions (string and TRL conversational shapes)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fleming.components import build, split_weight
from fleming.errors import StageError
from fleming.plugin_manager import DEFAULT_PLUGINS
from fleming.plugins.rewards import AnswerReward, FormatReward, completion_text
from fleming.recipe import Component as ComponentSpec
from fleming.testing import fresh_registry, make_item

ITEM = make_item(0, answer="B")  # options A-D

CASES = [
    # completion, answer reward, format reward
    ("The findings point to beta. <answer>B</answer>", 1.0, 1.0),
    ("The findings point to alpha. <answer>A</answer>", 0.0, 1.0),
    ("Reasoning.\n<answer>(B)</answer>\n", 1.0, 1.0),
    ("Reasoning. <answer>B</answer><|im_end|>", 1.0, 1.0),
    ("Reasoning. <answer>B</answer>  </s> ", 1.0, 1.0),
    ("<answer>B</answer>", 1.0, 0.0),  # no reasoning before the tag
    ("   <answer>B</answer>", 1.0, 0.0),
    ("Reasoning. <answer>B</answer> and then more words", 1.0, 0.0),  # tag does not end it
    ("Reasoning. <answer>B</answer> again <answer>B</answer>", 1.0, 0.0),  # two tags
    ("Reasoning. <answer>A</answer> no <answer>B</answer>", 0.0, 0.0),
    ("Reasoning. <answer>E</answer>", 0.0, 0.0),  # not an option letter
    ("Reasoning. <answer>b</answer>", 0.0, 0.0),
    ("Reasoning. <answer>B", 0.0, 0.0),  # unclosed
    ("Reasoning. <answer><answer>B</answer></answer>", 0.0, 0.0),
    ("So the answer is B.", 0.0, 0.0),  # lenient reading never counts
    ("", 0.0, 0.0),
]


@pytest.mark.parametrize(("completion", "answer", "fmt"), CASES)
def test_written_completions(completion: str, answer: float, fmt: float) -> None:
    assert AnswerReward()([completion], [ITEM]) == [answer]
    assert FormatReward()([completion], [ITEM]) == [fmt]


def test_conversational_completions_and_records_are_read() -> None:
    conv = [[{"role": "assistant", "content": "Because. <answer>B</answer>"}],
            [{"role": "assistant", "content": [{"type": "text", "text": "Hmm. "},
                                               {"type": "text", "text": "<answer>C</answer>"}]}]]
    items = [ITEM, ITEM.to_record()]
    assert AnswerReward()(conv, items) == [1.0, 0.0]
    assert FormatReward()(conv, items) == [1.0, 1.0]
    assert completion_text([{"role": "user", "content": "q"}]) == ""


def test_eos_tokens_are_configurable() -> None:
    text = "Reasoning. <answer>B</answer>[END]"
    assert FormatReward()([text], [ITEM]) == [0.0]
    assert FormatReward(eos_tokens=["[END]"])([text], [ITEM]) == [1.0]


def test_mismatched_lengths_are_one_line_errors() -> None:
    with pytest.raises(StageError, match="reward 'answer': got 2 completions for 1 items"):
        AnswerReward()(["a", "b"], [ITEM])


def test_registered_and_built_from_a_recipe_with_weight_taken_by_fleming() -> None:
    assert "fleming.plugins.rewards" in DEFAULT_PLUGINS
    _, reg = fresh_registry()
    assert {"answer", "format"} <= set(reg.names("rewards"))
    spec = ComponentSpec(plugin="format", args={"weight": 0.5})
    reward = build(reg, "rewards", spec, "rl.rewards[1]", Path("."))
    assert isinstance(reward, FormatReward)
    assert split_weight("rewards", dict(spec.args), "rl.rewards[1]")[1] == 0.5
    assert reward(["Why. <answer>B</answer>"], [ITEM]) == [1.0]


def test_length_never_enters_the_reward() -> None:
    short = "Beta. <answer>B</answer>"
    long = "Beta fits every finding. " * 400 + "<answer>B</answer>"
    for reward in (AnswerReward(), FormatReward()):
        assert reward([short, long], [ITEM, ITEM]) == [1.0, 1.0]


def test_the_format_check_is_one_public_function_the_reward_uses() -> None:
    """Teachers and the `format` reward share `fleming.answers.well_formed`: they cannot disagree."""
    from fleming.answers import strip_end, well_formed

    letters = list(ITEM.options)
    for text in ["Because. <answer>A</answer>", "Because. <answer>A</answer> <|im_end|>", "<answer>A</answer>",
                 "Because. <answer>A</answer> then more", "Because. <answer>A</answer><answer>A</answer>",
                 "Because. <answer>Z</answer>"]:
        assert FormatReward()([text], [ITEM]) == [1.0 if well_formed(text, letters) else 0.0], text
    assert well_formed("Because. <answer>A</answer> <|im_end|>", letters)
    assert not well_formed("Because. <answer>A</answer>[END]", letters)
    assert well_formed("Because. <answer>A</answer>[END]", letters, eos_tokens=["[END]"])
    assert strip_end("x <answer>A</answer></s>\n<eos> ") == "x <answer>A</answer>"
