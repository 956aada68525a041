"""CareQA (English, close-ended): 5,621 Spanish specialised-exam questions (2020-2024) in English;
subject = ``category`` (Medicine, Nursing, Pharmacology, Psychology, Biology, Chemistry)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspect_ai import Task, task

from fleming.tasks._mcq import registry_name, spec_task
from fleming.tasks._records import BenchmarkSpec, HubSource


def from_hub(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Convert a hub row (op1-op4, cop 1-4, exam_id, year, category, unique_id)."""
    return {"id": row["unique_id"], "question": row["question"],
            "options": {"A": row["op1"], "B": row["op2"], "C": row["op3"], "D": row["op4"]},
            "answer": "ABCD"[int(row["cop"]) - 1],
            "meta": {"exam_id": row.get("exam_id"), "year": row.get("year"), "category": row.get("category"),
                     "cop": row.get("cop")}}


SPEC = BenchmarkSpec(name="careqa", file="careqa_en.jsonl", subject="category",
                     hub=HubSource("HPAI-BSC/CareQA", config="CareQA_en", split="test", convert=from_hub))


@task(name=registry_name("careqa"))
def careqa(data_dir: str | None = None, data_file: str | None = None, shuffle_seed: int | None = None,
           max_tokens: int = 1024,
           permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
           judge: str | None = None) -> Task:
    """CareQA English (5,621 questions, 4 options), accuracy per category."""
    return spec_task(SPEC, data_dir=data_dir, data_file=data_file, shuffle_seed=shuffle_seed, max_tokens=max_tokens,
                     permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
