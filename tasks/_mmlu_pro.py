"""MMLU-Pro (test split) restricted to one category: shared by `mmlu_pro_biology` and `mmlu_pro_health`."""
from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from fleming.tasks._records import BenchmarkSpec, HubSource


def spec(category: str) -> BenchmarkSpec:
    """Return the spec of one MMLU-Pro category; subject = ``src`` (the original MMLU subject or source)."""

    def from_hub(row: Mapping[str, Any], index: int) -> dict[str, Any] | None:
        if row.get("category") != category:
            return None
        options = dict(zip(string.ascii_uppercase, row["options"]))
        return {"id": str(row["question_id"]), "question": row["question"], "options": options,
                "answer": row["answer"],
                "meta": {"category": category, "src": row.get("src"), "question_id": row["question_id"],
                         "n_options": len(options)}}

    return BenchmarkSpec(name=f"mmlu_pro_{category}", file=f"mmlu_pro_{category}.jsonl", subject="src",
                         hub=HubSource("TIGER-Lab/MMLU-Pro", split="test", convert=from_hub))
