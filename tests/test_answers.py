"""The one answer parser: pinned cases, properties, and a guard against a second parser."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleming.answers import answer_tags, extract_answer

LETTERS = "ABCD"
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("completion", "strict", "lenient"), [
    ("Reasoning here. <answer>B</answer>", "B", "B"),
    ("Because of X. <answer>(B)</answer>", "B", "B"),
    ("<answer>B.</answer>", "B", "B"),
    ("<answer>B. Aspirin</answer>", "B", "B"),
    ("<answer> C) Warfarin </answer>", "C", "C"),
    ("<answer>**D**</answer>", "D", "D"),
    ("<ANSWER>A</ANSWER>", "A", "A"),
    ("x <answer>B</answer> trailing words", "B", "B"),
    ("<answer>B</answer> then again <answer>B</answer>", "B", "B"),  # repeated, same letter
    ("<answer>A</answer> no wait <answer>B</answer>", None, "B"),  # several different letters
    ("<answer>B or C</answer>", None, "C"),  # two letters in one tag
    ("<answer>E</answer>", None, None),  # not among the options
    ("the answer is B", None, "B"),  # no tag: lenient only
    ("<answer>B", None, "B"),  # unclosed
    ("B</answer>", None, "B"),  # closing tag without an opening one
    ("<answer><answer>B</answer></answer>", None, "B"),  # nested
    ("<answer></answer>", None, None),  # empty
    ("<answer>Because it is</answer>", None, None),  # free text
    ("<answer>b</answer>", None, None),  # lower case is not an option letter
    ("<answer>\u0410</answer>", None, None),  # Cyrillic A look-alike
    ("<answer>\u0391</answer>", None, None),  # Greek Alpha look-alike
    ("<answer>\uff21</answer>", None, None),  # full-width A
    ("A 45-year-old man with chest pain; C is likely.", None, "C"),  # letters only inside the reasoning
    ("", None, None),
])
def test_pinned_cases(completion: str, strict: str | None, lenient: str | None) -> None:
    assert extract_answer(completion, LETTERS) == strict
    assert extract_answer(completion, LETTERS, "lenient") == lenient


def test_many_options_and_letter_sets() -> None:
    letters = [chr(ord("A") + i) for i in range(21)]  # JMED's 21 options
    assert extract_answer("<answer>U</answer>", letters) == "U"
    assert extract_answer("<answer>V</answer>", letters) is None
    assert extract_answer("<answer>C</answer>", "AB") is None  # a 2-option item


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="strict"):
        extract_answer("<answer>A</answer>", LETTERS, "fuzzy")  # type: ignore[arg-type]


@pytest.mark.timeout(20)
def test_huge_inputs_stay_linear() -> None:
    body = "The patient, A, was seen; option B was considered. " * 200_000  # ~10 MB
    assert extract_answer(body + "<answer>C</answer>", LETTERS) == "C"
    assert extract_answer(body, LETTERS) is None
    assert extract_answer(body, LETTERS, "lenient") == "B"
    assert extract_answer("<answer>" * 500_000, LETTERS) is None
    assert extract_answer("<answer>A</answer>" * 200_000, LETTERS) == "A"
    assert extract_answer("<answer>A</answer><answer>B</answer>" * 100_000, LETTERS) is None


reasoning = st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=400)
letter = st.sampled_from(list(LETTERS))


@settings(max_examples=300, deadline=None)
@given(reasoning, letter, st.sampled_from(["{L}", "({L})", "{L}.", " {L} ", "{L}. some option text"]))
def test_reasoning_then_tag_gives_the_letter(text: str, choice: str, shape: str) -> None:
    completion = f"{text}\n<answer>{shape.format(L=choice)}</answer>"
    assert extract_answer(completion, LETTERS) == choice
    assert extract_answer(completion, LETTERS, "lenient") == choice


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_answers_are_option_letters_and_lenient_extends_strict(text: str) -> None:
    strict = extract_answer(text, LETTERS)
    lenient = extract_answer(text, LETTERS, "lenient")
    assert strict is None or strict in LETTERS
    assert lenient is None or lenient in LETTERS
    if strict is not None:
        assert lenient == strict


@settings(max_examples=300, deadline=None)
@given(reasoning, letter, letter)
def test_two_different_tagged_letters_are_no_answer(text: str, a: str, b: str) -> None:
    completion = f"{text}<answer>{a}</answer>{text}<answer>{b}</answer>"
    assert extract_answer(completion, LETTERS) == (a if a == b else None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["<answer>", "</answer>", "A", " ", "x"]), max_size=40))
def test_tag_scanner_never_crashes_and_pairs_tags(pieces: list[str]) -> None:
    tags = answer_tags("".join(pieces))
    if tags is not None:
        assert all("<answer>" not in t.lower() and "</answer>" not in t.lower() for t in tags)


def test_no_second_answer_regex_in_the_code() -> None:
    """Rewards and scorers must call fleming.answers, never a regex of their own over the answer tag."""
    pattern = re.compile(r"re\.(compile|search|match|findall|fullmatch|finditer|sub)\([^)]*answer>", re.S)
    offenders = []
    for folder in ("fleming", "plugins", "tasks"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "answers.py" and path.parent.name == "fleming":
                continue
            if pattern.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
