"""Filters: structure, dedup, decontaminate, phi. Each keeps or rejects items with a reason."""
