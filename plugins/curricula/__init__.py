"""Curricula for the RL stages: `difficulty-mix` (stage 1) and `hard-mining` (stage 2)."""
