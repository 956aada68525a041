"""Filter `dedup`: removes exact and near duplicates, keeping the first occurrence (deterministic).

* exact: the same normalised question and the same set of normalised option texts (order ignored);
* near: word-shingle Jaccard similarity at least ``threshold`` (default 0.9). Candidates come from MinHash
  signatures (``num_perm`` permutations) banded for locality-sensitive hashing; every candidate pair is then
  checked with the exact Jaccard of the two shingle sets, so a reported similarity is never an estimate and
  LSH only costs recall just above the threshold. An item is compared with the items kept so far.

Shingles are ``shingle``-word n-grams (default 3) of the question followed by its options (``options:
false`` compares questions alone); tokens as in ``fleming.plugins.filters._text_match``. Reasons read
"exact duplicate of medqa:test-12" or "near duplicate of medqa:test-12 (jaccard 0.93)".
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.plugins.filters._text_match import TokenHasher, item_text, normalise, tokens

_CHUNK = 500


@lru_cache(maxsize=32)
def lsh_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    """Return (bands, rows) for `num_perm` permutations whose LSH curve rises just below `threshold`.

    Minimises the (weighted) chance of missing a pair above the threshold plus a small cost for candidates
    below it (those are discarded by the exact check, so recall matters more).
    """
    s = np.linspace(0.0, 1.0, 201)
    best: tuple[float, int, int] = (float("inf"), 1, num_perm)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        p = 1.0 - (1.0 - s ** rows) ** bands
        miss = np.where(s >= threshold, 1.0 - p, 0.0).sum()
        extra = np.where(s < threshold, p, 0.0).sum()
        cost = 100.0 * miss + extra
        if cost < best[0]:
            best = (cost, bands, rows)
    return best[1], best[2]


def exact_key(item: QAItem, options: bool = True) -> bytes:
    """Return the exact-duplicate key: normalised question plus the sorted normalised option texts."""
    parts = [normalise(item.question)]
    if options:
        parts += sorted(normalise(v) for v in item.options.values())
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


class DedupFilter:
    """Reject exact and near duplicates, keeping the first of each group."""

    def __init__(self, exact: bool = True, near: bool = True,
                 threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9,
                 shingle: Annotated[int, Field(ge=1, le=10)] = 3,
                 num_perm: Annotated[int, Field(ge=16, le=1024)] = 128, options: bool = True,
                 seed: int = 1) -> None:
        self.exact = exact
        self.near = near
        self.threshold = threshold
        self.shingle = shingle
        self.num_perm = num_perm
        self.options = options
        self.seed = seed

    def _signatures(self, hashes: np.ndarray, owner: np.ndarray, n_items: int) -> np.ndarray:
        """Return the (n_items, num_perm) MinHash signatures; an item without shingles gets all-max.

        Permutation k maps a shingle's 32-bit hash x to ((x ^ s_k) * a_k mod 2^32) ^ (that >> 15), a_k odd:
        a bijection of 32-bit values that numpy computes in a few vectorised uint32 operations.
        """
        rng = np.random.default_rng(self.seed)
        s = rng.integers(0, 1 << 32, size=(self.num_perm, 1), dtype=np.uint64).astype(np.uint32)
        a = (rng.integers(0, 1 << 31, size=(self.num_perm, 1), dtype=np.uint64) * 2 + 1).astype(np.uint32)
        x = (hashes >> np.uint64(32)).astype(np.uint32)
        sig = np.full((n_items, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        bounds = np.searchsorted(owner, np.arange(0, n_items + _CHUNK, _CHUNK))
        with np.errstate(over="ignore"):
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                if lo == hi:
                    continue
                values = (x[lo:hi] ^ s) * a  # (num_perm, shingles in chunk)
                values ^= values >> np.uint32(15)
                own = owner[lo:hi]
                starts = np.concatenate([[0], np.nonzero(np.diff(own))[0] + 1])
                sig[own[starts]] = np.minimum.reduceat(values, starts, axis=1).T
        return sig

    def apply(self, items: Sequence[QAItem], ctx: StageContext | None = None) -> tuple[list[QAItem], list[Rejected]]:
        """Return (the first of each duplicate group, rejects naming the item each duplicates)."""
        items = list(items)
        reasons: dict[int, str] = {}
        if self.exact:
            first: dict[bytes, int] = {}
            for i, item in enumerate(items):
                j = first.setdefault(exact_key(item, self.options), i)
                if j != i:
                    reasons[i] = f"exact duplicate of {items[j].id}"
        if self.near:
            self._near(items, reasons, ctx)
        kept = [it for i, it in enumerate(items) if i not in reasons]
        rejected = [Rejected(reasons[i], items[i].id, items[i].to_record()) for i in sorted(reasons)]
        return kept, rejected

    def _near(self, items: list[QAItem], reasons: dict[int, str], ctx: StageContext | None) -> None:
        docs = [tokens(item_text(it, self.options)) for it in items]
        hashes, owner = TokenHasher().ngrams(docs, self.shingle)
        order = np.argsort(owner, kind="stable")
        hashes, owner = hashes[order], owner[order]
        sig = self._signatures(hashes, owner, len(items))
        bounds = np.searchsorted(owner, np.arange(len(items) + 1))
        sets = [np.unique(hashes[bounds[i]:bounds[i + 1]]) for i in range(len(items))]
        bands, rows = lsh_shape(self.threshold, self.num_perm)
        buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
        indices = range(len(items))
        if ctx is not None and hasattr(ctx, "progress"):
            indices = ctx.progress(indices, total=len(items), description="near duplicates")
        for i in indices:
            if i in reasons or len(sets[i]) == 0:
                continue
            keys = [sig[i, k * rows:(k + 1) * rows].tobytes() for k in range(bands)]
            candidates = {j for k, key in enumerate(keys) for j in buckets[k].get(key, ())}
            best, best_j = 0.0, -1
            for j in sorted(candidates):
                inter = len(np.intersect1d(sets[i], sets[j], assume_unique=True))
                sim = inter / (len(sets[i]) + len(sets[j]) - inter)
                if sim > best:
                    best, best_j = sim, j
            if best >= self.threshold:
                reasons[i] = f"near duplicate of {items[best_j].id} (jaccard {best:.2f})"
                continue
            for k, key in enumerate(keys):
                buckets[k].setdefault(key, []).append(i)


@hookimpl
def register_filters(register: Any) -> None:
    """Register the `dedup` filter."""
    register("dedup", DedupFilter)
