"""The mix stage's evaluation splits: unseen diagnoses, a dev split, and new questions about trained diagnoses.

Every item has a *group*: its diagnosis (``provenance["diagnosis"]``: for a two-hop KG item, the hidden disease),
else its answer entity, else the item alone. Each group gets a number ``u`` in [0, 1) from the seed and its key.

- **unseen** (``heldout``): the groups with ``u < heldout_fraction``, every item of them. No unseen diagnosis is
  a training answer or a training item's hidden diagnosis.
- **dev**: the entity groups with ``heldout_fraction <= u < heldout_fraction + dev_fraction``, every item of
  them: diagnoses of their own, never trained on, apart from both test splits. An item without an entity is
  never dev (it is split alone, into unseen or train, as before the dev split existed), so the unseen split
  is the same whatever ``dev_fraction`` is.
- **known**: from the remaining (trained) groups, about ``known_fraction`` of the KG items (those with a
  ``diagnosis``), chosen so that no known item shares a stem with a training item (`stem_keys`) and every
  known item's diagnosis keeps at least one training item.
- **train**: the rest.

Two items share a stem when both have the same non-empty set of ``stem_entities`` (whatever their templates:
the same findings asked for a diagnosis and, two hops on, for its inheritance are one stem) or the same
normalised question text (`question_key`). Items linked through shared stems form a cluster, and a cluster is
known or trained as a whole, so the rule holds by construction; a cluster holding an item without a diagnosis
(a curated item with the same text) stays in training. When every item of a diagnosis would be known, the
cluster with the highest draw goes back to training.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from fleming.items import question_key
from fleming.types import QAItem

SPLIT_FILES = {"unseen": "heldout", "known": "heldout_known", "dev": "dev"}
"""Split -> the file stem the mix stage writes it under (``mix/<stem>.jsonl`` and the HF folder ``mix/<stem>/``)."""


@dataclass
class Splits:
    """The items of each split, each list in input order."""

    train: list[QAItem]
    unseen: list[QAItem]
    known: list[QAItem]
    dev: list[QAItem]


def group_of(item: QAItem) -> str:
    """The held-out unit: the item's diagnosis (for a two-hop KG item whose answer is, say, an inheritance mode,
    the hidden disease), else its answer entity, else the item itself."""
    entity = item.provenance.get("diagnosis") or item.provenance.get("answer_entity")
    return f"entity:{entity}" if entity else f"item:{item.id}"


def unit(seed: int, key: str) -> float:
    """A number in [0, 1) drawn from `seed` and `key` alone (the same on every machine and in any order)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def stem_keys(item: QAItem) -> list[str]:
    """The keys two items sharing a stem have in common: the set of stem entities, and the question text."""
    stem = item.provenance.get("stem_entities") or []
    keys = [f"text:{question_key(item.question)}"]
    return [f"stem:{'|'.join(sorted(map(str, stem)))}", *keys] if stem else keys


def split_items(items: Sequence[QAItem], heldout_fraction: float, dev_fraction: float, known_fraction: float,
                seed: int) -> Splits:
    """Split `items` into train / unseen / known / dev (see the module's docstring for the rules)."""
    where: dict[str, str] = {}
    for item in items:
        group = group_of(item)
        u = unit(seed, group)
        if u < heldout_fraction:
            where[item.id] = "unseen"
        elif group.startswith("entity:") and u < heldout_fraction + dev_fraction:
            where[item.id] = "dev"
        else:
            where[item.id] = "train"
    if known_fraction > 0:
        pool = [i for i in items if where[i.id] == "train"]
        where.update((i.id, "known") for i in _known(pool, known_fraction, seed))
    out = Splits([], [], [], [])
    for item in items:
        getattr(out, where[item.id]).append(item)
    return out


def _known(pool: list[QAItem], fraction: float, seed: int) -> list[QAItem]:
    """The items of `pool` (everything not unseen or dev) to set aside as new questions about trained diagnoses."""
    clusters = _clusters(pool)
    draw = [unit(seed, "known:" + min(i.id for i in c)) for c in clusters]
    picked = {k for k, c in enumerate(clusters)
              if draw[k] < fraction and all(i.provenance.get("diagnosis") for i in c)}
    by_group: dict[str, set[int]] = {}
    for k, cluster in enumerate(clusters):
        for item in cluster:
            by_group.setdefault(group_of(item), set()).add(k)
    for group in sorted(by_group):
        if by_group[group] <= picked:  # every item of this diagnosis would be known: keep one cluster trained
            picked.discard(max(by_group[group], key=lambda k: draw[k]))
    return [i for k in sorted(picked) for i in clusters[k]]


def _clusters(items: list[QAItem]) -> list[list[QAItem]]:
    """Group `items` into clusters linked by shared stems (union-find over `stem_keys`), in input order."""
    parent = list(range(len(items)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    first: dict[str, int] = {}
    for k, item in enumerate(items):
        for key in stem_keys(item):
            if key in first:
                parent[root(k)] = root(first[key])
            else:
                first[key] = k
    clusters: dict[int, list[QAItem]] = {}
    for k, item in enumerate(items):
        clusters.setdefault(root(k), []).append(item)
    return list(clusters.values())
