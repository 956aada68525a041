"""The `trl` trainer: GRPO rounds fed to the curriculum, announced checkpoints, resume, SFT with LoRA."""
from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fleming.errors import StageError
from fleming.models import resolve_model
from fleming.protocols import TrainJob
from fleming.testing import fresh_registry, make_item
from fleming.types import Checkpoint, QAItem

FAST = dict(max_completion_length=6, batch_size=2, save_steps=1, learning_rate=1e-4)


class RecordingReward:
    """Scores a completion by its length modulo 3 and remembers what it saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str]]] = []

    def __call__(self, completions: Sequence[str], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        self.calls.append((list(completions), [it.id for it in items]))
        return [float(len(c) % 3) for c in completions]


class HalfReward:
    def __call__(self, completions: Sequence[str], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        return [None if i == 0 else 1.0 for i in range(len(completions))]


class StopAt:
    """Ends the round at step `stop` with a reason."""

    def __init__(self, stop: int | None) -> None:
        self.stop = stop
        self.seen: list[tuple[int, list[list[float]]]] = []

    def select(self, pool: Any, round: int, last: Any, ctx: Any) -> None:
        return None

    def observe(self, step: int, group_rewards: Sequence[Sequence[float]]) -> str | None:
        self.seen.append((step, [list(g) for g in group_rewards]))
        return "reward plateau" if self.stop is not None and step >= self.stop else None


@pytest.fixture
def tiny(model_cache: Path) -> str:
    return resolve_model("tiny-random").path


def _trainer(**args: Any) -> Any:
    _, registry = fresh_registry()
    return registry.get("trainers", "trl").factory(**{**FAST, **args})


def _job(tiny: str, out: Path, announced: list[Checkpoint], **kw: Any) -> TrainJob:
    items = [make_item(i, answer="AB"[i % 2]) for i in range(4)]
    base = dict(kind="grpo", model_path=tiny, items=items, output_dir=out, seed=0, stage="rl-stage1",
                rollouts=2, max_steps=3, announce=announced.append, notes={})
    return TrainJob(**{**base, **kw})


def test_grpo_feeds_the_curriculum_announces_every_checkpoint_and_counts_steps_across_rounds(
        tiny: str, tmp_path: Path) -> None:
    reward, curriculum, announced = RecordingReward(), StopAt(stop=2), []
    job = _job(tiny, tmp_path / "round-0", announced, rewards=[(reward, 1.0), (HalfReward(), 0.5)],
               curriculum=curriculum)
    ckpt = _trainer().train(job, None)
    # the curriculum stopped the round at step 2 of 3; the reason is in the notes
    assert [c.step for c in announced] == [1, 2] and ckpt == announced[-1]
    assert job.notes["stopped"] == [{"step": 2, "reason": "reward plateau"}]
    # each step's groups: the rollouts of one prompt, weighted total of both rewards (None counts 0)
    assert [s for s, _ in curriculum.seen] == [1, 2]
    for (completions, ids), (_, groups) in zip(reward.calls, curriculum.seen):
        totals = [len(c) % 3 + (0.5 if i else 0.0) for i, c in enumerate(completions)]
        assert groups == [totals[0:2], totals[2:4]]
        assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    # every checkpoint is a HF folder the evaluation loads: weights, tokenizer and chat template
    for c in announced:
        assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= \
            {p.name for p in Path(c.path).iterdir()}
    # finished: a second call trains nothing and returns the same checkpoint
    again: list[Checkpoint] = []
    assert _trainer().train(_job(tiny, tmp_path / "round-0", again, rewards=[(reward, 1.0)]), None) == ckpt
    assert again == []
    # the next round of the stage continues the step count
    nxt: list[Checkpoint] = []
    _trainer().train(_job(tiny, tmp_path / "round-1", nxt, rewards=[(reward, 1.0)], max_steps=1), None)
    assert [c.step for c in nxt] == [3] and Path(nxt[0].path).name == "checkpoint-1"


def test_a_killed_round_resumes_from_its_newest_checkpoint(tiny: str, tmp_path: Path) -> None:
    first: list[Checkpoint] = []
    out = tmp_path / "round-0"
    _trainer().train(_job(tiny, out, first, rewards=[(RecordingReward(), 1.0)], max_steps=2), None)
    assert [c.step for c in first] == [1, 2]
    # simulate a kill after step 1 was saved
    (out / "fleming-trl.json").unlink()
    shutil.rmtree(out / "checkpoint-2")
    job = _job(tiny, out, second := [], rewards=[(RecordingReward(), 1.0)], max_steps=2)
    _trainer().train(job, None)
    assert [c.step for c in second] == [2]  # step 1 was not redone
    assert job.notes["trl"][0]["resumed_from"] == str(out / "checkpoint-1")
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2


class StageLog:
    """Collects the lines a trainer writes to the stage log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


@pytest.mark.parametrize("damage", ["no trainer_state.json", "partial weights", "no marker"])
def test_a_checkpoint_cut_short_while_saving_is_removed_and_the_round_resumes_before_it(
        tiny: str, tmp_path: Path, damage: str) -> None:
    out = tmp_path / "round-0"
    _trainer().train(_job(tiny, out, [], rewards=[(RecordingReward(), 1.0)], max_steps=2), None)
    (out / "fleming-trl.json").unlink()
    cut = out / "checkpoint-2"
    if damage == "no trainer_state.json":  # what an interrupt inside TRL's save leaves
        (cut / "trainer_state.json").unlink()
    elif damage == "partial weights":
        (cut / "model.safetensors").unlink()
        (cut / "trainer_state.json").write_text('{"global_st')
    else:
        (cut / "fleming-saved.json").unlink()
    log, again = StageLog(), []
    job = _job(tiny, out, again, rewards=[(RecordingReward(), 1.0)], max_steps=2)
    ckpt = _trainer().train(job, log)
    assert [c.step for c in again] == [2] and ckpt.step == 2
    assert job.notes["trl"][0]["resumed_from"] == str(out / "checkpoint-1")
    assert len(log.lines) == 1 and "removed incomplete checkpoint-2" in log.lines[0]
    assert log.lines[0].endswith("resuming from checkpoint-1")
    assert json.loads((cut / "trainer_state.json").read_text())["global_step"] == 2


def test_with_no_complete_checkpoint_the_round_starts_over(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "round-0"
    (out / "checkpoint-1").mkdir(parents=True)
    (out / "checkpoint-1" / "config.json").write_text("{}")  # the save was cut off after the config
    log, announced = StageLog(), []
    job = _job(tiny, out, announced, rewards=[(RecordingReward(), 1.0)], max_steps=1)
    _trainer().train(job, log)
    assert [c.step for c in announced] == [1] and job.notes["trl"][0]["resumed_from"] is None
    assert log.lines == ["removed incomplete checkpoint-1 (no trainer_state.json; interrupted while saving); "
                         "starting the round over"]
    assert (out / "checkpoint-1" / "model.safetensors").exists()


def _prompts_seen(tiny: str, out: Path, ordered: bool) -> list[str]:
    reward = RecordingReward()
    items = [make_item(i, answer="AB"[i % 2]) for i in (5, 2, 4, 0, 3, 1)]
    job = _job(tiny, out, [], rewards=[(reward, 1.0)], items=items, max_steps=3, ordered=ordered)
    _trainer(save_steps=10).train(job, None)
    return [i for _, ids in reward.calls for i in ids[::2]]  # one id per rollout group


def test_an_ordered_round_trains_on_the_selection_in_its_order(tiny: str, tmp_path: Path) -> None:
    ordered = _prompts_seen(tiny, tmp_path / "a", ordered=True)
    assert ordered == [f"fixture-{i}" for i in (5, 2, 4, 0, 3, 1)]
    shuffled = _prompts_seen(tiny, tmp_path / "b", ordered=False)
    assert sorted(shuffled) == sorted(ordered) and shuffled != ordered


def test_sft_with_lora_trains_on_rationales_and_announces_merged_weights(tiny: str, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    items = [make_item(i).replace(rationale=f"Because {i}. <answer>B</answer>") for i in range(4)]
    announced: list[Checkpoint] = []
    job = TrainJob(kind="sft", model_path=tiny, items=items, output_dir=tmp_path, seed=0, stage="cold_start",
                   max_steps=1, announce=announced.append)
    ckpt = _trainer(lora=True, lora_r=4, lora_alpha=8, learning_rate=0.05).train(job, None)
    assert [c.step for c in announced] == [1] and Path(ckpt.path).name == "merged"
    trained = AutoModelForCausalLM.from_pretrained(ckpt.path)  # plain weights: no peft needed to evaluate
    base = AutoModelForCausalLM.from_pretrained(tiny)
    assert not torch.equal(trained.model.layers[0].self_attn.q_proj.weight, base.model.layers[0].self_attn.q_proj.weight)
    assert AutoTokenizer.from_pretrained(ckpt.path).chat_template


def test_train_layers_updates_only_the_top_blocks(tiny: str, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    items = [make_item(i).replace(rationale=f"Because {i}. <answer>B</answer>") for i in range(4)]
    job = TrainJob(kind="sft", model_path=tiny, items=items, output_dir=tmp_path, seed=0, stage="cold_start",
                   max_steps=1, announce=lambda c: None)
    ckpt = _trainer(train_layers=1, learning_rate=0.05).train(job, None)
    trained = AutoModelForCausalLM.from_pretrained(ckpt.path)
    base = AutoModelForCausalLM.from_pretrained(tiny)
    changed = [name for name, p in trained.named_parameters()
               if not torch.equal(p, dict(base.named_parameters())[name])]
    top = f"model.layers.{base.config.num_hidden_layers - 1}."
    assert changed and all(n.startswith(top) or n.startswith("model.norm.") for n in changed)
    assert any(n.startswith(top) for n in changed)
    with pytest.raises(StageError, match="train_layers is 99 but the model has"):
        _trainer(train_layers=99).train(
            TrainJob(kind="sft", model_path=tiny, items=items, output_dir=tmp_path / "b", seed=0,
                     stage="cold_start", max_steps=1), None)


def test_config_is_the_papers_grpo_and_cpu_safe(tiny: str, tmp_path: Path) -> None:
    from fleming.plugins.trainers.trl._run import grpo_config, sft_config

    job = _job(tiny, tmp_path, [], rewards=[(RecordingReward(), 1.0), (HalfReward(), 0.5)], rollouts=4)
    trainer = _trainer(kl=0.04, temperature=0.7)
    cfg = grpo_config(trainer.args, job)
    assert cfg.scale_rewards == "none" and cfg.beta == 0.04 and cfg.num_generations == 4
    assert cfg.reward_weights == [1.0, 0.5] and cfg.temperature == 0.7
    assert cfg.per_device_train_batch_size == 2 * 4 and cfg.max_steps == 3
    assert grpo_config(_trainer().args, job).beta == 0.0
    sft = TrainJob(kind="sft", model_path=tiny, items=job.items, output_dir=tmp_path, seed=0, stage="cold_start")
    assert sft_config(trainer.args, sft).train_sampling_strategy == "random"
    sft.ordered = True
    assert sft_config(trainer.args, sft).train_sampling_strategy == "sequential"
    import torch

    if not torch.cuda.is_available():
        assert cfg.use_cpu and not cfg.bf16 and not cfg.gradient_checkpointing


def test_bad_jobs_are_one_line_errors(tiny: str, tmp_path: Path) -> None:
    sft = TrainJob(kind="sft", model_path=tiny, items=[make_item(0), make_item(1).replace(rationale="x")],
                   output_dir=tmp_path / "a", seed=0, stage="cold_start")
    with pytest.raises(StageError, match="1 cold-start item.*'fixture-0'"):
        _trainer().train(sft, None)
    with pytest.raises(StageError, match="at least 2 rollouts"):
        _trainer().train(_job(tiny, tmp_path / "b", [], rewards=[(RecordingReward(), 1.0)], rollouts=1), None)
    with pytest.raises(StageError, match="at least one reward"):
        _trainer().train(_job(tiny, tmp_path / "c", []), None)


def test_a_misspelt_arg_names_the_field() -> None:
    from fleming.components import validate_args
    from fleming.errors import RecipeError

    _, registry = fresh_registry()
    with pytest.raises(RecipeError, match="rl.trainer.args.*learning_rat"):
        validate_args(registry.get("trainers", "trl"), {"learning_rat": 1e-5}, "rl.trainer", Path("."))
    with pytest.raises(RecipeError, match="lora or train_layers"):
        validate_args(registry.get("trainers", "trl"), {"lora": True, "train_layers": 2}, "rl.trainer", Path("."))


def test_train_tiny_recipe_validates() -> None:
    from fleming.recipe import load_recipe

    _, registry = fresh_registry()
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "train-tiny.yaml", registry).recipe
    assert recipe.model == "tiny-random" and recipe.cold_start.trainer.plugin == "trl"
    assert [s.curriculum.plugin for s in recipe.rl.stages] == ["difficulty-mix", "hard-mining"]
    assert recipe.eval is not None and recipe.eval.checkpoints == "all"
