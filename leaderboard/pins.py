"""The benchmark data each log read, pinned by sha256: which file most logs of a benchmark used, and which
logs read another one.

A benchmark's common file is the one most of its finished logs recorded (all its logs when none finished; a
tie goes to the most recent). A log that recorded another file is marked, in every table and list, so two
numbers measured on different files are never compared unawares. A log that recorded no file (a hub copy,
items in memory, an older log) is never marked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from fleming.data_pins import short


@dataclass
class DataFile:
    """One file a benchmark's logs read: its sha256, how many logs read it, their file names, whether common."""

    sha256: str
    short: str
    logs: int
    names: list[str] = field(default_factory=list)
    common: bool = False


def _present(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def common_files(frame: pd.DataFrame) -> dict[str, str]:
    """Benchmark -> the sha256 most of its logs recorded (benchmarks without any recorded file are absent)."""
    have = frame[frame["data_sha256"].map(_present)]
    out: dict[str, str] = {}
    for bench, group in have.groupby("benchmark", sort=True):
        done = group[group["status"] == "success"]
        group = done if len(done) else group
        stats = group.groupby("data_sha256").agg(n=("log", "size"), last=("created", "max"))
        out[str(bench)] = str(stats.sort_values(["n", "last"], kind="stable").index[-1])
    return out


def mark_data(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``data_common`` (the benchmark's common sha256) and ``data_differs`` (this log read another file)."""
    common = common_files(frame)
    frame = frame.copy()
    frame["data_common"] = frame["benchmark"].map(lambda b: common.get(b))
    frame["data_differs"] = [_present(sha) and sha != common.get(bench)
                             for sha, bench in zip(frame["data_sha256"], frame["benchmark"])]
    return frame


def data_files(frame: pd.DataFrame) -> dict[str, list[DataFile]]:
    """Benchmark -> every file its logs recorded, the common one first (for the site's data section)."""
    common = common_files(frame)
    out: dict[str, list[DataFile]] = {}
    have = frame[frame["data_sha256"].map(_present)]
    for bench, group in have.groupby("benchmark", sort=True):
        files = [DataFile(sha256=str(sha), short=short(str(sha)), logs=len(logs),
                          names=sorted({n for n in logs["data_name"] if isinstance(n, str) and n}),
                          common=sha == common.get(str(bench)))
                 for sha, logs in group.groupby("data_sha256", sort=True)]
        out[str(bench)] = sorted(files, key=lambda f: (not f.common, -f.logs, f.sha256))
    return out
