"""MedMCQA: the 4,183-question validation ("dev") split; subject = ``subject_name`` (Anatomy, Physiology, ...)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspect_ai import Task, task

from fleming.tasks._mcq import registry_name, spec_task
from fleming.tasks._records import BenchmarkSpec, HubSource


def from_hub(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Convert a hub row (opa-opd, cop 0-3, subject_name, topic_name, exp)."""
    return {"id": row["id"], "question": row["question"],
            "options": {"A": row["opa"], "B": row["opb"], "C": row["opc"], "D": row["opd"]},
            "answer": "ABCD"[int(row["cop"])],
            "meta": {"subject_name": row.get("subject_name"), "topic_name": row.get("topic_name"),
                     "explanation": row.get("exp")}}


SPEC = BenchmarkSpec(name="medmcqa", file="medmcqa_dev.jsonl", subject="subject_name",
                     hub=HubSource("openlifescienceai/medmcqa", split="validation", convert=from_hub))


@task(name=registry_name("medmcqa"))
def medmcqa(data_dir: str | None = None, data_file: str | None = None, shuffle_seed: int | None = None,
            max_tokens: int = 1024,
            permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
            judge: str | None = None) -> Task:
    """MedMCQA validation split (4,183 questions, 4 options), per-subject accuracy."""
    return spec_task(SPEC, data_dir=data_dir, data_file=data_file, shuffle_seed=shuffle_seed, max_tokens=max_tokens,
                     permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
