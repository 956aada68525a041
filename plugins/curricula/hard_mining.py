"""Curriculum `hard-mining` (the paper's RL stage 2): adaptive hard-sample mining, M rounds.

Each round the newest policy (the last round's checkpoint; in round 0 the model this stage starts from)
answers the pool ``k`` times with temperature sampling (``temperature``, ``max_tokens``; the evaluation's
system and question prompts, so the policy sees what it is trained and scored on). Each item's pass rate is
the share of the k answers the one strict parser reads as correct. Items with pass rate <= ``tau`` (default
0.25: failed at least three times in four) are the hard ones; all of them are kept, plus already-solved items
(pass rate > tau) in the ``right_wrong`` ratio (default 1 : 2, the paper's), as many as the pool has.
``pool_limit`` evaluates a seeded random sample of the pool instead of all of it.

Rollouts per prompt rise each round: round r uses the stage's ``rollouts`` × ``rollouts_growth`` ** r, at most
``max_rollouts``. The stage ends after ``rounds`` rounds, or earlier when the policy fails nothing.

The policy samples through a generation engine (see ``fleming.protocols.Engine``): ``engine`` with
``engine_args`` when set, else the run's engine (``ctx.engine``); ``fleming run --engine`` overrides both
(``ctx.engine_for``). It answers the pool in batches of ``batch_size`` items, k answers per item, the evaluation's
prompt (``fleming.formats.chat_messages``), parsed by the same ``fleming.answers.extract_answer``. The first
batch is sampled with the round's seed (``seed + round``), each later batch with a seed derived from it.
Per-item pass rates are saved under the stage folder (``mining/round-<r>.json``), so a resumed round does
not evaluate again. Mined-set sizes, the pass-rate histogram and the rollouts go to the round's
``Selection.reason`` and ``notes["hard-mining"]``, with the concrete engine used and its args (the saved rates
name it too, so rates sampled with another engine are not reused); why the stage ended goes to ``end_reason``.
"""
from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, PositiveInt, ValidationInfo, field_validator

from fleming import Checkpoint, QAItem, StageContext, build_component, hookimpl
from fleming.answers import extract_answer
from fleming.context import EngineChoice
from fleming.errors import FlemingError, RecipeProblems, StageError, UnknownComponentError
from fleming.formats import chat_messages
from fleming.io import atomic_write_json
from fleming.protocols import Selection


class HardMiningArgs(BaseModel):
    """The `hard-mining` curriculum's recipe args."""

    k: PositiveInt = Field(default=4, description="samples per pool item to estimate its pass rate")
    tau: float = Field(default=0.25, ge=0, lt=1, description="an item with pass rate <= tau is hard")
    right_wrong: tuple[PositiveInt, PositiveInt] = Field(default=(1, 2),
                                                         description="solved : hard items in a round")
    rounds: PositiveInt = Field(default=2, description="mining rounds (M)")
    rollouts_growth: float = Field(default=2.0, ge=1, description="rollouts multiply by this each round")
    max_rollouts: PositiveInt = Field(default=32, description="rollouts per prompt at most")
    pool_limit: PositiveInt | None = Field(default=None, description="evaluate at most this many pool items")
    max_tokens: PositiveInt = Field(default=512, description="tokens per sampled answer")
    temperature: float = Field(default=1.0, gt=0, description="sampling temperature")
    batch_size: PositiveInt = Field(default=8, description="prompts per generation batch")
    engine: str | None = Field(default=None, description="the generation engine the policy samples with "
                                                         "(None: the run's engine; auto: the first that can run)")
    engine_args: dict[str, Any] = Field(default_factory=dict, description="the engine's args (with engine only)")

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, name: str | None) -> str | None:
        if name is None or name == "auto":
            return name
        try:
            build_component("engines", name)
        except UnknownComponentError as exc:
            raise ValueError(str(exc)) from None
        except FlemingError:
            pass  # an engine that needs args is checked with engine_args
        return name

    @field_validator("engine_args")
    @classmethod
    def _engine_args_fit(cls, args: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "engine" not in info.data:  # the engine itself was refused
            return args
        name = info.data["engine"]
        if args and name is None:
            raise ValueError("engine args need a named engine (set engine: hf, vllm, ...); without one the run's "
                             "engine samples, with its own args")
        if args and name == "auto":
            raise ValueError("engine auto takes no args (name the engine to set its args)")
        if name in (None, "auto"):
            return args
        try:
            build_component("engines", name, args, where="engine_args")
        except RecipeProblems as exc:
            raise ValueError("; ".join(p.removeprefix("engine_args.args.") for p in exc.problems)) from None
        except FlemingError as exc:
            raise ValueError(str(exc)) from None
        return args


class HardMining:
    """Mine the items the current policy keeps failing (see the module docstring)."""

    Args = HardMiningArgs

    def __init__(self, **kwargs: Any) -> None:
        self.args = HardMiningArgs(**kwargs)
        self.end_reason: str | None = None
        self.engine: EngineChoice | None = None  # the concrete engine of the current round (set by `select`)

    def select(self, pool: Sequence[QAItem], round: int, last: Checkpoint | None,
               ctx: StageContext) -> Selection | None:
        """Evaluate the pool with the newest policy and return the hard items plus solved ones."""
        notes = ctx.notes.setdefault("hard-mining", {"rounds": []})
        if round >= self.args.rounds:
            self.end_reason = f"{self.args.rounds} mining rounds done"
            return None
        seed = ctx.seed
        candidates = list(pool)
        if self.args.pool_limit is not None and len(candidates) > self.args.pool_limit:
            candidates = random.Random(f"{seed}/pool/{round}").sample(candidates, self.args.pool_limit)
        model = str(last.path) if last is not None else start_model(ctx)
        self.engine = engine = self.engine_choice(ctx)
        rates = self._rates(candidates, model, seed + round, Path(ctx.dir) / "mining" / f"round-{round}.json", ctx,
                            engine)
        chosen, info = self.mix(candidates, rates, random.Random(f"{seed}/mix/{round}"))
        base = ctx.rollouts or 8
        rollouts = min(self.args.max_rollouts, max(1, round_half(base * self.args.rollouts_growth ** round)))
        info.update(round=round, model=model, engine=engine.record(), evaluated=len(candidates),
                    rollouts=rollouts)
        notes["rounds"].append(info)
        if not info["hard"]:
            self.end_reason = f"the policy fails nothing (no pass rate <= {self.args.tau})"
            return None
        hist = ", ".join(f"{k}: {v}" for k, v in info["pass_rate_histogram"].items())
        return Selection(items=chosen, rollouts=rollouts,
                         stats={"mined": info["hard"], "solved_kept": info["solved_kept"],
                                "evaluated": len(candidates), "pool": len(pool)},
                         reason=f"hard mining round {round}: {info['hard']} hard (pass rate <= {self.args.tau} "
                                f"over k={self.args.k}) + {info['solved_kept']} solved of {len(candidates)} "
                                f"evaluated; pass rates {{{hist}}}; rollouts {rollouts}")

    def observe(self, step: int, group_rewards: Sequence[Sequence[float]]) -> str | None:
        """A mining round runs for the trainer's steps (the stage's ``max_steps``): never ends it early."""
        return None

    def _rates(self, items: Sequence[QAItem], model: str, seed: int, cache: Path, ctx: StageContext,
               engine: EngineChoice) -> dict[str, float]:
        if cache.exists():
            saved = json.loads(cache.read_text(encoding="utf-8"))
            if (saved.get("model") == model and saved.get("engine") == engine.record()
                    and set(saved["rates"]) >= {i.id for i in items}):
                return saved["rates"]
        rates = self.pass_rates(model, items, seed, ctx)
        atomic_write_json(cache, {"model": model, "engine": engine.record(), "k": self.args.k, "rates": rates})
        return rates

    def engine_choice(self, ctx: StageContext) -> EngineChoice:
        """The concrete engine the policy samples with (``name``, ``args``): ``engine`` with ``engine_args``, else
        the run's engine; ``fleming run --engine`` overrides both."""
        return ctx.engine_for(self.args.engine, self.args.engine_args, where="hard-mining engine")

    def mix(self, items: Sequence[QAItem], rates: dict[str, float],
            rng: random.Random) -> tuple[list[QAItem], dict[str, Any]]:
        """Return the round's items (every hard one, solved ones in the right:wrong ratio) and the numbers."""
        hard = [i for i in items if rates[i.id] <= self.args.tau + 1e-9]
        solved = [i for i in items if rates[i.id] > self.args.tau + 1e-9]
        right, wrong = self.args.right_wrong
        n_right = min(len(solved), len(hard) * right // wrong)
        kept = rng.sample(solved, n_right)
        chosen = hard + kept
        rng.shuffle(chosen)
        hist: dict[str, int] = {}
        for i in items:
            key = f"{rates[i.id]:.2f}"
            hist[key] = hist.get(key, 0) + 1
        return chosen, {"hard": len(hard), "solved": len(solved), "solved_kept": n_right,
                        "pass_rate_histogram": dict(sorted(hist.items()))}

    def pass_rates(self, model: str, items: Sequence[QAItem], seed: int, ctx: StageContext) -> dict[str, float]:
        """Return each item's share of k sampled answers that the strict parser reads as correct, sampled with
        the round's engine (``self.engine``; outside a round, `engine_choice`)."""
        a = self.args
        choice = self.engine or self.engine_choice(ctx)
        engine = build_component("engines", choice.name, dict(choice.args), where=f"{ctx.stage}: hard-mining engine")
        engine.load(model)
        rates: dict[str, float] = {}
        batches = [items[i:i + a.batch_size] for i in range(0, len(items), a.batch_size)]
        progress = getattr(ctx, "progress", None)
        shown = progress(batches, description=f"policy answers (k={a.k})") if progress else batches
        for b, batch in enumerate(shown):
            answers = engine.generate([chat_messages(i) for i in batch], n=a.k, temperature=a.temperature,
                                      max_tokens=a.max_tokens, seed=batch_seed(seed, b))
            if len(answers) != len(batch) or any(len(got) != a.k for got in answers):
                raise StageError(f"{ctx.stage}: engine '{choice.name}' returned {[len(g) for g in answers]} answers "
                                 f"for {len(batch)} prompts (expected {a.k} each)")
            for item, got in zip(batch, answers):
                right = sum(extract_answer(text, list(item.options)) == item.answer for text in got)
                rates[item.id] = right / a.k
        return rates


def batch_seed(seed: int, batch: int) -> int:
    """Return the seed of a pool batch: `seed` for the first, one derived from it for each later batch."""
    return seed if batch == 0 else random.Random(f"{seed}/batch/{batch}").randrange(2 ** 31)


def round_half(x: float) -> int:
    """Return x rounded to the nearest integer, halves up."""
    return int(x + 0.5)


def start_model(ctx: StageContext) -> str:
    """Return the model the stage starts from."""
    if ctx.start_model is None:
        raise StageError(f"{ctx.stage}: hard-mining needs the model the stage starts from (ctx.start_model)")
    return ctx.start_model


@hookimpl
def register_curricula(register: Any) -> None:
    """Register the `hard-mining` curriculum."""
    register("hard-mining", HardMining)
