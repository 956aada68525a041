"""Inspect tasks for the medical benchmarks (one module per benchmark)."""
