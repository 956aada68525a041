"""Imported by Inspect through the `inspect_ai` entry point: registers every task of `BENCHMARKS` as fleming/<name>,
and the ``fleming`` model provider (``fleming/<label>``: generation through a fleming engine)."""
import importlib

import fleming.inspect_engine  # noqa: F401  (registers the provider)
from fleming.tasks import BENCHMARKS

for _entry in BENCHMARKS.values():
    importlib.import_module(_entry.task.partition(":")[0])
