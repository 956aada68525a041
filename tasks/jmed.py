"""JMED: 1,000 real-world Chinese clinical cases, each with 21 options (A-U, the last "none of the above").

The official file (``JMED.jsonl`` of the hub dataset ``jdh-algo/JMED``) holds rows
``{"question", "options": {"A": ..., ..., "U": ...}, "answer": ["C"]}``; they are read as they are (the
one-letter answer list becomes the letter, a missing id becomes ``jmed-<line>``), as are uniform records.
In a data folder the task reads the one file matching ``jmed*.jsonl`` (any case); ``-T data_file=`` picks
another.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspect_ai import Task, task

from fleming.tasks._mcq import registry_name, spec_task
from fleming.tasks._records import BenchmarkSpec, HubSource


def from_hub(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Keep the hub row's question, options and answer; the rest goes to meta."""
    rest = {k: v for k, v in row.items() if k not in ("id", "question", "options", "answer")}
    return {"id": row.get("id"), "question": row["question"], "answer": row["answer"],
            "options": {k: v for k, v in row["options"].items() if v is not None}, "meta": rest}


SPEC = BenchmarkSpec(name="jmed", file="jmed*.jsonl",
                     note="the official JMED test set, e.g. JMED.jsonl from the hub dataset jdh-algo/JMED",
                     hub=HubSource("jdh-algo/JMED", split="train", data_files="JMED.jsonl", convert=from_hub))


@task(name=registry_name("jmed"))
def jmed(data_dir: str | None = None, data_file: str | None = None, shuffle_seed: int | None = None,
         max_tokens: int = 1024,
         permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
         judge: str | None = None) -> Task:
    """JMED (1,000 clinical cases, 21 options A-U)."""
    return spec_task(SPEC, data_dir=data_dir, data_file=data_file, shuffle_seed=shuffle_seed, max_tokens=max_tokens,
                     permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
