"""PubMedQA PQA-L: 1,000 expert-labelled yes / no / maybe questions about an abstract.

The question shown includes its context: the uniform file's ``question`` is already
``"Context: <abstract paragraphs>\n\nQuestion: <question>"`` (the conclusion, which gives the answer away, is
never shown). Options are A yes, B no, C maybe. ``official_test=true`` keeps the 500 items of the official test
split (``meta.in_official_500_test_split``; the paper's PubMedQA numbers fit that split).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspect_ai import Task, task

from fleming.errors import DataError
from fleming.tasks._mcq import mcq_task, registry_name
from fleming.tasks._records import BenchmarkSpec, HubSource, load_records

DECISIONS = {"yes": "A", "no": "B", "maybe": "C"}
OFFICIAL_TEST = "in_official_500_test_split"


def from_hub(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Convert a ``pqa_labeled`` hub row: contexts joined into the question, the decision into a letter."""
    context = row["context"]
    return {"id": str(row["pubid"]),
            "question": "Context: " + "\n".join(context["contexts"]) + "\n\nQuestion: " + row["question"],
            "options": {"A": "yes", "B": "no", "C": "maybe"}, "answer": DECISIONS[row["final_decision"]],
            "meta": {"original_question": row["question"], "context_labels": list(context.get("labels") or []),
                     "meshes": list(context.get("meshes") or [])}}


SPEC = BenchmarkSpec(name="pubmedqa", file="pubmedqa_pqal.jsonl",
                     hub=HubSource("qiaojin/PubMedQA", config="pqa_labeled", split="train", convert=from_hub))


@task(name=registry_name("pubmedqa"))
def pubmedqa(data_dir: str | None = None, data_file: str | None = None, shuffle_seed: int | None = None,
             max_tokens: int = 1024, official_test: bool = False,
             permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
             judge: str | None = None) -> Task:
    """PubMedQA PQA-L (1,000 questions with their abstract; or the official 500-item test split)."""
    records, origin = load_records(SPEC, data_dir, data_file)
    if official_test:
        if not any(OFFICIAL_TEST in r["meta"] for r in records):
            raise DataError(f"pubmedqa: official_test needs meta.{OFFICIAL_TEST} in the records of {origin}")
        records = [r for r in records if r["meta"].get(OFFICIAL_TEST)]
    return mcq_task(records, name=SPEC.name, origin=origin, shuffle_seed=shuffle_seed, max_tokens=max_tokens,
                        metadata={"official_test": official_test},
                        permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
