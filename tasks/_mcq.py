"""The one multiple-choice Inspect task: samples, solver, scorer, metrics (public as ``fleming.tasks.mcq_task``).

* Sample: ``input`` is ``prompts/eval_mcq.jinja`` (question, lettered options, the instruction to reason step by
  step and end with ``<answer>X</answer>``); ``target`` is the answer letter; ``id`` the record id; ``metadata``
  ``{"id", "letters", "options", "subject", "source"}``.
* Solver: the system prompt ``prompts/eval_system.jinja``, then one generation (``max_tokens``, default 1024;
  temperature is left to the caller).
* Scorer `answer_scorer`: ``fleming.answers.extract_answer`` and nothing else. ``Score.value`` is
  ``{"strict", "lenient", "no_answer"}`` (each 1.0 or 0.0), so the log has three scores: ``strict``
  (accuracy, stderr; plus per-subject accuracy where the benchmark has subjects), ``lenient`` (accuracy,
  stderr) and ``no_answer`` (mean: the share of completions the strict parser found no answer in).
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, GenerateConfig
from inspect_ai.scorer import Score, Scorer, Target, accuracy, grouped, mean, scorer, stderr
from inspect_ai.solver import Generate, Solver, TaskState, generate, solver

from fleming.answers import extract_answer
from fleming.errors import DataError
from fleming.prompts import render
from fleming.tasks._offline import install_token_count_fallback
from fleming.tasks._records import LETTERS, BenchmarkSpec, checked, load_records, normalise
from fleming.types import QAItem

SCORES = ("strict", "lenient", "no_answer")


def registry_name(short: str) -> str:
    """Return the name to give ``@task``/``@scorer`` so that Inspect registers it as ``fleming/<short>``.

    Inspect namespaces objects of an installed package by its import name, but not those of an editable
    install whose distribution name differs (``fleming-med``); both must answer to ``fleming/medqa``.
    """
    try:
        from inspect_ai._util.registry import registry_name as inspect_registry_name
    except ImportError:  # a later Inspect moved it: keep the plain name
        return short
    namespaced = inspect_registry_name(registry_name, short)
    return short if namespaced.startswith("fleming/") else f"fleming/{short}"


def base_metrics(subjects: bool) -> dict[str, list[Any]]:
    """Return the task's metrics: strict (+ per subject when `subjects`), lenient, no_answer."""
    strict: list[Any] = [accuracy(), stderr()]
    if subjects:
        strict.append(grouped(accuracy(), "subject", all=False))
    return {"strict": strict, "lenient": [accuracy(), stderr()], "no_answer": [mean()]}


@scorer(metrics=base_metrics(False), name=registry_name("answer_scorer"))
def answer_scorer() -> Scorer:
    """Score the completion's option letter with the one answer parser: strict, lenient, no answer."""

    async def score(state: TaskState, target: Target) -> Score:
        completion = state.output.completion if state.output else ""
        letters = (state.metadata or {}).get("letters") or list(LETTERS)
        strict = extract_answer(completion, letters, "strict")
        lenient = extract_answer(completion, letters, "lenient")
        right = target.text
        return Score(
            value={"strict": float(strict == right), "lenient": float(lenient == right),
                   "no_answer": float(strict is None)},
            answer=strict or "",
            explanation=completion,
            metadata={"lenient_answer": lenient, "subject": (state.metadata or {}).get("subject")},
        )

    return score


@solver(name=registry_name("system_prompt"))
def system_prompt(text: str) -> Solver:
    """Put `text` first in the conversation as the system message (verbatim: no template formatting)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.messages.insert(0, ChatMessageSystem(content=text))
        return state

    return solve


def shuffled_options(options: Mapping[str, str], answer: str, rng: random.Random) -> tuple[dict[str, str], str]:
    """Return the options in a random order, re-lettered A, B, ..., and the answer's new letter."""
    order = list(options)
    rng.shuffle(order)
    new = {LETTERS[i]: options[old] for i, old in enumerate(order)}
    return new, LETTERS[order.index(answer)]


def record_to_sample(record: Mapping[str, Any], source: str, subject_field: str | None = None,
                     shuffle_seed: int | None = None) -> Sample:
    """Return the Inspect sample for one uniform record (options shuffled only when `shuffle_seed` is set)."""
    options, answer = dict(record["options"]), record["answer"]
    if shuffle_seed is not None:
        options, answer = shuffled_options(options, answer, random.Random(f"{shuffle_seed}/{record['id']}"))
    subject = (record.get("meta") or {}).get(subject_field) if subject_field else None
    return Sample(
        id=record["id"],
        input=render("eval_mcq", question=record["question"], options=options),
        target=answer,
        metadata={"id": record["id"], "letters": list(options), "options": options,
                  "subject": None if subject is None else str(subject), "source": source},
    )


def mcq_task(items: Sequence[QAItem | Mapping[str, Any]], *, name: str, origin: str | None = None,
             subject_field: str | None = None, shuffle_seed: int | None = None, max_tokens: int = 1024,
             metadata: Mapping[str, Any] | None = None) -> Task:
    """Return fleming's multiple-choice task over `items` (``QAItem``s or uniform records), named `name`.

    Every item is checked first (a bad one is a one-line `DataError` naming it); `subject_field` names the
    ``meta`` key (a ``QAItem``'s provenance) whose value groups strict accuracy per subject; `origin` says
    where the items came from (the dataset's location in the log); `shuffle_seed` shuffles the sample order
    and re-letters the options; `max_tokens` is the task's own budget (an eval-level one overrides it).
    """
    rows = ((f"{name}: item {i}", item.to_record() if isinstance(item, QAItem) else item)
            for i, item in enumerate(items))
    records = checked(((where, normalise(raw, where, f"{name}-{i:05d}")) for i, (where, raw) in enumerate(rows)),
                      origin or name)
    if not records:
        raise DataError(f"{name}: no items to evaluate" + (f" in {origin}" if origin else ""))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise DataError(f"{name}: max_tokens must be a whole number of at least 1 (got {max_tokens!r})")
    install_token_count_fallback()
    samples = [record_to_sample(r, name, subject_field, shuffle_seed) for r in records]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(samples)
    return Task(
        dataset=MemoryDataset(samples, name=name, location=origin or name),
        solver=[system_prompt(render("eval_system")), generate()],
        scorer=answer_scorer(),
        metrics=base_metrics(subject_field is not None),
        config=GenerateConfig(max_tokens=max_tokens),
        metadata={"benchmark": name, "data": origin or name, "subject_field": subject_field,
                  "shuffle_seed": shuffle_seed, **(metadata or {})},
    )


def spec_task(spec: BenchmarkSpec, *, data_dir: str | None = None, data_file: str | None = None,
              shuffle_seed: int | None = None, max_tokens: int = 1024) -> Task:
    """Return the task of a built-in benchmark, reading its data from a file, a data folder or the hub."""
    records, origin = load_records(spec, data_dir, data_file)
    return mcq_task(records, name=spec.name, origin=origin, subject_field=spec.subject,
                    shuffle_seed=shuffle_seed, max_tokens=max_tokens)
