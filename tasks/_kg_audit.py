"""The KG reasoning audit as scores: per sample, ``fleming.audit.audit_reasoning`` on the completion.

A task audits when asked (``audit=true``) or, by default, when every item has KG provenance (``kg_heldout``
and any task over items the `kg` synthesizer made). Each sample then carries the item's provenance in its
metadata (``kg``) and its score gains three values, each a score of its own in the log with ``mean`` and
``stderr``:

* ``path_recall``: the share of the item's path entities (stem findings, hidden diagnosis, answer) that the
  reasoning names;
* ``contradiction_rate``: 1.0 when some claim of the reasoning is contradicted by the graph, else 0.0;
* ``faithful_accuracy``: 1.0 when the strict answer is right AND no claim is contradicted AND the reasoning
  names at least one path entity (path recall > 0), else 0.0.

The whole audit (links, claims with verdicts, offsets into the completion) goes into the score's metadata
under ``audit``, which the leaderboard's per-sample pages highlight. The graph is loaded once per process from
the source the items name (``meta.kg.source``), off the event loop.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from inspect_ai.scorer import mean, stderr

from fleming.audit import audit_reasoning, has_kg_provenance
from fleming.errors import DataError

AUDIT_SCORES = ("faithful_accuracy", "path_recall", "contradiction_rate")
PROVENANCE = ("kg", "template", "stem_entities", "answer_entity", "option_entities", "hidden", "diagnosis",
              "disease", "path", "evidence")


def wants_audit(name: str, records: Sequence[Mapping[str, Any]], audit: bool | None) -> bool:
    """Return whether the task audits: `audit`, or when None, whether every record has KG provenance; asking
    for it over items without provenance is a one-line DataError naming one of them."""
    if audit is False:
        return False
    missing = [r for r in records if not has_kg_provenance(r)]
    if audit is None:
        return not missing
    if missing:
        raise DataError(f"{name}: audit=true needs KG provenance on every item; {len(missing)} of {len(records)} "
                        f"have none (first: {missing[0]['id']})")
    return True


def provenance(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return the part of a record's ``meta`` the audit reads (kept in the sample's metadata)."""
    meta = record.get("meta") or {}
    return {k: meta[k] for k in PROVENANCE if k in meta}


def audit_metrics() -> dict[str, list[Any]]:
    """Return the metrics of the three audit scores."""
    return {name: [mean(), stderr()] for name in AUDIT_SCORES}


async def audit_values(completion: str, metadata: Mapping[str, Any], right: bool
                       ) -> tuple[dict[str, float], dict[str, Any]]:
    """Return the audit's score values and the audit itself (JSON-ready) for one completion."""
    item = {"id": metadata.get("id", "?"), "meta": metadata.get("kg") or {}}
    audit = await anyio.to_thread.run_sync(audit_reasoning, completion, item)
    values = {"faithful_accuracy": float(right and not audit.contradicted and audit.path_recall > 0),
              "path_recall": audit.path_recall, "contradiction_rate": float(audit.contradicted)}
    return values, audit.to_dict()
