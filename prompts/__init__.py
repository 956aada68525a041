"""Jinja2 prompt templates (teacher CoT, refinement, label check, difficulty, evaluation)."""
