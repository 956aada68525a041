"""The `openrlhf` trainer: the exported reward file through OpenRLHF's own loader, the commands through its
own argument parser, dry runs, and announcing its HF checkpoints."""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fleming.errors import MissingDependencyError, StageError
from fleming.protocols import RewardSpec, TrainJob
from fleming.testing import fresh_registry, make_item, stage_ctx
from fleming.types import Checkpoint

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openrlhf") is None, reason="openrlhf is not installed")

SPECS = (RewardSpec("answer", {}, 1.0), RewardSpec("format", {}, 0.5))


def _trainer(**args: Any) -> Any:
    _, registry = fresh_registry()
    return registry.get("trainers", "openrlhf").factory(**args)


@pytest.fixture
def agent_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """OpenRLHF's own agent module (its reward-file loader); its package __init__ needs GPU-side extras,
    so the package is entered by path."""
    spec = importlib.util.find_spec("openrlhf")
    pkg = types.ModuleType("openrlhf.utils")
    pkg.__path__ = [str(Path(list(spec.submodule_search_locations)[0]) / "utils")]
    monkeypatch.setitem(sys.modules, "openrlhf.utils", pkg)
    for name in ("openrlhf.utils.agent", "openrlhf.utils.logging_utils"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module("openrlhf.utils.agent")


class _Tok:
    """Tokenizer stand-in: one 'token' per character."""

    def __call__(self, text: str, add_special_tokens: bool = False, return_tensors: str = "pt") -> Any:
        import torch

        return {"input_ids": torch.tensor([[ord(c) for c in text]])}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(map(chr, ids))


class _Engine:
    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def generate(self, prompt_ids: list[int], params: Any, multi_modal_data: Any = None) -> Any:
        out = SimpleNamespace(token_ids=[ord(c) for c in self.reply], finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[out])


def test_exported_reward_file_scores_through_openrlhfs_loader(tmp_path: Path, agent_module: Any) -> None:
    from fleming.plugins.trainers.openrlhf._export import export_grpo

    items = [make_item(0, answer="B"), make_item(1, answer="C")]
    paths = export_grpo(tmp_path / "export", items, SPECS)
    rows = [json.loads(line) for line in paths["prompts"].read_text().splitlines()]
    assert rows[0]["input"][-1]["role"] == "user" and rows[0]["id"] == "fixture-0"
    executor = agent_module.SingleTurnAgentExecutor(remote_rm_url=str(paths["reward_func"]))
    assert executor.reward_func is not None
    params = SimpleNamespace(max_tokens=64, logprobs=None)

    def run(reply: str, label: str) -> dict[str, Any]:
        return asyncio.run(executor.execute("PROMPT:", label, params, 4096, _Tok(), _Engine(reply)))

    right = run("It is beta. <answer>B</answer>", "fixture-0")
    assert float(right["reward"]) == pytest.approx(1.5) and float(right["scores"]) == pytest.approx(1.0)
    assert float(right["extra_logs"]["reward/answer"]) == 1.0
    wrong = run("It is beta. <answer>B</answer>", "fixture-1")  # well formed, wrong letter
    assert float(wrong["reward"]) == pytest.approx(0.5)
    # an unknown label fails inside the file: logged, scored 0, flagged (OpenRLHF would drop a raised error)
    broken = run("<answer>B</answer>", "no-such-item")
    assert float(broken["reward"]) == 0.0 and float(broken["extra_logs"]["fleming_error"]) == 1.0


def _job(tmp_path: Path, kind: str = "grpo", **kw: Any) -> TrainJob:
    items = [make_item(i).replace(rationale="Because. <answer>B</answer>") for i in range(3)]
    return TrainJob(kind=kind, model_path="org/base-7b", items=items, output_dir=tmp_path / "round-0", seed=3,
                    stage="rl-stage1", rollouts=8, **{"reward_specs": SPECS if kind == "grpo" else (), **kw})


def test_commands_pass_openrlhfs_own_parser(tmp_path: Path) -> None:
    from fleming.plugins.trainers.openrlhf._cli import parse_openrlhf_args

    ctx = stage_ctx(tmp_path / "stage", "rl-stage1")
    module, argv = _trainer(kl=0.01).command(_job(tmp_path), ctx)
    args = parse_openrlhf_args(module, argv)
    assert args.algo.advantage.estimator == "dr_grpo" and args.rollout.n_samples_per_prompt == 8
    assert args.reward.remote_url == [str(tmp_path / "round-0" / "export" / "reward_func.py")]
    assert args.data.label_key == "id" and args.data.apply_chat_template and args.ckpt.save_hf
    assert args.algo.kl.use_loss and args.algo.kl.init_coef == 0.01 and args.train.seed == 3
    specs = json.loads((tmp_path / "round-0" / "export" / "rewards.json").read_text())
    assert [(s["plugin"], s["weight"]) for s in specs] == [("answer", 1.0), ("format", 0.5)]
    with pytest.raises(StageError, match="rl-stage1: trainer 'openrlhf' needs the job's reward specs"):
        _trainer().command(_job(tmp_path / "b", reward_specs=()), ctx)
    sft_module, sft_argv = _trainer(estimator="group_norm").command(_job(tmp_path, kind="sft"), ctx)
    sft = parse_openrlhf_args(sft_module, sft_argv)
    assert sft.data.output_key == "output" and sft.model.model_name_or_path == "org/base-7b"
    # OpenRLHF's own checks run too: a group baseline with one sample per prompt is refused
    with pytest.raises(StageError, match="n_samples_per_prompt > 1"):
        parse_openrlhf_args(module, [*argv, "--rollout.n_samples_per_prompt", "1"])
    with pytest.raises(StageError, match="unrecognized arguments: --actor.pretrain"):
        parse_openrlhf_args(module, [*argv, "--actor.pretrain", "x"])


def test_dry_run_writes_the_command_and_trains_nothing(tmp_path: Path) -> None:
    job, ctx = _job(tmp_path, notes={}), stage_ctx(tmp_path / "stage", "rl-stage1")
    with pytest.raises(StageError, match="dry run: OpenRLHF command written to .*command.sh"):
        _trainer(dry_run=True).train(job, ctx)
    command = json.loads((tmp_path / "round-0" / "export" / "command.json").read_text())
    assert command[:3] == ["ray", "job", "submit"] and "openrlhf.cli.train_ppo_ray" in command
    # OpenRLHF shuffles its prompts: an ordered selection is refused, not trained out of order
    with pytest.raises(StageError, match="rl-stage1: trainer 'openrlhf' cannot keep the curriculum's order"):
        _trainer(dry_run=True).train(_job(tmp_path / "ordered", notes={}, ordered=True), ctx)
    if importlib.util.find_spec("ray") is None:
        with pytest.raises(MissingDependencyError, match=r"fleming-med\[openrlhf\]"):
            _trainer().train(job, ctx)


def test_every_hf_checkpoint_is_announced_and_a_finished_round_is_kept(tmp_path: Path) -> None:
    from fleming.plugins.trainers.openrlhf.trainer import announce_checkpoints

    out = tmp_path / "round-0"
    for step in (20, 5, 40):
        (out / f"global_step{step}_hf").mkdir(parents=True)
    (out / "global_step40").mkdir()  # DeepSpeed state, not a HF folder
    seen: list[Checkpoint] = []
    job = _job(tmp_path, announce=seen.append)
    last = announce_checkpoints(job, out)
    assert [c.step for c in seen] == [5, 20, 40] and last.path == out / "global_step40_hf"
    finished = _trainer().train(job, stage_ctx(tmp_path / "stage", "rl-stage1"))
    assert finished == last  # finished: nothing is launched again
