"""The first N items of a task: a fixed subset, with every rotation of an item kept together.

A task asked under K option orders (``permutations``) has K samples per item, each with the item's id in its
metadata ``id`` and its ``rotation``; its first N items are all the samples of the first N distinct item ids,
in dataset order. A task without rotations keeps its first N samples, as Inspect's ``--limit`` does (which
counts samples, so use fleming's ``limit`` with rotations). Importing this module does not import Inspect.
"""
from __future__ import annotations

from typing import Any


def first_items(task: Any, limit: int) -> Any:
    """Return Inspect `task` over its first `limit` items (a fixed subset; all the rotations of each)."""
    from inspect_ai import task_with

    dataset = task.dataset
    if not any("rotation" in (sample.metadata or {}) for sample in dataset):
        return task_with(task, dataset=dataset[:limit])
    wanted: set[Any] = set()
    for sample in dataset:
        item = _item(sample)
        if item not in wanted:
            if len(wanted) == limit:
                break
            wanted.add(item)
    return task_with(task, dataset=dataset.filter(lambda sample: _item(sample) in wanted))


def _item(sample: Any) -> Any:
    return (sample.metadata or {}).get("id", sample.id)
