"""MMLU-Pro biology: 717 test questions with 3-10 options; subject = ``src`` (original MMLU subject)."""
from __future__ import annotations

from inspect_ai import Task, task

from fleming.tasks._mcq import registry_name, spec_task
from fleming.tasks._mmlu_pro import spec

SPEC = spec("biology")


@task(name=registry_name("mmlu_pro_biology"))
def mmlu_pro_biology(data_dir: str | None = None, data_file: str | None = None, shuffle_seed: int | None = None,
                     max_tokens: int = 1024,
                     permutations: int = 1, audit: bool | None = None, reasoning_alone: bool = False,
                     judge: str | None = None) -> Task:
    """MMLU-Pro biology (717 questions), accuracy per source subject."""
    return spec_task(SPEC, data_dir=data_dir, data_file=data_file, shuffle_seed=shuffle_seed, max_tokens=max_tokens,
                     permutations=permutations, audit=audit, reasoning_alone=reasoning_alone, judge=judge)
