"""Mixing and splitting: the curated : synthetic ratio, difficulty quotas, and a held-out split by entity.

The held-out split is made by *group*, not by item: the group is the item's answer entity
(``provenance["answer_entity"]``, e.g. a diagnosis) when it has one, else the item itself. So no
held-out diagnosis is ever a training answer, and held-out accuracy measures generalisation.
Items left out by a ratio or quota are kept aside in ``unused.jsonl`` with the reason, never lost.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from fleming.types import QAItem, Rejected


@dataclass
class MixResult:
    """The training set, the held-out set, the items left out (with reasons) and what was decided."""

    train: list[QAItem]
    heldout: list[QAItem]
    unused: list[Rejected]
    notes: dict[str, Any] = field(default_factory=dict)


def _group(item: QAItem) -> str:
    """The held-out unit: the item's diagnosis (for a two-hop KG item whose answer is, say, an inheritance mode,
    the hidden disease), else its answer entity, else the item itself."""
    entity = item.provenance.get("diagnosis") or item.provenance.get("answer_entity")
    return f"entity:{entity}" if entity else f"item:{item.id}"


def _unit(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _is_synthetic(item: QAItem) -> bool:
    return item.provenance.get("origin") == "synthetic"


def mix_items(items: Sequence[QAItem], mix: Any, seed: int) -> MixResult:
    """Split `items` into train / held-out and apply the recipe's mix (None = keep everything)."""
    heldout_fraction = mix.heldout_fraction if mix is not None else 0.0
    train = [i for i in items if _unit(seed, _group(i)) >= heldout_fraction]
    heldout = [i for i in items if _unit(seed, _group(i)) < heldout_fraction]
    unused: list[Rejected] = []
    notes: dict[str, Any] = {"heldout_groups": len({_group(i) for i in heldout})}
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
    train.sort(key=lambda i: _unit(seed + 1, i.id))
    return MixResult(train=train, heldout=heldout, unused=unused, notes=notes)


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
