"""Mixing and splitting: the curated : synthetic ratio, difficulty quotas, and the evaluation splits.

The splits (``fleming.splits``) are made first: unseen diagnoses (``heldout``), a dev split of diagnoses of its
own, and new questions about trained diagnoses (``known``); the ratio and quotas then apply to training alone.
The unseen and dev splits go by *group*, not by item: the item's diagnosis, else its answer entity, else the
item itself, so no held-out diagnosis is ever a training answer and held-out accuracy measures generalisation.
Items left out by a ratio or quota are kept aside in ``unused.jsonl`` with the reason, never lost; so is a
known item whose diagnosis has no training item left once the ratio and quotas have applied.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from fleming.splits import group_of, split_items, unit
from fleming.types import QAItem, Rejected


@dataclass
class MixResult:
    """The training set, the held-out set, the items left out (with reasons), what was decided, and the
    known-diagnosis and dev splits (empty unless the recipe asks for them)."""

    train: list[QAItem]
    heldout: list[QAItem]
    unused: list[Rejected]
    notes: dict[str, Any] = field(default_factory=dict)
    known: list[QAItem] = field(default_factory=list)
    dev: list[QAItem] = field(default_factory=list)


def _is_synthetic(item: QAItem) -> bool:
    return item.provenance.get("origin") == "synthetic"


def mix_items(items: Sequence[QAItem], mix: Any, seed: int) -> MixResult:
    """Split `items` into train / held-out (unseen, known, dev) and apply the recipe's mix (None = keep
    everything for training)."""
    fractions = [getattr(mix, f"{name}_fraction", 0.0) if mix is not None else 0.0
                 for name in ("heldout", "dev", "known")]
    splits = split_items(items, *fractions, seed=seed)
    train, heldout = splits.train, splits.unseen
    unused: list[Rejected] = []
    notes: dict[str, Any] = {"heldout_groups": len({group_of(i) for i in heldout})}
    if splits.dev:
        notes["dev_groups"] = len({group_of(i) for i in splits.dev})
    rng = random.Random(seed)
    if mix is not None and mix.synthetic_fraction is not None:
        synth = [i for i in train if _is_synthetic(i)]
        curated = [i for i in train if not _is_synthetic(i)]
        f = mix.synthetic_fraction
        keep_s, keep_c = _synthetic_counts(len(synth), len(curated), f)
        train = _take(synth, keep_s, rng, "synthetic_fraction", unused) + _take(curated, keep_c, rng,
                                                                                 "synthetic_fraction", unused)
        notes["synthetic"] = keep_s
        notes["curated"] = keep_c
    if mix is not None and mix.difficulty_quotas:
        quotas = {k: v / sum(mix.difficulty_quotas.values()) for k, v in mix.difficulty_quotas.items()}
        by_level = {k: [i for i in train if i.difficulty == k] for k in quotas}
        unlabeled = [i for i in train if i.difficulty not in quotas]
        total = min((len(v) / quotas[k] for k, v in by_level.items() if quotas[k] > 0), default=0)
        train = []
        for k, group in by_level.items():
            train += _take(group, round(total * quotas[k]), rng, f"difficulty quota {k}", unused)
        unused += [Rejected("difficulty quota: no difficulty label in the quotas", i.source, i.to_record())
                   for i in unlabeled]
        notes["difficulty"] = {k: sum(1 for i in train if i.difficulty == k) for k in quotas}
    trained = {group_of(i) for i in train}
    known = [i for i in splits.known if group_of(i) in trained]
    unused += [Rejected("known split: no training item about its diagnosis is left after the mix", i.source,
                        i.to_record()) for i in splits.known if group_of(i) not in trained]
    train.sort(key=lambda i: unit(seed + 1, i.id))
    notes["splits"] = {"train": len(train), "unseen": len(heldout), "known": len(known), "dev": len(splits.dev)}
    return MixResult(train=train, heldout=heldout, unused=unused, notes=notes, known=known, dev=splits.dev)


def _synthetic_counts(n_synth: int, n_curated: int, f: float) -> tuple[int, int]:
    """Return (synthetic, curated) counts of the largest set whose synthetic share is exactly `f`.

    `f` is read as a fraction p/q (denominator at most 100); when too few items exist for even one
    multiple of q, the counts are rounded to the nearest share instead.
    """
    if f in (0.0, 1.0):
        return (n_synth, 0) if f == 1.0 else (0, n_curated)
    ratio = Fraction(f).limit_denominator(100)
    p, q = ratio.numerator, ratio.denominator
    k = min(n_synth // p, n_curated // (q - p)) if 0 < p < q else 0
    if k > 0:
        return k * p, k * (q - p)
    total = min(n_synth / f, n_curated / (1 - f))
    return round(total * f), round(total * (1 - f))


def _take(items: list[QAItem], n: int, rng: random.Random, why: str, unused: list[Rejected]) -> list[QAItem]:
    order = list(items)
    rng.shuffle(order)
    unused += [Rejected(f"{why}: over the share", i.source, i.to_record()) for i in order[n:]]
    return order[:n]
