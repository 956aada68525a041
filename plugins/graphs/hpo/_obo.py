"""Reading ``hp.obo``: terms with names, definitions, synonyms, xrefs and is_a; alt and obsolete ids; branches.

Part of the `hpo` data source (``fleming.plugins.graphs.hpo.source``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fleming import Rejected
from fleming.errors import DataError

# branch root -> node kind (checked in this order: Onset lies under Clinical modifier)
KINDS = (("HP:0000118", "phenotype"), ("HP:0000005", "inheritance"), ("HP:0003674", "onset"),
         ("HP:0040279", "frequency"), ("HP:0012823", "clinical_modifier"))


@dataclass
class Term:
    """One [Term] stanza."""

    id: str
    name: str = ""
    definition: str = ""
    synonyms: list[str] = field(default_factory=list)
    xrefs: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    alt_ids: list[str] = field(default_factory=list)
    replaced_by: str = ""
    obsolete: bool = False
    line: int = 0


def read_obo(path: Path, rejects: list[Rejected]) -> tuple[dict[str, Term], str]:
    """Return the terms of an OBO file by id, and its release (data-version)."""
    terms: dict[str, Term] = {}
    release = ""
    cur: Term | None = None
    in_term = False
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            if line[0] == "[":
                in_term = line == "[Term]"
                cur = None
                continue
            key, sep, value = line.partition(": ")
            if not in_term:
                if key == "data-version" and not release:
                    release = value.rsplit("/", 1)[-1]
                continue
            if key == "id":
                cur = terms[value] = Term(value, line=lineno)
            elif cur is None:
                rejects.append(Rejected(f"'{key}' before the term's id", f"{path}:{lineno}", {"line": line}))
            elif key == "name":
                cur.name = value
            elif key == "is_a":
                cur.parents.append(value.split(" ", 1)[0])
            elif key == "synonym":
                text, _, rest = value[1:].partition('" ')
                if "obsolete_synonym" not in rest:
                    cur.synonyms.append(text)
            elif key == "def":
                cur.definition = value[1:].rpartition('" [')[0]
            elif key == "xref":
                cur.xrefs.append(value.split(" ", 1)[0])
            elif key == "alt_id":
                cur.alt_ids.append(value)
            elif key == "is_obsolete":
                cur.obsolete = value == "true"
            elif key == "replaced_by":
                cur.replaced_by = value
    if not release:
        raise DataError(f"{path}: no data-version line, so the HPO release is unknown")
    return terms, release


def term_kinds(terms: dict[str, Term]) -> dict[str, str]:
    """Return each live term's node kind, by the branch of the ontology it lies in."""
    memo: dict[str, frozenset[str]] = {}
    roots = {r for r, _ in KINDS}

    def branches(tid: str) -> frozenset[str]:
        got = memo.get(tid)
        if got is None:
            memo[tid] = frozenset()  # guards against a cycle
            t = terms.get(tid)
            found: set[str] = {tid} & roots
            for p in t.parents if t else ():
                found |= branches(p)
            got = memo[tid] = frozenset(found)
        return got

    out: dict[str, str] = {}
    for tid, t in terms.items():
        if t.obsolete:
            continue
        b = branches(tid)
        out[tid] = next((kind for root, kind in KINDS if root in b), "hpo_term")
    return out


def current_ids(terms: dict[str, Term], kinds: dict[str, str]) -> dict[str, str]:
    """Map every id the annotations may use (current, alt_id, obsolete with replacement) to a live term."""
    current = {tid: tid for tid in kinds}
    for tid, t in terms.items():
        target = tid if tid in kinds else t.replaced_by
        if target in kinds:
            current.setdefault(tid, target)
            for alt in t.alt_ids:
                current.setdefault(alt, target)
    return current


def subtree(terms: dict[str, Term], root: str) -> set[str]:
    """Return `root` and every live term below it."""
    children: dict[str, list[str]] = {}
    for tid, t in terms.items():
        if not t.obsolete:
            for p in t.parents:
                children.setdefault(p, []).append(tid)
    out: set[str] = set()
    todo = [root]
    while todo:
        tid = todo.pop()
        if tid not in out:
            out.add(tid)
            todo.extend(children.get(tid, ()))
    return out
