"""The one multiple-choice Inspect task: samples, solver, scorer, metrics (public as ``fleming.tasks.mcq_task``).

* Sample: ``input`` is ``prompts/eval_mcq.jinja`` (question, lettered options, the instruction to reason step by
  step and end with ``<answer>X</answer>``); ``target`` is the answer letter; ``id`` the record id; ``metadata``
  ``{"id", "letters", "options", "subject", "source"}``, plus ``question`` with ``reasoning_alone`` and ``kg`` with
  ``audit``. With ``permutations`` K > 1, one sample per rotation of the options (id ``<id>#r<k>`` for k > 0,
  ``rotation`` in the metadata), and strict gains ``consistent`` and ``flip_rate``
  (``fleming.tasks._permutations``).
* Solver: the system prompt ``prompts/eval_system.jinja``, then one generation (``max_tokens``, default 1024;
  temperature is left to the caller).
* Scorer `answer_scorer`: ``fleming.answers.extract_answer`` and nothing else. ``Score.value`` is
  ``{"strict", "lenient", "no_answer"}`` (each 1.0 or 0.0), so the log has three scores: ``strict``
  (accuracy, stderr; plus per-subject accuracy where the benchmark has subjects), ``lenient`` (accuracy,
  stderr) and ``no_answer`` (mean: the share of completions the strict parser found no answer in). With
  ``reasoning_alone`` a fourth, ``reasoning_alone`` (mean, stderr): the share of right answers whose reasoning,
  its answer cut, leads the judge to them (NaN, so left out, for the other samples; per-sample details in the
  score's metadata under ``reasoning_alone``; see ``fleming.tasks._reasoning_alone``). With ``audit`` (by
  default on when every item has KG provenance) three more, ``faithful_accuracy``, ``path_recall`` and
  ``contradiction_rate`` (mean, stderr), and the audit in the score's metadata (``fleming.tasks._kg_audit``).
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
from fleming.tasks._kg_audit import audit_metrics, audit_values, provenance, wants_audit
from fleming.tasks._offline import install_token_count_fallback
from fleming.tasks._permutations import (check_permutations, item_rotations, item_stderr, order_metrics,
                                         rotated_options, rotation_id, unique_ids)
from fleming.tasks._reasoning_alone import judge_reasoning
from fleming.tasks._records import LETTERS, BenchmarkSpec, checked, data_sha256, load_records, normalise
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


def base_metrics(subjects: bool, reasoning_alone: bool = False, permutations: int = 1,
                 audit: bool = False) -> dict[str, list[Any]]:
    """Return the task's metrics: strict (+ per subject when `subjects`), lenient, no_answer (+ reasoning_alone's
    mean and stderr over the right answers when `reasoning_alone`); with `permutations` > 1, strict also has
    consistent and flip_rate, and the strict and lenient stderrs are clustered by item; with `audit`, the KG
    audit's faithful_accuracy, path_recall and contradiction_rate (mean, stderr)."""
    strict: list[Any] = [accuracy(), item_stderr() if permutations > 1 else stderr()]
    if subjects:
        strict.append(grouped(accuracy(), "subject", all=False))
    if permutations > 1:
        strict += order_metrics()
    lenient = [accuracy(), item_stderr() if permutations > 1 else stderr()]
    alone = {"reasoning_alone": [mean(), stderr()]} if reasoning_alone else {}
    return {"strict": strict, "lenient": lenient, "no_answer": [mean()], **alone, **(audit_metrics() if audit else {})}


@scorer(metrics=base_metrics(False), name=registry_name("answer_scorer"))
def answer_scorer(reasoning_alone: bool = False, judge: str | None = None, audit: bool = False) -> Scorer:
    """Score the completion's option letter with the one answer parser: strict, lenient, no answer; with
    `reasoning_alone`, also whether `judge` (default: the evaluated model) reaches a right answer from its
    reasoning alone (``fleming.tasks._reasoning_alone``); with `audit`, the KG reasoning audit
    (``fleming.tasks._kg_audit``)."""

    async def score(state: TaskState, target: Target) -> Score:
        completion = state.output.completion if state.output else ""
        letters = (state.metadata or {}).get("letters") or list(LETTERS)
        strict = extract_answer(completion, letters, "strict")
        lenient = extract_answer(completion, letters, "lenient")
        right = target.text
        value = {"strict": float(strict == right), "lenient": float(lenient == right),
                 "no_answer": float(strict is None)}
        metadata: dict[str, Any] = {"lenient_answer": lenient, "subject": (state.metadata or {}).get("subject")}
        if "rotation" in (state.metadata or {}):  # asked under several option orders: what the metrics group
            metadata.update(item=state.metadata["id"], choice=state.metadata["options"].get(strict))
        if audit:
            audited, metadata["audit"] = await audit_values(completion, state.metadata or {}, strict == right)
            value.update(audited)
        if reasoning_alone:
            value["reasoning_alone"], metadata["reasoning_alone"] = await judge_reasoning(state, right,
                                                                                          strict == right, judge)
        return Score(value=value, answer=strict or "", explanation=completion, metadata=metadata)

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
                     shuffle_seed: int | None = None, rotation: int | None = None,
                     extra: Mapping[str, Any] | None = None) -> Sample:
    """Return the Inspect sample for one uniform record (options shuffled only when `shuffle_seed` is set, then
    rotated `rotation` places; a `rotation`, 0 included, is recorded in the metadata, None leaves it out; `extra`
    joins the metadata: what an optional check reads, such as the KG provenance or the raw question)."""
    options, answer = dict(record["options"]), record["answer"]
    if shuffle_seed is not None:
        options, answer = shuffled_options(options, answer, random.Random(f"{shuffle_seed}/{record['id']}"))
    if rotation:
        options, answer = rotated_options(options, answer, rotation)
    subject = (record.get("meta") or {}).get(subject_field) if subject_field else None
    return Sample(
        id=rotation_id(record["id"], rotation),
        input=render("eval_mcq", question=record["question"], options=options),
        target=answer,
        metadata={"id": record["id"], "letters": list(options), "options": options,
                  "subject": None if subject is None else str(subject), "source": source,
                  **({} if rotation is None else {"rotation": rotation}), **(extra or {})},
    )


def mcq_task(items: Sequence[QAItem | Mapping[str, Any]], *, name: str, origin: str | None = None,
             subject_field: str | None = None, shuffle_seed: int | None = None, max_tokens: int = 1024,
             metadata: Mapping[str, Any] | None = None, permutations: int = 1, audit: bool | None = None,
             reasoning_alone: bool = False, judge: str | None = None) -> Task:
    """Return fleming's multiple-choice task over `items` (``QAItem``s or uniform records), named `name`.

    Every item is checked first (a bad one is a one-line `DataError` naming it); `subject_field` names the
    ``meta`` key (a ``QAItem``'s provenance) whose value groups strict accuracy per subject; `origin` says
    where the items came from (the dataset's location in the log); `shuffle_seed` shuffles the sample order
    and re-letters the options; `max_tokens` is the task's own budget (an eval-level one overrides it);
    `permutations` K > 1 asks every item under K rotations of its options (``fleming.tasks._permutations``);
    `reasoning_alone` asks `judge` (an Inspect model name; default the evaluated model) to answer each right
    answer's question from its reasoning alone (``fleming.tasks._reasoning_alone``); `audit` checks each
    completion's reasoning against the items' knowledge graph (None: when every item has KG provenance).
    """
    rows = ((f"{name}: item {i}", item.to_record() if isinstance(item, QAItem) else item)
            for i, item in enumerate(items))
    records = checked(((where, normalise(raw, where, f"{name}-{i:05d}")) for i, (where, raw) in enumerate(rows)),
                      origin or name)
    if not records:
        raise DataError(f"{name}: no items to evaluate" + (f" in {origin}" if origin else ""))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise DataError(f"{name}: max_tokens must be a whole number of at least 1 (got {max_tokens!r})")
    permutations = check_permutations(name, permutations)
    audit = wants_audit(name, records, audit)
    install_token_count_fallback()
    def extra(r: Mapping[str, Any]) -> dict[str, Any]:  # only what the checks asked for reads
        return {**({"kg": provenance(r)} if audit else {}), **({"question": r["question"]} if reasoning_alone else {})}

    groups = [[record_to_sample(r, name, subject_field, shuffle_seed, k, extra(r)) for k in rotations]
              for r, rotations in zip(records, item_rotations(name, records, permutations))]
    if shuffle_seed is not None:  # items, each with its rotations together
        random.Random(shuffle_seed).shuffle(groups)
    samples = [sample for group in groups for sample in group]
    if permutations > 1:
        unique_ids(name, samples)
    return Task(
        dataset=MemoryDataset(samples, name=name, location=origin or name),
        solver=[system_prompt(render("eval_system")), generate()],
        scorer=answer_scorer(reasoning_alone, judge, audit),
        metrics=base_metrics(subject_field is not None, reasoning_alone, permutations, audit),
        config=GenerateConfig(max_tokens=max_tokens),
        metadata={"benchmark": name, "data": origin or name, "data_sha256": data_sha256(origin),
                  "subject_field": subject_field, "shuffle_seed": shuffle_seed, "permutations": permutations,
                  "audit": audit, **(metadata or {})},
    )


def spec_task(spec: BenchmarkSpec, *, data_dir: str | None = None, data_file: str | None = None,
              shuffle_seed: int | None = None, max_tokens: int = 1024, **scoring: Any) -> Task:
    """Return the task of a built-in benchmark, reading its data from a file, a data folder or the hub;
    `scoring` is `mcq_task`'s ``permutations``, ``audit``, ``reasoning_alone`` and ``judge``."""
    records, origin = load_records(spec, data_dir, data_file)
    return mcq_task(records, name=spec.name, origin=origin, subject_field=spec.subject,
                    shuffle_seed=shuffle_seed, max_tokens=max_tokens, **scoring)
