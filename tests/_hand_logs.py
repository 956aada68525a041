"""Inspect logs written by hand (``EvalLog`` objects and ``write_eval_log``): any scores, metadata and samples,
without running a task, so a test says exactly which numbers a log holds."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SHA_A = "a" * 64
SHA_B = "b" * 64


def sample(index: int, completion: str, value: Mapping[str, float] | None = None,
           audit: Any = None, question: str = "Which disease?") -> Any:
    """One sample whose answer score has `value` (default: strictly right) and, if given, an audit."""
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Score

    metadata = {"lenient_answer": "A", **({"audit": audit} if audit is not None else {})}
    score = Score(value=dict(value or {"strict": 1.0, "lenient": 1.0, "no_answer": 0.0}), answer="A",
                  metadata=metadata)
    return EvalSample(id=f"s{index}", epoch=1, input=question, target="A",
                      output=ModelOutput.from_content("mockllm/model", completion),
                      metadata={"id": f"q{index}", "letters": ["A", "B"],
                                "options": {"A": "Marfan syndrome", "B": "Homocystinuria"}},
                      scores={"answer_scorer": score})


def write_log(folder: Path, benchmark: str, metrics: Mapping[tuple[str, str], float], *,
              fleming: Mapping[str, Any] | None = None, data_sha256: str | None = None,
              created: str = "2026-01-01T00:00:00+00:00", samples: Sequence[Any] = (),
              status: str = "success", name: str | None = None) -> Path:
    """Write one log of `benchmark` whose ``results.scores`` hold `metrics` ((score, metric) -> value)."""
    from inspect_ai.log import (EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalResults, EvalScore, EvalSpec,
                                write_eval_log)

    grouped: dict[str, dict[str, Any]] = {}
    for (score, metric), value in metrics.items():
        grouped.setdefault(score, {})[metric] = EvalMetric(name=metric, value=value)
    metadata: dict[str, Any] = {"benchmark": benchmark, "data": f"/data/{benchmark}.jsonl",
                                "data_sha256": data_sha256}
    if fleming is not None:
        metadata["fleming"] = {"benchmark": benchmark, **fleming}
    spec = EvalSpec(created=created, task=f"fleming/{benchmark}", dataset=EvalDataset(name=benchmark),
                    model="mockllm/model", config=EvalConfig(), metadata=metadata)
    results = EvalResults(total_samples=max(len(samples), 4), completed_samples=max(len(samples), 4),
                          scores=[EvalScore(name=score, scorer="answer_scorer", metrics=m)
                                  for score, m in grouped.items()])
    log = EvalLog(eval=spec, results=results, status=status, samples=list(samples))  # type: ignore[arg-type]
    stamp = created.replace(":", "-")
    tail = name or hashlib.sha1(f"{benchmark}{created}{sorted((fleming or {}).items())}".encode()).hexdigest()[:8]
    path = folder / f"{stamp}_{benchmark}_{tail}.eval"
    folder.mkdir(parents=True, exist_ok=True)
    write_eval_log(log, str(path))
    return path


BASIC = {("strict", "accuracy"): 0.5, ("strict", "stderr"): 0.1, ("lenient", "accuracy"): 0.75,
         ("lenient", "stderr"): 0.1, ("no_answer", "mean"): 0.25}
EXTRA = {("faithful_accuracy", "mean"): 0.4, ("faithful_accuracy", "stderr"): 0.05,
         ("path_recall", "mean"): 0.6, ("path_recall", "stderr"): 0.04,
         ("contradiction_rate", "mean"): 0.1, ("contradiction_rate", "stderr"): 0.02,
         ("strict", "consistent"): 0.3, ("strict", "flip_rate"): 0.2,
         ("reasoning_alone", "mean"): 0.7, ("reasoning_alone", "stderr"): 0.03}
"""Every optional measure of the contract, with distinct values."""
