"""Cut a completion into segments that mark the reasoning audit: the graph entities it links and the claims it
makes, each claim with its verdict.

The audit (a sample score's ``metadata["audit"]``) gives character offsets into the completion: ``links``
(``start``, ``end``, ``id``, ``name``, ``kind``, ``on_path``), ``claims`` (``start``, ``end``, ``disease``,
``relation``, ``target``, ``negated``, ``verdict``) and ``reasoning_end``. Offsets are untrusted: a span that
is not a pair of whole numbers, is empty, or lies past the shown text is dropped or clipped, and overlapping
spans are fine, because the text is cut at every span edge and each piece is marked by the innermost link and
the innermost claim over it (every claim is also listed in a table). Segments hold plain text; the template
escapes it. Class names come from fixed lists, never from the log.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

VERDICTS = ("supported", "contradicted", "unsupported")
KINDS = ("disease", "finding", "phenotype", "gene", "inheritance", "onset", "drug", "drug-class")


@dataclass(frozen=True)
class Segment:
    """A piece of the completion: its text, the link over it (if any) and the claim over it (if any)."""

    text: str
    link: str = ""
    link_title: str = ""
    claim: str = ""
    claim_title: str = ""
    audited: bool = True


@dataclass
class AuditView:
    """What a sample page shows of an audit: the marked completion, the claims, path recall and the legend."""

    segments: list[Segment]
    claims: list[dict[str, Any]]
    path_recall: float | None
    path_entities: list[str]
    named: list[str]
    kinds: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    dropped: int = 0


def kind_class(kind: Any) -> str:
    """The CSS class of an entity kind: one of `KINDS`, else ``other``."""
    text = re.sub(r"[^a-z]+", "-", str(kind or "").lower()).strip("-")
    return text if text in KINDS else "other"


def verdict_class(verdict: Any) -> str:
    """One of `VERDICTS`, else ``unknown``."""
    text = str(verdict or "").strip().lower()
    return text if text in VERDICTS else "unknown"


def _span(raw: Any, length: int) -> tuple[int, int] | None:
    """A span's (start, end) clipped to the text, or None when it is not a non-empty span of whole numbers."""
    if not isinstance(raw, Mapping):
        return None
    start, end = raw.get("start"), raw.get("end")
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        return None
    start, end = max(start, 0), min(end, length)
    return (start, end) if start < end else None


def _ids_or_items(value: Any) -> list[Any]:
    """`value` as a list when it is a JSON array, else empty."""
    return list(value) if isinstance(value, (list, tuple)) else []


def _ids(value: Any) -> list[str]:
    return [str(v) for v in _ids_or_items(value)]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _link_title(link: Mapping[str, Any]) -> str:
    where = "on the item's path" if link.get("on_path") else "not on the item's path"
    name, ident = link.get("name") or link.get("id") or "?", link.get("id") or "?"
    return f"{name} ({link.get('kind') or 'entity'}, {ident}; {where})"


def _claim_title(claim: Mapping[str, Any]) -> str:
    relation = f"{'NOT ' if claim.get('negated') else ''}{claim.get('relation') or 'has'}"
    disease, target = claim.get("disease") or "?", claim.get("target") or "?"
    return f"{verdict_class(claim.get('verdict'))}: {disease} {relation} {target}"


def _innermost(spans: list[tuple[tuple[int, int], Any]], a: int, b: int) -> Any:
    """The shortest span covering [a, b) (the first of equals), or None."""
    over = [(s[1] - s[0], i) for i, (s, _) in enumerate(spans) if s[0] <= a and b <= s[1]]
    return spans[min(over)[1]][1] if over else None


def audit_view(audit: Any, text: str) -> AuditView | None:
    """The marked view of `text` (the shown completion) for an audit; None when `audit` is not a mapping."""
    if not isinstance(audit, Mapping):
        return None
    n = len(text)
    raw_links, raw_claims = _ids_or_items(audit.get("links")), _ids_or_items(audit.get("claims"))
    links = [(s, link) for link in raw_links if (s := _span(link, n))]
    claims = [(s, claim) for claim in raw_claims if (s := _span(claim, n))]
    total = len(raw_links) + len(raw_claims)
    end = audit.get("reasoning_end")
    end = min(max(end, 0), n) if isinstance(end, int) and not isinstance(end, bool) else n
    cuts = sorted({0, n, end, *(i for s, _ in links + claims for i in s)})
    segments = []
    for a, b in zip(cuts, cuts[1:]):
        link, claim = _innermost(links, a, b), _innermost(claims, a, b)
        segments.append(Segment(
            text=text[a:b],
            link=f"{kind_class(link.get('kind'))}{' on-path' if link.get('on_path') else ''}" if link else "",
            link_title=_link_title(link) if link else "",
            claim=verdict_class(claim.get("verdict")) if claim else "",
            claim_title=_claim_title(claim) if claim else "", audited=a < end))
    names = {str(x["id"]): str(x["name"]) for x in raw_links
             if isinstance(x, Mapping) and x.get("id") and x.get("name")}

    def named(ident: Any) -> str:
        key = str(ident or "")
        return f"{names[key]} ({key})" if names.get(key, key) != key else key

    rows = [{"disease": named(c.get("disease")), "relation": str(c.get("relation") or ""),
             "target": named(c.get("target")), "negated": bool(c.get("negated")),
             "verdict": verdict_class(c.get("verdict"))} for c in raw_claims if isinstance(c, Mapping)]
    return AuditView(segments=segments, claims=rows, path_recall=_number(audit.get("path_recall")),
                     path_entities=[named(x) for x in _ids(audit.get("path_entities"))],
                     named=[named(x) for x in _ids(audit.get("named"))],
                     kinds=sorted({kind_class(x.get("kind")) for _, x in links}),
                     verdicts=[v for v in VERDICTS if any(verdict_class(c.get("verdict")) == v for _, c in claims)],
                     dropped=total - len(links) - len(claims))
