"""Verifiers and annotators: the LLM label check, LLM difficulty labels, and pass-rate difficulty from a local model."""
