"""Linking reasoning text to graph entities by name, for `fleming.audit`.

Text and names are cut into tokens (runs of letters and digits: case, hyphens and other punctuation play no
part), each folded to lower case with a plural ``-s`` / ``-ies`` removed; a name matches a run of tokens
equal to its own. Scanning left to right, the longest name that starts at a token wins and the scan goes on
after it. Which names are indexed:

* node kinds ``disease``, ``phenotype``, ``gene``, ``inheritance``, ``onset`` (and ``drug``, ``drug_class``
  where a drug source put them in the graph, so drug items' paths can be named); names and synonyms;
* phenotypes deeper than the generic depth only (the synthesizer never shows the terms near the root, such
  as "Abnormality of the nervous system"); inheritance and onset terms only when some disease has them or a
  term below them (qualifiers such as "Incomplete penetrance" are left out), never the root "Onset";
* gene symbols, and one-token names of up to 6 capitals (``COPD``, ``UPD``, ``MELAS``), match only as
  written, or for an abbreviation also as an option prints it (``MODY`` as "Mody"); a longer name in
  capitals (an old OMIM title, ``DYSOSTEOSCLEROSIS``) matches in any case, like every other name;
* a one-token name needs 4 characters or more, 3 for a gene symbol or an abbreviation: "AR", "ID" or "MR"
  would link everywhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from fleming.kg import KnowledgeGraph
from fleming.kg_index import KgIndex, display_name

LINK_KINDS = ("phenotype", "disease", "gene", "inheritance", "onset", "drug", "drug_class")
KIND_RANK = {k: i for i, k in enumerate(LINK_KINDS)}  # a name two kinds share: a finding before a disease
VALUED = {"inheritance": "inheritance", "onset": "onset"}  # kind -> the relation whose targets it must be
ACRONYM = 6  # an all-capitals name this short is an abbreviation; a longer one is an old OMIM title
_TOKEN = re.compile(r"[^\W_]+")


def fold(token: str) -> str:
    """Return a token as names are compared: lower case, a plural ending removed."""
    t = token.casefold()
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "us", "is")):
        return t[:-1]
    return t


def tokens(text: str, end: int | None = None) -> list[tuple[str, int, int]]:
    """Return ``(folded token, start, end)`` for every token of ``text[:end]``."""
    return [(fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text, 0, len(text) if end is None
                                                                           else end)]


@dataclass(frozen=True)
class Mention:
    """A run of text that names one or more nodes."""

    start: int
    end: int
    ids: tuple[str, ...]


class NameIndex:
    """The linkable names of one graph (see the module docstring); build once per graph."""

    def __init__(self, graph: KnowledgeGraph, ix: KgIndex) -> None:
        self.graph = graph
        self._any: dict[tuple[str, ...], set[str]] = {}
        self._cased: dict[tuple[str, ...], dict[tuple[str, ...], set[str]]] = {}
        valued = {kind: self._valued(ix, rel) for kind, rel in VALUED.items()}
        for node in graph.nodes.values():
            if node.kind not in KIND_RANK:
                continue
            if node.kind == "phenotype" and ix.depth(node.id) <= ix.generic_depth:
                continue
            if node.kind in valued and node.id not in valued[node.kind]:
                continue
            for name in dict.fromkeys((node.name, *node.synonyms)):
                self._add(name, node.id, node.kind == "gene")
        lengths: dict[str, set[int]] = {}
        for key in (*self._any, *self._cased):
            lengths.setdefault(key[0], set()).add(len(key))
        self._lengths = {first: tuple(sorted(n, reverse=True)) for first, n in lengths.items()}

    @staticmethod
    def _valued(ix: KgIndex, rel: str) -> set[str]:
        """Return the targets of `rel` and their ancestors, less the roots of their kind."""
        def kind(t: str) -> str | None:
            node = ix.graph.nodes.get(t)
            return None if node is None else node.kind

        targets = {dst for _, dst, _ in ix.graph.edges(rel)}
        used = targets.union(*(ix.ancestors(t) for t in targets))
        return {t for t in used if any(kind(p) == kind(t) for p in ix.ancestors(t))}

    def _add(self, name: str, id: str, cased: bool) -> None:
        raw = [m.group() for m in _TOKEN.finditer(name)]
        if not raw:
            return
        acronym = len(raw) == 1 and len(raw[0]) <= ACRONYM and raw[0].isupper() and \
            sum(c.isalpha() for c in raw[0]) >= 2
        if len(raw) == 1 and len(raw[0]) < (3 if acronym or cased else 4):
            return
        key = tuple(fold(t) for t in raw)
        if not (cased or acronym):
            self._any.setdefault(key, set()).add(id)
            return
        forms = self._cased.setdefault(key, {})
        forms.setdefault(tuple(raw), set()).add(id)
        if acronym:  # also as an option prints it ("MODY" -> "Mody")
            forms.setdefault((display_name(raw[0]),), set()).add(id)

    def find(self, text: str, end: int | None = None) -> list[Mention]:
        """Return the mentions in ``text[:end]``, left to right, longest name first at each token."""
        toks = tokens(text, end)
        folded = [t for t, _, _ in toks]
        out: list[Mention] = []
        i = 0
        while i < len(toks):
            hit = None
            for n in self._lengths.get(folded[i], ()):
                if i + n > len(toks):
                    continue
                key = tuple(folded[i:i + n])
                ids = set(self._any.get(key, ()))
                cased = self._cased.get(key)
                if cased:
                    ids |= cased.get(tuple(text[s:e] for _, s, e in toks[i:i + n]), set())
                if ids:
                    hit = Mention(toks[i][1], toks[i + n - 1][2], tuple(sorted(ids)))
                    i += n
                    break
            if hit is None:
                i += 1
            else:
                out.append(hit)
        return out
