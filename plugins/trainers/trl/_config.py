"""The `trl` trainer's recipe args (the options users write, kept apart from the machinery)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

from fleming.engines import EngineChoice
from fleming.errors import RecipeError


class TrlArgs(BaseModel):
    """The `trl` trainer's recipe args."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: PositiveFloat = Field(default=1e-6, description="optimizer learning rate")
    epochs: PositiveFloat = Field(default=1.0, description="passes over the items when no max_steps is set")
    max_steps: PositiveInt | None = Field(default=None, description="optimizer steps (the RL stage's max_steps wins)")
    batch_size: PositiveInt = Field(default=4, description="SFT: sequences per step; GRPO: prompts per step "
                                                           "(each with `rollouts` completions)")
    grad_accumulation: PositiveInt = Field(default=1, description="gradient accumulation steps")
    max_length: PositiveInt = Field(default=1024, description="SFT: longest prompt + rationale in tokens")
    max_completion_length: PositiveInt = Field(default=128, description="GRPO: longest sampled completion")
    temperature: PositiveFloat = Field(default=1.0, description="GRPO sampling temperature")
    rollout_engine: str | dict[str, Any] | None = Field(
        default=None, description="GRPO: the engine that samples rollouts (a name or {name, args}, auto: the "
                                  "run's); default the policy itself (TRL's generate), with no weight sync")
    steps_per_generation: PositiveInt | None = Field(
        default=None, description="GRPO: optimizer steps per generation batch (TRL's; default grad_accumulation): "
                                  "more steps per engine weight sync")
    share_prompts: bool = Field(
        default=True, description="GRPO: compute each prompt once per group of rollouts, when sampling with TRL's "
                                  "generate (no rollout_engine) and in the loss (same numbers, a fraction of the "
                                  "work); false: TRL's own code")
    kl: float = Field(default=0.0, ge=0, description="GRPO KL weight (TRL beta); 0 loads no reference model")
    loss_type: str | None = Field(default=None, description="GRPO loss aggregation (TRL loss_type; default TRL's)")
    lora: bool = Field(default=False, description="train a LoRA adapter instead of all weights")
    lora_r: PositiveInt = Field(default=16, description="LoRA rank")
    lora_alpha: PositiveInt = Field(default=32, description="LoRA alpha")
    train_layers: PositiveInt | None = Field(default=None, description="train only the top N transformer blocks "
                                             "and the final norm (the rest, embeddings included, stay frozen: a "
                                             "shorter backward pass, for CPU runs); default: all weights")
    save_steps: PositiveInt = Field(default=50, description="save (and evaluate) a checkpoint every N steps")
    save_only_model: bool = Field(default=False, description="leave optimizer state out of checkpoints "
                                                             "(smaller; a resumed run restarts the optimizer)")
    logging_steps: PositiveInt = Field(default=1, description="log every N steps")
    bf16: bool | None = Field(default=None, description="bf16 mixed precision (default: on a GPU that has it)")
    seed: int | None = Field(default=None, description="training seed (default: the recipe's)")

    @field_validator("rollout_engine")
    @classmethod
    def _engine_named_well(cls, spec: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if spec is not None:
            try:
                EngineChoice.parse(spec, "rollout_engine")
            except RecipeError as exc:
                raise ValueError(str(exc).removeprefix("rollout_engine: ")) from None
        return spec

    @model_validator(mode="after")
    def _one_way_to_freeze(self) -> TrlArgs:
        if self.lora and self.train_layers is not None:
            raise ValueError("give lora or train_layers, not both")
        return self
