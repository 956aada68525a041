"""Filter `decontaminate`: removes items whose text overlaps a benchmark item (word n-gram overlap).

``benchmarks`` is a folder (its ``*.jsonl`` files, not sub-folders) or a list of files/folders in the uniform
schema; left out, it is ``$FLEMING_DATA_DIR`` (the nine-benchmark suite's folder). Each text compared is the
question followed by the option texts (``options: false``: the question alone), split into word tokens the
way GPT-3 and lm-eval's decontamination do (lower case, punctuation dropped; one token per CJK character).

Every distinct ``n``-gram (default 13, the GPT-3 / lm-eval convention) of every benchmark item is hashed once
into a sorted array. An item's overlap with a benchmark item is the number of distinct n-grams they share
divided by the smaller of their two n-gram counts (the overlap coefficient, so a benchmark question
embedded in a longer item and a shortened copy both score high). A text shorter than ``n`` tokens counts as
one n-gram (itself). An item is rejected when its best overlap reaches ``threshold``; the reason names the
benchmark file, its line and its id: "overlaps medqa_usmle_4opt_test.jsonl line 17 (id medqa-test-00016;
13-gram overlap 0.62)".

The default threshold, 0.2, comes from the nine-benchmark suite itself: a verbatim copy scores 1.0; MedQA
cases that MedXpertQA or Medbullets rewrote score 0.2-0.5 against the original; unrelated items that share
stock phrases or long option lists score below 0.2, with few exceptions. Raise it to remove only near-verbatim
copies.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, Field

from fleming import ExistingPath, QAItem, Rejected, StageContext, hookimpl
from fleming.errors import DataError
from fleming.plugins.filters._text_match import TokenHasher, item_text, tokens, unique_pairs

ENV = "FLEMING_DATA_DIR"
_CHUNK = 2000


def default_benchmarks(value: Path | list[Path] | None) -> Path | list[Path]:
    """Return `value`, or the folder $FLEMING_DATA_DIR when it is None; raise ValueError when neither is there."""
    if value is not None:
        return value
    env = os.environ.get(ENV)
    if not env:
        raise ValueError(f"no benchmark files to decontaminate against: set the arg benchmarks (a folder or a "
                         f"list of uniform JSONL files) or the environment variable {ENV}")
    if not Path(env).is_dir():
        raise ValueError(f"{ENV}={env} is not a folder: set it, or the arg benchmarks, to the benchmark files")
    return Path(env)


Benchmarks = Annotated[ExistingPath | list[ExistingPath] | None, Field(validate_default=True),
                       AfterValidator(default_benchmarks)]


def benchmark_files(benchmarks: Path | Sequence[Path]) -> list[Path]:
    """Return the benchmark files: each file given, and the ``*.jsonl`` files of each folder, in name order."""
    files: list[Path] = []
    for path in [benchmarks] if isinstance(benchmarks, (str, Path)) else benchmarks:
        path = Path(path)
        files += sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"decontaminate: no *.jsonl benchmark files in {benchmarks}")
    return files


@dataclass(frozen=True)
class BenchmarkRef:
    """Where a benchmark item lives: file name, line and id."""

    file: str
    line: int
    id: str


class NgramIndex:
    """The distinct word n-grams of every benchmark item, sorted for vectorised look-up."""

    def __init__(self, files: Sequence[Path], n: int, options: bool) -> None:
        self.n = n
        self.refs: list[BenchmarkRef] = []
        docs: list[list[str]] = []
        for file in files:
            with open(file, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                        item = QAItem.from_record(rec)
                    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
                        raise DataError(f"{file}:{lineno}: not a uniform-schema benchmark row "
                                        f"({type(exc).__name__}: {exc})") from None
                    docs.append(tokens(item_text(item, options)))
                    self.refs.append(BenchmarkRef(file.name, lineno, str(rec["id"])))
        self.hasher = TokenHasher()
        hashes, owner = self.hasher.ngrams(docs, n)
        self.hashes, self.owner = unique_pairs(hashes, owner)  # sorted by hash, then benchmark item
        self.sizes = np.bincount(self.owner, minlength=len(docs))

    def best_matches(self, docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Return, per doc, the benchmark item with the highest overlap (-1 if none) and that overlap."""
        best = np.full(len(docs), -1, dtype=np.int64)
        score = np.zeros(len(docs), dtype=np.float64)
        for lo in range(0, len(docs), _CHUNK):
            chunk = docs[lo:lo + _CHUNK]
            hashes, owner = self.hasher.ngrams(chunk, self.n)
            if not len(hashes):
                continue
            q_owner, q_hash = unique_pairs(owner, hashes)
            q_sizes = np.bincount(q_owner, minlength=len(chunk))
            left = np.searchsorted(self.hashes, q_hash, side="left")
            right = np.searchsorted(self.hashes, q_hash, side="right")
            lens = right - left
            if not lens.sum():
                continue
            offsets = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
            bench = self.owner[np.repeat(left, lens) + offsets]
            doc = np.repeat(q_owner, lens)
            keys, shared = np.unique(doc * len(self.refs) + bench, return_counts=True)
            doc, bench = keys // len(self.refs), keys % len(self.refs)
            overlap = shared / np.minimum(q_sizes[doc], self.sizes[bench])
            order = np.lexsort((bench, -overlap, doc))  # per doc: highest overlap, then first benchmark item
            doc, bench, overlap = doc[order], bench[order], overlap[order]
            first = np.concatenate([[True], doc[1:] != doc[:-1]])
            best[lo + doc[first]] = bench[first]
            score[lo + doc[first]] = overlap[first]
        return best, score


class DecontaminateFilter:
    """Reject items that overlap a benchmark item (see the module docstring)."""

    def __init__(self, benchmarks: Benchmarks = None, n: Annotated[int, Field(ge=1, le=50)] = 13,
                 threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2, options: bool = True) -> None:
        try:
            self.benchmarks = default_benchmarks(benchmarks)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        self.n = n
        self.threshold = threshold
        self.options = options
        self._index: NgramIndex | None = None

    @property
    def index(self) -> NgramIndex:
        """The benchmark n-gram index, built on first use."""
        if self._index is None:
            self._index = NgramIndex(benchmark_files(self.benchmarks), self.n, self.options)
        return self._index

    def apply(self, items: Sequence[QAItem], ctx: StageContext | None = None) -> tuple[list[QAItem], list[Rejected]]:
        """Return (items clear of every benchmark, rejects naming the benchmark item each overlaps)."""
        items = list(items)
        if ctx is not None and hasattr(ctx, "spinner"):
            with ctx.spinner(f"indexing benchmark {self.n}-grams"):
                index = self.index
        else:
            index = self.index
        docs = [tokens(item_text(it, self.options)) for it in items]
        best, score = index.best_matches(docs)
        kept: list[QAItem] = []
        rejected: list[Rejected] = []
        for item, b, s in zip(items, best, score):
            if b >= 0 and s >= self.threshold:
                ref = index.refs[b]
                reason = f"overlaps {ref.file} line {ref.line} (id {ref.id}; {self.n}-gram overlap {s:.2f})"
                rejected.append(Rejected(reason, item.id, item.to_record()))
            else:
                kept.append(item)
        if ctx is not None and hasattr(ctx, "notes"):
            ctx.notes.setdefault("decontaminate", {}).update(
                benchmark_items=len(index.refs), benchmark_ngrams=int(len(index.hashes)), n=self.n)
        return kept, rejected


@hookimpl
def register_filters(register: Any) -> None:
    """Register the `decontaminate` filter."""
    register("decontaminate", DecontaminateFilter)
