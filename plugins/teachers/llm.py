"""Teacher `llm`: any Inspect model, given the question and its answer, writes a concise chain of thought.

pass@k selection: each item gets ``k`` candidates (``prompts/teacher_cot.jinja``, temperature sampling); a
candidate is kept when the strict parser reads the item's answer from it and it passes the `format` reward's
check (``fleming.answers.well_formed``: reasoning, then one ``<answer>X</answer>`` at the end); the shortest
such candidate is kept (the paper asks for concise CoT). Items with no passing candidate enter a refinement
loop of up to ``rounds`` rounds: the last attempt is shown back to the model with a follow-up prompt:

* ``teacher_correct``: the attempt had no readable answer or broke the format (self-correction);
* ``teacher_backtrack``: it reached another option (first refinement round: go back to the faulty step);
* ``teacher_explore``: later rounds after a wrong option (try a different reasoning path).

An item that never succeeds becomes a `Rejected` whose reason says so and whose record lists the attempts
(round, prompt, parsed answer, error). Calls go through ``fleming.llm_calls`` (concurrency, retries, and an
on-disk cache under the fleming cache folder: a second run makes no calls). Counts per round and token usage
go to ``notes["llm-teacher"]``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from pydantic import Field, PositiveInt

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.answers import extract_answer, strip_end, well_formed
from fleming.llm_calls import LLMClient, LLMRequest, complete_in_stage
from fleming.prompts import render

NAME = "llm-teacher"


class LlmTeacher:
    """Write rationales with an Inspect model: pass@k, then refinement rounds (see the module docstring)."""

    def __init__(self, model: str, model_args: dict[str, Any] | None = None, k: PositiveInt = 4,
                 rounds: Annotated[int, Field(ge=0)] = 2, temperature: Annotated[float, Field(ge=0)] = 0.7,
                 max_tokens: PositiveInt = 1024, max_connections: PositiveInt = 8,
                 retries: Annotated[int, Field(ge=0)] = 3, timeout: Annotated[float, Field(gt=0)] | None = 300.0,
                 cache: bool = True) -> None:
        self.model, self.k, self.rounds = model, k, rounds
        self.config = {"temperature": temperature, "max_tokens": max_tokens}
        self.client = LLMClient(model, dict(model_args or {}), max_connections=max_connections, retries=retries,
                                timeout=timeout, use_cache=cache)

    def explain(self, items: Sequence[QAItem], ctx: StageContext) -> Iterator[QAItem | Rejected]:
        """Yield each item with its kept rationale, or a `Rejected` listing the failed attempts."""
        kept: dict[str, str] = {}
        attempts: dict[str, list[dict[str, Any]]] = {it.id: [] for it in items}
        last: dict[str, tuple[list[dict[str, str]], str]] = {}
        cot = {it.id: [{"role": "user", "content": render("teacher_cot", question=it.question,
                                                           options=dict(it.options), answer=it.answer)}]
               for it in items}
        requests = [LLMRequest(cot[it.id], self.config, t) for it in items for t in range(self.k)]
        results = complete_in_stage(self.client, requests, ctx, f"{NAME}: {len(items)} items × {self.k}", NAME)
        counts = {"items": len(items), "pass@k": 0}
        for n, it in enumerate(items):
            good = []
            for t, res in enumerate(results[n * self.k:(n + 1) * self.k]):
                text, note = self._judge(it, res)
                attempts[it.id].append({"round": 0, "prompt": "teacher_cot", "trial": t, **note})
                if note["ok"]:
                    good.append(text)
                elif res.ok:
                    last[it.id] = (cot[it.id], res.text)
            if good:
                kept[it.id] = min(good, key=len)
                counts["pass@k"] += 1
        for r in range(1, self.rounds + 1):
            todo = [it for it in items if it.id not in kept and it.id in last]
            if not todo:
                break
            reqs, prompts = [], []
            for it in todo:
                history, text = last[it.id]
                prompt = self._follow_up(it, text, r)
                messages = [*history, {"role": "assistant", "content": text},
                            {"role": "user", "content": render(prompt, answer=it.answer, options=dict(it.options),
                                                               got=extract_answer(text, list(it.options)))}]
                reqs.append(LLMRequest(messages, self.config, 0))
                prompts.append((prompt, messages))
            results = complete_in_stage(self.client, reqs, ctx, f"{NAME}: refinement round {r}", NAME)
            fixed = 0
            for it, (prompt, messages), res in zip(todo, prompts, results):
                text, note = self._judge(it, res)
                attempts[it.id].append({"round": r, "prompt": prompt, **note})
                if note["ok"]:
                    kept[it.id] = text
                    fixed += 1
                elif res.ok:
                    last[it.id] = (messages, res.text)
            counts[f"refined_round_{r}"] = fixed
        counts["rejected"] = len(items) - len(kept)
        notes = getattr(ctx, "notes", None)
        if notes is not None:
            notes.setdefault(NAME, {}).update(counts)
        for it in items:
            if it.id in kept:
                yield it.replace(rationale=kept[it.id])
            else:
                tries = len(attempts[it.id])
                yield Rejected(f"{NAME}: no rationale reached answer {it.answer} in the required format "
                               f"({tries} attempts: k={self.k}, {self.rounds} refinement rounds)",
                               it.source or it.id, {**it.to_record(), "attempts": attempts[it.id]})

    def _judge(self, item: QAItem, res: Any) -> tuple[str, dict[str, Any]]:
        """Return (the cleaned text, a note: parsed answer, ok, error)."""
        if not res.ok:
            return "", {"answer": None, "ok": False, "error": res.error}
        text = strip_end(res.text or "")
        got = extract_answer(text, list(item.options))
        ok = got == item.answer and well_formed(text, list(item.options))
        return text, {"answer": got, "ok": ok, "error": None if ok else
                      ("wrong answer" if got not in (None, item.answer) else "format")}

    def _follow_up(self, item: QAItem, text: str, round_: int) -> str:
        got = extract_answer(text, list(item.options))
        if got is None or got == item.answer:  # no answer, or the right one in the wrong format
            return "teacher_correct"
        return "teacher_backtrack" if round_ == 1 else "teacher_explore"


@hookimpl
def register_teachers(register: Any) -> None:
    """Register the `llm` teacher."""
    register("llm", LlmTeacher)
