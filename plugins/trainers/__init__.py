"""Trainer backends: `trl` (one machine, CPU or GPU) and `openrlhf` (Ray, vLLM, DeepSpeed)."""
