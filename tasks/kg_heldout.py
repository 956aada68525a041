"""The held-out synthetic items of a fleming run, one benchmark per split the mix stage makes.

``kg_heldout`` reads ``RUN/mix/heldout.jsonl`` (unseen diagnoses: questions whose answers training never saw),
``kg_heldout_known`` reads ``RUN/mix/heldout_known.jsonl`` (new questions about trained diagnoses, sharing no stem
with a training item) and ``kg_dev`` reads ``RUN/mix/dev.jsonl`` (the dev split: diagnoses of its own, the only
items settings may be chosen on). ``kg_heldout -T split=known`` is ``kg_heldout_known`` by another spelling (its
task and logs are named ``kg_heldout_known``). Each keeps the rows whose ``meta.origin`` is ``synthetic``
(``all_items=true`` keeps the curated rows too); ``-T data_file=`` reads any uniform file instead.
Subject = ``meta.template``, the synthesis template.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from inspect_ai import Task, task

from fleming.errors import DataError
from fleming.splits import SPLIT_FILES
from fleming.tasks import HELDOUT_SPLITS
from fleming.tasks._mcq import mcq_task, registry_name
from fleming.tasks._records import BenchmarkSpec, checked, read_jsonl

SPEC = BenchmarkSpec(name="kg_heldout", file="heldout.jsonl", subject="template")
Split = Literal["unseen", "known", "dev"]


def split_task(split: Split, run_dir: str | None, data_file: str | None, all_items: bool,
               shuffle_seed: int | None, max_tokens: int, permutations: int, audit: bool | None,
               reasoning_alone: bool, judge: str | None) -> Task:
    """The task over one split of a run's held-out items (or over `data_file`), named after the split."""
    if split not in HELDOUT_SPLITS:
        raise DataError(f"kg_heldout: split must be one of {', '.join(HELDOUT_SPLITS)} (got {split!r})")
    name, relative = HELDOUT_SPLITS[split], Path("mix") / f"{SPLIT_FILES[split]}.jsonl"
    if data_file:
        path = Path(data_file).expanduser()
    elif run_dir:
        path = Path(run_dir).expanduser() / relative
    else:
        raise DataError(f"{name}: say which items to evaluate: -T run_dir=RUN (reads RUN/{relative.as_posix()}) "
                        "or -T data_file=FILE")
    if not path.is_file():
        asked = "" if split == "unseen" else f" (the mix stage writes it when data.mix.{split}_fraction is above 0)"
        raise DataError(f"{name}: held-out file not found: {path}{asked}")
    records = checked(read_jsonl(path, name), str(path))
    if not all_items:
        kept = [r for r in records if r["meta"].get("origin") == "synthetic"]
        if not kept:
            raise DataError(f"{name}: none of the {len(records)} items in {path} is synthetic "
                            f"(meta.origin); pass -T all_items=true to evaluate them all")
        records = kept
    subject = SPEC.subject if any(SPEC.subject in r["meta"] for r in records) else None
    return mcq_task(records, name=name, origin=str(path), subject_field=subject, shuffle_seed=shuffle_seed,
                    max_tokens=max_tokens, metadata={"all_items": all_items, "split": split},
                    permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)


@task(name=registry_name("kg_heldout"))
def kg_heldout(run_dir: str | None = None, data_file: str | None = None, all_items: bool = False,
               data_dir: str | None = None, shuffle_seed: int | None = None, max_tokens: int = 1024,
               permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
               judge: str | None = None, split: Split = "unseen") -> Task:
    """A run's held-out synthetic items about unseen diagnoses, or another `split` (``data_dir`` is accepted
    like every task's, and not used)."""
    return split_task(split, run_dir, data_file, all_items, shuffle_seed, max_tokens, permutations, audit,
                      reasoning_alone, judge)


@task(name=registry_name("kg_heldout_known"))
def kg_heldout_known(run_dir: str | None = None, data_file: str | None = None, all_items: bool = False,
                     data_dir: str | None = None, shuffle_seed: int | None = None, max_tokens: int = 1024,
                     permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
                     judge: str | None = None) -> Task:
    """A run's held-out synthetic items about trained diagnoses, sharing no stem with a training item."""
    return split_task("known", run_dir, data_file, all_items, shuffle_seed, max_tokens, permutations, audit,
                      reasoning_alone, judge)


@task(name=registry_name("kg_dev"))
def kg_dev(run_dir: str | None = None, data_file: str | None = None, all_items: bool = False,
           data_dir: str | None = None, shuffle_seed: int | None = None, max_tokens: int = 1024,
           permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
           judge: str | None = None) -> Task:
    """A run's dev split: synthetic items about diagnoses of its own, the only items to choose settings on."""
    return split_task("dev", run_dir, data_file, all_items, shuffle_seed, max_tokens, permutations, audit,
                      reasoning_alone, judge)
