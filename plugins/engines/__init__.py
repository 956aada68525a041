"""Generation engines: `hf` (HF transformers, the reference)."""
