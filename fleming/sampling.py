"""Sampling k answers per item from a model, posed exactly as the evaluation poses them.

The LLM verifiers (``label-check``, ``pass-rate``) and any third-party one that needs a model's answers share
this: each item is asked `k` times with the evaluation prompt (``fleming.formats.chat_messages``), through the
cached, retrying ``fleming.llm_calls.LLMClient``, and every reply is read with the one answer parser in both
modes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fleming.answers import extract_answer
from fleming.formats import chat_messages
from fleming.llm_calls import LLMClient, LLMRequest, complete_in_stage
from fleming.types import QAItem

__all__ = ["Trials", "client_for", "sample_answers"]


@dataclass(frozen=True)
class Trials:
    """One item's k answers: strict and lenient letters (None: no answer), errors of failed calls."""

    answers: list[str | None]
    lenient: list[str | None]
    errors: list[str]

    def correct(self, answer: str, mode: Literal["strict", "lenient"] = "strict") -> int:
        """How many answers, read in `mode`, equal `answer`."""
        return sum(a == answer for a in (self.answers if mode == "strict" else self.lenient))


def client_for(model: str, model_args: dict[str, Any], max_connections: int, retries: int, backoff: float,
               timeout: float | None, cache: bool) -> LLMClient:
    """Build a cached, retrying client for the Inspect model `model`."""
    return LLMClient(model, model_args, max_connections=max_connections, retries=retries, backoff=backoff,
                     timeout=timeout, use_cache=cache)


def sample_answers(client: LLMClient, items: Sequence[QAItem], k: int, config: dict[str, Any], ctx: Any,
                   name: str, seed: int | None = None) -> list[Trials]:
    """Ask `client` each item `k` times with the evaluation prompt and parse every answer.

    `config` is the generation config (temperature, max_tokens); with `seed`, trial ``t`` uses ``seed + t``.
    `ctx` (the stage context, or None) gets the progress bar and usage notes under `name`.
    """
    requests = [LLMRequest(chat_messages(it), {**config, **({"seed": seed + t} if seed is not None else {})}, t)
                for it in items for t in range(k)]
    results = complete_in_stage(client, requests, ctx, f"{name}: {len(items)} items × {k}", name)
    out: list[Trials] = []
    for n, it in enumerate(items):
        got = results[n * k:(n + 1) * k]
        letters = list(it.options)
        out.append(Trials(
            answers=[extract_answer(r.text, letters) if r.ok else None for r in got],
            lenient=[extract_answer(r.text, letters, mode="lenient") if r.ok else None for r in got],
            errors=[r.error for r in got if not r.ok and r.error]))
    return out
