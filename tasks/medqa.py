"""MedQA (USMLE, US, 4 options): the 1,273-question test split; subject = the USMLE step (``meta_info``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspect_ai import Task, task

from fleming.tasks._mcq import registry_name, spec_task
from fleming.tasks._records import BenchmarkSpec, HubSource


def from_hub(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Convert a row of the hub copy (question, options A-D, answer_idx, answer text, meta_info)."""
    return {"id": f"medqa-test-{index:05d}", "question": row["question"], "options": row["options"],
            "answer": row["answer_idx"],
            "meta": {"meta_info": row.get("meta_info"), "answer_text": row.get("answer"), "source_index": index}}


SPEC = BenchmarkSpec(name="medqa", file="medqa_usmle_4opt_test.jsonl", subject="meta_info",
                     hub=HubSource("GBaker/MedQA-USMLE-4-options", split="test", convert=from_hub))


@task(name=registry_name("medqa"))
def medqa(data_dir: str | None = None, data_file: str | None = None, shuffle_seed: int | None = None,
          max_tokens: int = 1024,
          permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
          judge: str | None = None) -> Task:
    """MedQA USMLE 4-option test set (1,273 questions), scored on the ``<answer>`` tag."""
    return spec_task(SPEC, data_dir=data_dir, data_file=data_file, shuffle_seed=shuffle_seed, max_tokens=max_tokens,
                     permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
