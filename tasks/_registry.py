"""Imported by Inspect through the `inspect_ai` entry point: registers every fleming task."""
