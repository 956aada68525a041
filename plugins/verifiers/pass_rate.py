"""Annotator `pass-rate`: difficulty from a model's own k-sample accuracy on each item.

The alternative to asking an LLM how hard an item is: let a model (by default the run's base model, the
policy about to be trained) answer each item ``k`` times with the evaluation prompt at ``temperature``, read
the answers with the one answer parser (``parser``: strict by default; ``lenient`` also counts the last option
letter of a reply without the tag, which is what a base model that has not learnt the format yet can give),
and bucket the pass rate:

* rate >= ``easy_at`` (default 0.8): easy;
* rate >= ``moderate_at`` (default 0.3): moderate;
* otherwise: difficult.

``model`` is any Inspect model string or a local model; left out, it is ``hf/<name>`` of the run's base model
(``ctx.base_model``, named by its folder's name). A local model (the base model, an alias such as
``tiny-random``, a HF model folder, ``hf/<label>`` with ``model_args: {model_path: DIR}``) samples through a
generation engine: ``engine`` (default: the run's engine) with ``engine_args``, ``batch_size`` items (k samples
each) per engine call; a hosted one (``openai/...``, ``anthropic/...``) through ``fleming.llm_calls``. Each item
gets ``difficulty`` and ``meta.pass_rate`` = ``{rate, k, model, parser}`` (and ``engine``, for a local model);
an item any of whose calls keeps failing keeps its difficulty and is ``unverified`` with the error. Answers are
cached (``fleming.llm_calls``, or the engine samples' cache); counts and usage go into the manifest notes under
``pass-rate``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt

from fleming import QAItem, StageContext, hookimpl
from fleming.errors import StageError
from fleming.sampling import (Trials, check_engine, client_for, engine_for, local_model, sample_answers,
                              sample_with_engine)
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
                 seed: int | None = None, engine: str | None = None, engine_args: dict[str, Any] | None = None,
                 batch_size: PositiveInt = 16, max_connections: PositiveInt = 8,
                 retries: Annotated[int, Field(ge=0)] = 3, backoff: Annotated[float, Field(ge=0)] = 1.0,
                 timeout: Annotated[float, Field(gt=0)] | None = 300.0, cache: bool = True) -> None:
        if moderate_at > easy_at:
            raise ValueError(f"moderate_at ({moderate_at}) must not exceed easy_at ({easy_at})")
        self.model = model
        self.model_args = dict(model_args or {})
        self.k = k
        self.config = {"temperature": temperature, "max_tokens": max_tokens}
        self.easy_at, self.moderate_at, self.parser, self.seed = easy_at, moderate_at, parser, seed
        check_engine(engine, engine_args)
        self.engine, self.engine_args, self.batch_size = engine, dict(engine_args or {}), batch_size
        self.calls = (max_connections, retries, backoff, timeout, cache)

    def sample(self, items: Sequence[QAItem], ctx: StageContext) -> tuple[str, dict[str, Any] | None, list[Trials]]:
        """Return the model's name, the engine it sampled with (None: a hosted model) and each item's trials."""
        model, args = (self.model, self.model_args) if self.model else base_model(ctx)
        args = {**args, **self.model_args}
        local = local_model(model, args)
        if local is None:
            client = client_for(model, args, *self.calls)
            return model, None, sample_answers(client, items, self.k, self.config, ctx, self.name, self.seed)
        choice = engine_for(ctx, self.engine, self.engine_args, f"{self.name} engine")
        trials = sample_with_engine(choice, items, self.k, **self.config, seed=self.seed, ctx=ctx, name=self.name,
                                    model=local, cache=self.calls[-1], batch_size=self.batch_size)
        return model, choice.record(), trials

    def verify(self, items: Sequence[QAItem], ctx: StageContext) -> list[Verdict]:
        """Return one verdict per item, each item carrying the difficulty its pass rate gives."""
        model, engine, trials = self.sample(items, ctx)
        shown = {"model": model, **({"engine": engine} if engine else {})}
        verdicts: list[Verdict] = []
        for item, got in zip(items, trials):
            correct = got.correct(item.answer, self.parser)
            details = {**shown, "k": self.k, "parser": self.parser, "correct": correct,
                       "answers": got.answers, "lenient": got.lenient}
            if got.errors:
                verdicts.append(Verdict(item, "unverified", f"{len(got.errors)} of {self.k} calls failed: "
                                        f"{got.errors[0]}", {**details, "errors": got.errors}))
                continue
            rate = correct / self.k
            level = bucket(rate, self.easy_at, self.moderate_at)
            marked = item.replace(difficulty=level, provenance={
                **item.provenance, "pass_rate": {"rate": rate, "k": self.k, **shown, "parser": self.parser}})
            verdicts.append(Verdict(marked, "pass", f"{level}: right in {correct}/{self.k}",
                                    {**details, "rate": rate, "difficulty": level}))
        return verdicts


@hookimpl
def register_verifiers(register: Any) -> None:
    """Register the `pass-rate` annotator."""
    register("pass-rate", PassRateAnnotator)
