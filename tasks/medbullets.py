"""Medbullets: 308 USMLE Step 2/3-style questions, as 5 options (A-E, the default) or 4 options (A-D).

``-T options=4`` reads ``medbullets_op4.jsonl`` instead of ``medbullets_op5.jsonl``. (10 stems occur twice,
marked ``meta.repeated_stem``; every row is evaluated.)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspect_ai import Task, task

from fleming.errors import RecipeError
from fleming.tasks._mcq import registry_name, spec_task
from fleming.tasks._records import BenchmarkSpec, HubSource


def from_hub(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Convert a hub row; the 4-option split carries an empty E, which is dropped."""
    options = {k: v for k, v in row["options"].items() if v}
    answer = row["answer"]
    if answer not in options:  # the answer given as its text
        answer = next((k for k, v in options.items() if v == answer), answer)
    return {"id": row.get("idx"), "question": row["question"], "options": options, "answer": answer,
            "meta": {"explanation": row.get("explanation"), "link": row.get("link")}}


SPECS = {n: BenchmarkSpec(name="medbullets", file=f"medbullets_op{n}.jsonl",
                          hub=HubSource("mkieffer/Medbullets", split=f"op{n}_test", convert=from_hub))
         for n in (4, 5)}
SPEC = SPECS[5]


@task(name=registry_name("medbullets"))
def medbullets(data_dir: str | None = None, data_file: str | None = None, shuffle_seed: int | None = None,
               max_tokens: int = 1024,
               permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
               judge: str | None = None, options: int = 5) -> Task:
    """Medbullets (308 questions), 5 options by default or 4 with ``options=4``."""
    if options not in SPECS:
        raise RecipeError(f"medbullets: options must be 4 or 5 (got {options!r})")
    return spec_task(SPECS[options], data_dir=data_dir, data_file=data_file, shuffle_seed=shuffle_seed,
                    max_tokens=max_tokens,
                    permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
