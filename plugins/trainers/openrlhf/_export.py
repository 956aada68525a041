"""What the `openrlhf` trainer hands OpenRLHF: the prompt set, the reward file, and the command lines.

Export folder: ``prompts.jsonl`` (``fleming.formats.openrlhf_record``: chat ``input``, ``id`` used as the
label), ``items.jsonl`` (the same items in the uniform schema), ``rewards.json`` (the job's ``reward_specs``:
plugin, validated args, weight) and ``reward_func.py`` (a copy of ``_reward.py`` beside this module).
Commands use the dotted flags of OpenRLHF 0.11 (``openrlhf.cli.train_ppo_ray`` / ``openrlhf.cli.train_sft``).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from fleming.errors import StageError
from fleming.formats import openrlhf_record
from fleming.io import atomic_write_json, atomic_write_text
from fleming.items import jsonl_text
from fleming.protocols import RewardSpec
from fleming.plugins.trainers.openrlhf._config import PPO, SFT, OpenRlhfArgs
from fleming.types import QAItem

REWARD_FILE = "reward_func.py"
REWARD_SOURCE = Path(__file__).with_name("_reward.py")


def export_grpo(folder: Path, items: Sequence[QAItem], specs: Sequence[RewardSpec]) -> dict[str, Path]:
    """Write the prompt set and the reward file for one GRPO round; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"prompts": folder / "prompts.jsonl", "items": folder / "items.jsonl",
             "rewards": folder / "rewards.json", "reward_func": folder / REWARD_FILE}
    atomic_write_text(paths["prompts"], jsonl_text([openrlhf_record(it) for it in items]))
    atomic_write_text(paths["items"], jsonl_text([it.to_record() for it in items]))
    atomic_write_text(paths["rewards"], json.dumps([dataclasses.asdict(s) for s in specs], default=str, indent=1))
    shutil.copyfile(REWARD_SOURCE, paths["reward_func"])
    return paths


def export_sft(folder: Path, items: Sequence[QAItem]) -> Path:
    """Write the cold-start set: chat ``input`` and the rationale as the assistant ``output``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sft.jsonl"
    rows = [{"input": openrlhf_record(it)["input"], "output": [{"role": "assistant", "content": it.rationale}],
             "id": it.id} for it in items]
    atomic_write_text(path, jsonl_text(rows))
    return path


def grpo_argv(a: OpenRlhfArgs, model: str, paths: dict[str, Path], ckpt: Path, rollouts: int, seed: int,
              max_steps: int | None) -> list[str]:
    """The ``openrlhf.cli.train_ppo_ray`` arguments for one GRPO round (args `a`: the trainer's Args)."""
    argv = ["--actor.model_name_or_path", model, "--reward.remote_url", str(paths["reward_func"]),
            "--data.prompt_dataset", str(paths["prompts"]), "--data.input_key", "input",
            "--data.label_key", "id", "--data.apply_chat_template",
            "--algo.advantage.estimator", a.estimator, "--rollout.n_samples_per_prompt", str(rollouts),
            "--rollout.batch_size", str(a.rollout_batch_size), "--train.batch_size", str(a.train_batch_size),
            "--rollout.micro_batch_size", str(a.micro_batch_size), "--train.micro_batch_size", str(a.micro_batch_size),
            "--rollout.max_new_tokens", str(a.max_new_tokens), "--data.max_len", str(a.max_len),
            "--rollout.temperature", str(a.temperature), "--actor.adam.lr", str(a.learning_rate),
            "--algo.kl.init_coef", str(a.kl), "--train.max_epochs", "1", "--train.num_episodes", str(a.episodes),
            "--actor.num_nodes", str(a.num_nodes), "--actor.num_gpus_per_node", str(a.gpus_per_node),
            "--ref.num_nodes", str(a.num_nodes), "--ref.num_gpus_per_node", str(a.gpus_per_node),
            "--vllm.num_engines", str(a.vllm_engines), "--vllm.tensor_parallel_size", str(a.vllm_tensor_parallel),
            "--ds.zero_stage", str(a.zero_stage), "--train.seed", str(seed),
            "--ckpt.path", str(ckpt), "--ckpt.save_hf", "--ckpt.save_steps", str(a.save_steps),
            "--ckpt.output_dir", str(ckpt / "final"), "--actor.gradient_checkpointing_enable"]
    if a.kl > 0:
        argv += ["--algo.kl.use_loss", "--algo.kl.estimator", "k3"]
    if max_steps:
        argv += ["--data.max_samples", str(max_steps * a.rollout_batch_size)]
    if a.colocate:
        argv += ["--train.colocate_all"]
    if a.lora_rank:
        argv += ["--ds.lora.rank", str(a.lora_rank), "--ds.lora.alpha", str(a.lora_alpha)]
    return argv + list(a.extra_args)


def sft_argv(a: OpenRlhfArgs, model: str, data: Path, ckpt: Path, seed: int) -> list[str]:
    """The ``openrlhf.cli.train_sft`` arguments for the cold start."""
    argv = ["--model.model_name_or_path", model, "--data.dataset", str(data), "--data.input_key", "input",
            "--data.output_key", "output", "--data.apply_chat_template", "--data.max_len", str(a.max_len),
            "--train.batch_size", str(a.train_batch_size), "--train.micro_batch_size", str(a.micro_batch_size),
            "--train.max_epochs", str(a.sft_epochs), "--adam.lr", str(a.sft_learning_rate),
            "--ds.zero_stage", str(a.zero_stage), "--train.seed", str(seed), "--ckpt.path", str(ckpt),
            "--ckpt.save_hf", "--ckpt.save_steps", str(a.save_steps), "--ckpt.output_dir", str(ckpt / "final"),
            "--model.gradient_checkpointing_enable"]
    if a.lora_rank:
        argv += ["--ds.lora.rank", str(a.lora_rank), "--ds.lora.alpha", str(a.lora_alpha)]
    return argv + list(a.extra_args)


def launch_argv(module: str, argv: Sequence[str], address: str | None, working_dir: Path) -> list[str]:
    """The full ``ray job submit ... -- python3 -m <module> ...`` command."""
    head = ["ray", "job", "submit"] + (["--address", address] if address else [])
    env = {"working_dir": str(working_dir)}
    return [*head, "--runtime-env-json", json.dumps(env), "--", "python3", "-m", module, *argv]


def write_command(folder: Path, command: Sequence[str]) -> Path:
    """Save the command (shell-quoted, and as JSON) beside the export."""
    import shlex

    path = folder / "command.sh"
    atomic_write_text(path, "#!/bin/sh\n" + " \\\n  ".join(shlex.quote(c) for c in command) + "\n")
    atomic_write_json(folder / "command.json", list(command))
    return path


def planned_command(args: OpenRlhfArgs, kind: str, model: str, output_dir: Path, seed: int, rollouts: int = 8,
                    max_steps: int | None = None) -> tuple[str, list[str], list[str]]:
    """Build the command a job of `kind` ("sft" or "grpo") would submit, exporting nothing: the data and reward
    paths are where the export would write them under ``<output_dir>/export``.
    Return (OpenRLHF module, its arguments, the full ``ray job submit`` command)."""
    folder = Path(output_dir) / "export"
    if kind == "grpo":
        paths = {"prompts": folder / "prompts.jsonl", "reward_func": folder / REWARD_FILE}
        module, argv = PPO, grpo_argv(args, model, paths, Path(output_dir), rollouts, seed, max_steps)
    elif kind == "sft":
        module, argv = SFT, sft_argv(args, model, folder / "sft.jsonl", Path(output_dir), seed)
    else:
        raise StageError(f"trainer 'openrlhf': unknown job kind '{kind}' (expected sft or grpo)")
    return module, argv, launch_argv(module, argv, args.address, folder)
