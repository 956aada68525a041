"""GRPO rollouts through a generation engine (TRL's ``rollout_func``) instead of TRL's own HF ``generate``.

TRL hands over the step's prompts, each repeated ``num_generations`` times in a row; each run of one prompt is
sampled as one engine request with ``n`` completions, at TRL's temperature, top-k, top-p and completion budget.
The engine gets the policy's weights whenever the policy has moved since its last sync (once per generation
batch: TRL's ``steps_per_generation`` spaces them out): the policy is saved (LoRA merged) to a scratch folder
in the stage's folder and loaded by the engine; the time spent doing
so is counted in ``sync_s``, the sampling in ``generate_s``, both logged with the step's metrics. Token ids come
from the engine's optional ``generate_ids`` when it has one (exact), else by tokenizing its texts (an EOS
appended to a completion that ended before the budget).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from fleming.engines import EngineChoice, open_engine


class EngineRollouts:
    """A ``rollout_func`` for TRL's GRPOTrainer that samples with a fleming engine (see the module docstring)."""

    def __init__(self, choice: EngineChoice, scratch: Path, seed: int) -> None:
        self.choice, self.scratch, self.seed = choice, scratch, seed
        self.engine: Any = None
        self.synced_step: int | None = None
        self.calls = 0
        self.sync_s = 0.0
        self.generate_s = 0.0
        self.syncs = 0

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        step = trainer.state.global_step
        if self.synced_step != step:
            self._sync(trainer, step)
        tok = trainer.processing_class
        runs = _runs(prompts)
        started = time.perf_counter()
        a = trainer.args
        width = max(count for _, count in runs)
        kwargs = dict(n=width, temperature=a.temperature, max_tokens=a.max_completion_length,
                      seed=self.seed + 7919 * self.calls)
        unique = [p for p, _ in runs]
        prompt_ids = [_prompt_ids(tok, p) for p in unique]
        if hasattr(self.engine, "generate_ids"):
            groups = self.engine.generate_ids(prompt_ids, top_k=a.top_k, top_p=a.top_p, **kwargs)
        else:
            texts = self.engine.generate(unique, **kwargs)
            groups = [[_completion_ids(tok, t, a.max_completion_length) for t in group] for group in texts]
        self.generate_s += time.perf_counter() - started
        self.calls += 1
        out_prompts: list[list[int]] = []
        out_completions: list[list[int]] = []
        for (_, count), ids, group in zip(runs, prompt_ids, groups):
            out_prompts += [ids] * count
            out_completions += [list(c) for c in group[:count]]
        return {"prompt_ids": out_prompts, "completion_ids": out_completions, "logprobs": None}

    def _sync(self, trainer: Any, step: int) -> None:
        """Save the policy (LoRA merged) and load it into the engine; the old scratch folder goes."""
        started = time.perf_counter()
        model = trainer.accelerator.unwrap_model(trainer.model)
        folder = self.scratch / f"step-{step}"
        shutil.rmtree(folder, ignore_errors=True)
        if hasattr(model, "merge_and_unload"):  # a LoRA policy: the engine gets the merged weights
            import copy

            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(folder, safe_serialization=True)
        trainer.processing_class.save_pretrained(folder)
        if self.engine is None:
            self.engine = open_engine(self.choice, str(folder), where="trainer rollout_engine")
        else:
            self.engine.load(str(folder))
        for old in self.scratch.glob("step-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        self.synced_step = step
        self.syncs += 1
        self.sync_s += time.perf_counter() - started

    def stats(self) -> dict[str, Any]:
        """What the rollouts cost, as the stage's notes record it."""
        return {"engine": self.choice.record(), "calls": self.calls, "syncs": self.syncs,
                "sync_s": round(self.sync_s, 2), "generate_s": round(self.generate_s, 2)}

    def close(self) -> None:
        """Close the engine (its native threads end with the round) and remove the scratch weights."""
        closing = getattr(self.engine, "close", None)
        if callable(closing):
            closing()
        self.engine = None
        shutil.rmtree(self.scratch, ignore_errors=True)


def _runs(prompts: list[Any]) -> list[tuple[Any, int]]:
    """Consecutive runs of one prompt, as (prompt, count)."""
    runs: list[tuple[Any, int]] = []
    for p in prompts:
        if runs and runs[-1][0] == p:
            runs[-1] = (p, runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    return runs


def _prompt_ids(tok: Any, prompt: Any) -> list[int]:
    """The prompt's token ids as TRL poses it (chat template with the generation prompt, or the plain text)."""
    if isinstance(prompt, list):
        text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        return list(tok(text, add_special_tokens=False)["input_ids"])
    return list(tok(prompt)["input_ids"])


def _completion_ids(tok: Any, text: str, budget: int) -> list[int]:
    """A completion's ids from its text, with EOS when it ended before the budget."""
    ids = list(tok(text, add_special_tokens=False)["input_ids"])[:budget]
    if len(ids) < budget and tok.eos_token_id is not None:
        ids.append(tok.eos_token_id)
    return ids
