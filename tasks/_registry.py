"""Imported by Inspect through the `inspect_ai` entry point: registers every task of `BENCHMARKS` as fleming/<name>."""
import importlib

from fleming.tasks import BENCHMARKS

for _entry in BENCHMARKS.values():
    importlib.import_module(_entry.task.partition(":")[0])
