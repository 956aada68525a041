"""MedXpertQA, Text subset: 2,450 test questions with 10 options (A-J); subject = ``question_type``
(Reasoning / Understanding, the split the MedXpertQA paper reports)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspect_ai import Task, task

from fleming.tasks._mcq import registry_name, spec_task
from fleming.tasks._records import BenchmarkSpec, HubSource

CHOICES_BLOCK = "\nAnswer Choices:"


def from_hub(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Convert a hub row: the stem loses its embedded "Answer Choices: (A) ..." block (options are separate)."""
    question = row["question"]
    cut = question.rfind(CHOICES_BLOCK)
    return {"id": row["id"], "question": (question[:cut] if cut >= 0 else question).strip(),
            "options": row["options"], "answer": row["label"],
            "meta": {k: row.get(k) for k in ("medical_task", "body_system", "question_type")}}


SPEC = BenchmarkSpec(name="medxpertqa", file="medxpertqa_text.jsonl", subject="question_type",
                     hub=HubSource("TsinghuaC3I/MedXpertQA", config="Text", split="test", convert=from_hub))


@task(name=registry_name("medxpertqa"))
def medxpertqa(data_dir: str | None = None, data_file: str | None = None, shuffle_seed: int | None = None,
               max_tokens: int = 1024,
               permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
               judge: str | None = None) -> Task:
    """MedXpertQA Text (2,450 questions, 10 options), accuracy per question type."""
    return spec_task(SPEC, data_dir=data_dir, data_file=data_file, shuffle_seed=shuffle_seed, max_tokens=max_tokens,
                     permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
