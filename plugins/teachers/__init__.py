"""Teachers that write a chain of thought for an item whose answer is known (`llm`; `kg-path` lives with the KG)."""
