"""The `openrlhf` trainer's recipe args and the OpenRLHF modules it launches (shared by the trainer, the
command builder and the parser check)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt

PPO = "openrlhf.cli.train_ppo_ray"
SFT = "openrlhf.cli.train_sft"
OPENRLHF_HINT = "pip install --no-deps openrlhf==0.11.2"
RAY_HINT = "pip install 'fleming-med[openrlhf]'"


class OpenRlhfArgs(BaseModel):
    """The `openrlhf` trainer's recipe args."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=False, description="write and check the command, train nothing")
    address: str | None = Field(default=None, description="Ray address for `ray job submit` (default RAY_ADDRESS)")
    estimator: Literal["dr_grpo", "group_norm", "reinforce_baseline", "rloo"] = "dr_grpo"
    learning_rate: PositiveFloat = 1e-6
    sft_learning_rate: PositiveFloat = 5e-6
    sft_epochs: PositiveInt = 1
    kl: float = Field(default=0.0, ge=0, description="KL weight (0: none, as in the paper)")
    temperature: PositiveFloat = 1.0
    episodes: PositiveInt = 1
    rollout_batch_size: PositiveInt = 128
    train_batch_size: PositiveInt = 128
    micro_batch_size: PositiveInt = 4
    max_new_tokens: PositiveInt = 2048
    max_len: PositiveInt = 4096
    num_nodes: PositiveInt = 1
    gpus_per_node: PositiveInt = 8
    vllm_engines: PositiveInt = 4
    vllm_tensor_parallel: PositiveInt = 1
    zero_stage: Literal[0, 1, 2, 3] = 3
    colocate: bool = True
    lora_rank: NonNegativeInt = 0
    lora_alpha: PositiveInt = 16
    save_steps: int = Field(default=20, description="save a HF checkpoint every N steps (-1: only at the end)")
    extra_args: list[str] = Field(default_factory=list, description="more OpenRLHF flags, passed as given")
