"""Imported by Inspect through the `inspect_ai` entry point: registers every fleming task as fleming/<name>."""
from fleming.tasks import (  # noqa: F401  (imported to register their @task functions)
    careqa,
    jmed,
    kg_heldout,
    medbullets,
    medmcqa,
    medqa,
    medxpertqa,
    mmlu_pro_biology,
    mmlu_pro_health,
    pubmedqa,
)
