"""The held-out synthetic items of a fleming run: questions whose answers training never saw.

``-T run_dir=RUN`` reads ``RUN/mix/heldout.jsonl`` (uniform records) and keeps the rows whose
``meta.origin`` is ``synthetic`` (``all_items=true`` keeps the curated held-out rows too); ``-T data_file=``
reads any uniform file instead. Subject = ``meta.template``, the synthesis template.
"""
from __future__ import annotations

from pathlib import Path

from inspect_ai import Task, task

from fleming.errors import DataError
from fleming.tasks._mcq import mcq_task, registry_name
from fleming.tasks._records import BenchmarkSpec, checked, read_jsonl

HELDOUT = Path("mix") / "heldout.jsonl"
SPEC = BenchmarkSpec(name="kg_heldout", file="heldout.jsonl", subject="template")


@task(name=registry_name("kg_heldout"))
def kg_heldout(run_dir: str | None = None, data_file: str | None = None, all_items: bool = False,
               data_dir: str | None = None, shuffle_seed: int | None = None, max_tokens: int = 1024,
               permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
               judge: str | None = None) -> Task:
    """A run's held-out synthetic items (``data_dir`` is accepted like every task's, and not used)."""
    if data_file:
        path = Path(data_file).expanduser()
    elif run_dir:
        path = Path(run_dir).expanduser() / HELDOUT
    else:
        raise DataError("kg_heldout: say which items to evaluate: -T run_dir=RUN (reads RUN/mix/heldout.jsonl) "
                        "or -T data_file=FILE")
    if not path.is_file():
        raise DataError(f"kg_heldout: held-out file not found: {path}")
    records = checked(read_jsonl(path, SPEC.name), str(path))
    if not all_items:
        kept = [r for r in records if r["meta"].get("origin") == "synthetic"]
        if not kept:
            raise DataError(f"kg_heldout: none of the {len(records)} items in {path} is synthetic "
                            f"(meta.origin); pass -T all_items=true to evaluate them all")
        records = kept
    subject = SPEC.subject if any(SPEC.subject in r["meta"] for r in records) else None
    return mcq_task(records, name=SPEC.name, origin=str(path), subject_field=subject,
                        shuffle_seed=shuffle_seed, max_tokens=max_tokens, metadata={"all_items": all_items},
                        permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
