"""Verifier `label-check`: a strong model answers every item k times; items it never gets right are flagged.

The paper's check: a state-of-the-art LLM answers each item five times and an item it never answers
correctly goes to manual review as a possibly wrong label. Each trial poses the item exactly as the
evaluation does (``prompts/eval_system.jinja`` + ``prompts/eval_mcq.jinja``, options in their order), at
``temperature`` > 0, through any Inspect model (``openai/gpt-4o``, ``anthropic/...``, ``vllm/...``,
``mockllm/model``), sampled with ``fleming.sampling.sample_answers``, or through a generation engine for a
local model (an alias such as ``smollm2-135m-instruct``, a HF model folder, ``hf/<label>`` with
``model_args: {model_path: DIR}``): ``engine`` (default: the run's engine) with ``engine_args``, ``batch_size``
items (all trials of each) per engine call, with ``fleming.sampling.sample_with_engine``; the verdicts and the
notes then name the engine too. Answers are read with the one answer parser,
``fleming.answers.extract_answer`` in strict mode (the lenient answers are recorded too).

Rule: an item is *flagged* when the model is right in fewer than ``min_correct`` of its ``trials``
(default 1: flagged only when never right, the paper's rule; ``min_correct: 3`` flags items answered right
in at most 2 of 5). Any trial whose call still fails after the retries makes the item ``unverified`` with
the error: it is kept, marked, and listed in the review queue, never silently passed or dropped.

Policy for flagged items no one has decided on yet:

* ``review`` (default): held out of training until a person decides: the verdict is ``drop`` with reason
  "awaiting review", so the item sits in the stage's ``rejects.jsonl`` and in the review queue;
* ``flag``: kept in training, marked (``meta.label_check.status = "flag"``), and listed in the queue;
* ``drop``: set aside (``rejects.jsonl``) as a probable wrong label; still listed in the queue so a person
  can bring it back.

Whatever the policy, a reviewer's decision (``fleming review apply RUN``, see ``fleming.review``) wins:
``accept`` keeps the item (``pass``), ``relabel`` keeps it with the new answer (``pass``), ``drop`` sets it
aside. Every kept item carries ``meta.label_check`` (model, correct, trials, status, review). Answers are
cached (``fleming.llm_calls``, or the engine samples' cache): a re-run makes no new calls; token counts and
cost (or the engine's counts) go into the stage manifest's notes under ``label-check``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt

from fleming import QAItem, StageContext, hookimpl
from fleming.review import Decision, item_digest, queue_row, write_queue
from fleming.sampling import (Trials, check_engine, client_for, engine_for, local_model, sample_answers,
                              sample_with_engine)
from fleming.types import Verdict

Policy = Literal["review", "flag", "drop"]


class LabelCheck:
    """Flag items whose label a strong model never reproduces in k trials (see the module docstring)."""

    name = "label-check"

    def __init__(self, model: str, model_args: dict[str, Any] | None = None, trials: PositiveInt = 5,
                 min_correct: PositiveInt = 1, policy: Policy = "review",
                 temperature: Annotated[float, Field(gt=0)] = 0.7, max_tokens: PositiveInt = 1024,
                 seed: int | None = None, engine: str | None = None, engine_args: dict[str, Any] | None = None,
                 batch_size: PositiveInt = 16, max_connections: PositiveInt = 8,
                 retries: Annotated[int, Field(ge=0)] = 3, backoff: Annotated[float, Field(ge=0)] = 1.0,
                 timeout: Annotated[float, Field(gt=0)] | None = 300.0, cache: bool = True) -> None:
        if min_correct > trials:
            raise ValueError(f"min_correct ({min_correct}) cannot exceed trials ({trials}): every item would "
                             "be flagged")
        self.model = model
        self.trials = trials
        self.min_correct = min_correct
        self.policy = policy
        self.config = {"temperature": temperature, "max_tokens": max_tokens}
        self.seed = seed
        self.local = local_model(model, model_args)
        check_engine(engine, engine_args)
        self.engine, self.engine_args, self.batch_size, self.cache = engine, engine_args, batch_size, cache
        self.engine_used: dict[str, Any] | None = None
        self.client = client_for(model, dict(model_args or {}), max_connections, retries, backoff, timeout, cache)

    def sample(self, items: Sequence[QAItem], ctx: StageContext) -> list[Trials]:
        """Return each item's trials: from the engine for a local model, else through the client."""
        if self.local is None:
            return sample_answers(self.client, items, self.trials, self.config, ctx, self.name, self.seed)
        choice = engine_for(ctx, self.engine, self.engine_args, f"{self.name} engine")
        self.engine_used = choice.record()
        return sample_with_engine(choice, items, self.trials, **self.config, seed=self.seed, ctx=ctx,
                                  name=self.name, model=self.local, cache=self.cache, batch_size=self.batch_size)

    def verify(self, items: Sequence[QAItem], ctx: StageContext) -> list[Verdict]:
        """Return one verdict per item and write the review queue into the stage folder."""
        decisions = ctx.review_decisions()
        trials = self.sample(items, ctx)
        verdicts: list[Verdict] = []
        queue: list[dict[str, Any]] = []
        for item, got in zip(items, trials):
            verdict, listed = self._judge(item, got, decisions.get(item.id))
            verdicts.append(verdict)
            if listed:
                queue.append(queue_row(item, verdict.details["check"], verdict.reason, verdict.details,
                                       _valid(decisions.get(item.id), item)))
        if getattr(ctx, "dir", None) is not None:
            write_queue(ctx.dir, queue, title=f"{ctx.stage}: {self.name} with {self.model}")
            ctx.counts[f"{self.name}:queue"] = len(queue)
        return verdicts

    def _judge(self, item: QAItem, got: Trials, decision: Decision | None) -> tuple[Verdict, bool]:
        """Return the item's verdict and whether it belongs in the review queue."""
        correct = got.correct(item.answer)
        details: dict[str, Any] = {"model": self.model, **self._engine(), "trials": self.trials,
                                   "correct": correct, "answers": got.answers, "lenient": got.lenient}
        if got.errors:
            details.update(check="unverified", errors=got.errors)
            reason = f"{len(got.errors)} of {self.trials} calls failed: {got.errors[0]}"
        elif correct < self.min_correct:
            details["check"] = "flag"
            reason = f"model right in {correct}/{self.trials} trials (fewer than {self.min_correct})"
        else:
            details["check"] = "pass"
            return self._verdict(item, "pass", f"model right in {correct}/{self.trials} trials", details), False
        valid = _valid(decision, item)
        if valid is not None:
            details["review"] = valid.summary()
            if valid.decision == "drop":
                return self._verdict(item, "drop", f"{valid.summary()}; {reason}", details), True
            if valid.decision == "relabel":
                item = item.replace(answer=valid.new_answer,
                                    provenance={**item.provenance, "original_answer": item.answer})
            return self._verdict(item, "pass", f"{valid.summary()}; {reason}", details), True
        if decision is not None:
            reason += "; an earlier review decision was for a different version of this item"
        if details["check"] == "unverified":
            return self._verdict(item, "unverified", reason, details), True
        status = {"flag": "flag", "drop": "drop", "review": "drop"}[self.policy]
        if self.policy == "review":
            reason = f"awaiting review: {reason}"
        return self._verdict(item, status, reason, details), True  # type: ignore[arg-type]

    def _verdict(self, item: QAItem, status: str, reason: str, details: dict[str, Any]) -> Verdict:
        mark = {"model": self.model, **self._engine(), "correct": details["correct"], "trials": self.trials,
                "status": details["check"], "review": details.get("review")}
        item = item.replace(provenance={**item.provenance, "label_check": mark})
        return Verdict(item, status, reason, details)  # type: ignore[arg-type]


    def _engine(self) -> dict[str, Any]:
        return {"engine": self.engine_used} if self.engine_used else {}


def _valid(decision: Decision | None, item: QAItem) -> Decision | None:
    """The decision if it was made on this version of the item."""
    return decision if decision is not None and decision.digest == item_digest(item) else None


@hookimpl
def register_verifiers(register: Any) -> None:
    """Register the `label-check` verifier."""
    register("label-check", LabelCheck)
