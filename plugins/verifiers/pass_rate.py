"""Annotator `pass-rate`: difficulty from a model's own k-sample accuracy on each item.

The alternative to asking an LLM how hard an item is: let a model (by default the run's base model, the
policy about to be trained) answer each item ``k`` times with the evaluation prompt at ``temperature``, read
the answers with the one answer parser (``parser``: strict by default; ``lenient`` also counts the last option
letter of a reply without the tag, which is what a base model that has not learnt the format yet can give),
and bucket the pass rate:

* rate >= ``easy_at`` (default 0.8): easy;
* rate >= ``moderate_at`` (default 0.3): moderate;
* otherwise: difficult.

``model`` is any Inspect model string; left out, it is ``hf/<name>`` of the run's base model
(``ctx.base_model``, named by its folder's name). Each item gets ``difficulty`` and ``meta.pass_rate`` =
``{rate, k, model, parser}``; an item any of whose calls keeps failing keeps its difficulty and is
``unverified`` with the error. Calls are cached (``fleming.llm_calls``); usage goes into the manifest notes
under ``pass-rate``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt

from fleming import QAItem, StageContext, hookimpl
from fleming.errors import StageError
from fleming.sampling import client_for, sample_answers
from fleming.types import Verdict

Rate = Annotated[float, Field(ge=0, le=1)]


def bucket(rate: float, easy_at: float, moderate_at: float) -> str:
    """Return the difficulty of a pass rate."""
    return "easy" if rate >= easy_at else "moderate" if rate >= moderate_at else "difficult"


def base_model(ctx: StageContext) -> tuple[str, dict[str, Any]]:
    """Return the Inspect name and model args of the run's base model (``hf/<folder name>`` + its path)."""
    if ctx.base_model is None:
        raise StageError(f"{ctx.stage}: pass-rate: no model given and the run's base model is unknown; "
                         "set data.annotate[].args.model")
    return f"hf/{PurePath(ctx.base_model).name or 'base'}", {"model_path": ctx.base_model}


class PassRateAnnotator:
    """Set each item's difficulty from a model's k-sample pass rate (see the module docstring)."""

    name = "pass-rate"

    def __init__(self, model: str | None = None, model_args: dict[str, Any] | None = None, k: PositiveInt = 4,
                 temperature: Annotated[float, Field(gt=0)] = 1.0, max_tokens: PositiveInt = 512,
                 easy_at: Rate = 0.8, moderate_at: Rate = 0.3, parser: Literal["strict", "lenient"] = "strict",
                 seed: int | None = None,
                 max_connections: PositiveInt = 8, retries: Annotated[int, Field(ge=0)] = 3,
                 backoff: Annotated[float, Field(ge=0)] = 1.0,
                 timeout: Annotated[float, Field(gt=0)] | None = 300.0, cache: bool = True) -> None:
        if moderate_at > easy_at:
            raise ValueError(f"moderate_at ({moderate_at}) must not exceed easy_at ({easy_at})")
        self.model = model
        self.model_args = dict(model_args or {})
        self.k = k
        self.config = {"temperature": temperature, "max_tokens": max_tokens}
        self.easy_at, self.moderate_at, self.parser, self.seed = easy_at, moderate_at, parser, seed
        self.calls = (max_connections, retries, backoff, timeout, cache)

    def verify(self, items: Sequence[QAItem], ctx: StageContext) -> list[Verdict]:
        """Return one verdict per item, each item carrying the difficulty its pass rate gives."""
        model, args = (self.model, self.model_args) if self.model else base_model(ctx)
        client = client_for(model, {**args, **self.model_args}, *self.calls)
        verdicts: list[Verdict] = []
        for item, got in zip(items, sample_answers(client, items, self.k, self.config, ctx, self.name, self.seed)):
            correct = got.correct(item.answer, self.parser)
            details = {"model": model, "k": self.k, "parser": self.parser, "correct": correct,
                       "answers": got.answers, "lenient": got.lenient}
            if got.errors:
                verdicts.append(Verdict(item, "unverified", f"{len(got.errors)} of {self.k} calls failed: "
                                        f"{got.errors[0]}", {**details, "errors": got.errors}))
                continue
            rate = correct / self.k
            level = bucket(rate, self.easy_at, self.moderate_at)
            marked = item.replace(difficulty=level, provenance={
                **item.provenance, "pass_rate": {"rate": rate, "k": self.k, "model": model, "parser": self.parser}})
            verdicts.append(Verdict(marked, "pass", f"{level}: right in {correct}/{self.k}",
                                    {**details, "rate": rate, "difficulty": level}))
        return verdicts


@hookimpl
def register_verifiers(register: Any) -> None:
    """Register the `pass-rate` annotator."""
    register("pass-rate", PassRateAnnotator)
