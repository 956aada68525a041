"""Text normalisation and word n-gram hashing shared by the `dedup` and `decontaminate` filters.

Tokens follow the GPT-3 / lm-eval decontamination convention: Unicode-normalised (NFKC), case-folded
text split into runs of letters and digits, punctuation dropped. Each CJK character is a token of its
own, so Chinese items (CMExam) get meaningful n-grams too. Hashes are stable across processes (no
Python ``hash``): tokens are hashed with BLAKE2b, n-grams with a polynomial rolling hash over uint64.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from fleming.types import QAItem

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")
_BASE = np.uint64(0x100000001B3)
_SHORT_SALT = np.uint64(0x9E3779B97F4A7C15)


def normalise(text: str) -> str:
    """Return `text` NFKC-normalised, case-folded, with runs of whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def tokens(text: str) -> list[str]:
    """Return the word tokens of `text` (letters/digits runs; one token per CJK character)."""
    return _TOKEN.findall(normalise(text))


def item_text(item: QAItem, options: bool = True) -> str:
    """Return the text an item is compared on: the question, then each option's text in order."""
    if not options:
        return item.question
    return "\n".join([item.question, *item.options.values()])


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits of a polynomial hash (uint64 arithmetic wraps)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


class TokenHasher:
    """Maps tokens to stable 64-bit ids (cached) and token sequences to n-gram hashes."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def ids(self, toks: Sequence[str]) -> np.ndarray:
        """Return the uint64 id of each token."""
        cache = self._ids
        for t in set(toks).difference(cache):
            cache[t] = int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little")
        return np.fromiter(map(cache.__getitem__, toks), dtype=np.uint64, count=len(toks))

    def ngrams(self, docs: Sequence[Sequence[str]], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (hashes, owner): every word n-gram of every doc, with the index of the doc it came from.

        A doc shorter than `n` tokens (but not empty) gives one hash of its whole token sequence, so a
        short item can still match an identical short item. Hashes repeat when a doc repeats an n-gram.
        """
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        flat = self.ids([t for d in docs for t in d])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(docs) else lengths
        hashes: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        if len(flat) >= n:
            k = len(flat) - n + 1
            h = np.zeros(k, dtype=np.uint64)
            with np.errstate(over="ignore"):
                for j in range(n):
                    h = h * _BASE + flat[j:j + k]
                h = _mix(h)
            owner = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)[:k]
            ends = (starts + lengths)[owner]
            valid = np.arange(k, dtype=np.int64) + n <= ends
            hashes.append(h[valid])
            owners.append(owner[valid])
        short = np.nonzero((lengths > 0) & (lengths < n))[0]
        if len(short):
            sh = np.empty(len(short), dtype=np.uint64)
            with np.errstate(over="ignore"):
                for i, doc in enumerate(short):
                    acc = _SHORT_SALT
                    for v in flat[starts[doc]:starts[doc] + lengths[doc]]:
                        acc = acc * _BASE + v
                    sh[i] = acc
                sh = _mix(sh)
            hashes.append(sh)
            owners.append(short.astype(np.int64))
        if not hashes:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        return np.concatenate(hashes), np.concatenate(owners)


def unique_pairs(major: np.ndarray, minor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct (major, minor) pairs, sorted by major then minor."""
    order = np.lexsort((minor, major))
    major, minor = major[order], minor[order]
    keep = np.ones(len(major), dtype=bool)
    keep[1:] = (major[1:] != major[:-1]) | (minor[1:] != minor[:-1])
    return major[keep], minor[keep]
