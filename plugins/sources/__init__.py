"""Curated QA sources: each reads one dataset's own file format into items (jsonl, medqa, medmcqa, pubmedqa, cmexam, hf-dataset)."""
