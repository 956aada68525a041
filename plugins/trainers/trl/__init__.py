"""The `trl` trainer: cold-start SFT and GRPO through TRL on one machine."""
