"""Generic edge tables for the `edge-table` source: each row of a TSV/CSV becomes ``src -relation-> dst``.

The table specs are ``fleming.plugins.graphs.edge_table.source.TableSpec`` / ``XrefSpec``. Per row: joins
bring columns of other tables in (a row without a match is rejected), ``filter`` keeps rows whose
column holds one of the listed values, then src/dst become CURIEs, nodes are added (the first kind and
the first real name win) and the edge is added once (repeats are counted, not added again).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fleming import StageContext
from fleming.kg import KnowledgeGraph
from fleming.plugins.graphs.edge_table._read import RowReport, TableFile, curie, missing_column

Row = dict[str, str]


def column_map(columns: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """Return ``{column: name}`` for a list of columns (names kept) or a column -> name mapping."""
    return dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}


def ensure_node(graph: KnowledgeGraph, id: str, kind: str, name: str, report: RowReport) -> str:
    """Add the node if new (named by its id when no name is known); return the graph's own id string."""
    node = graph.nodes.get(id)
    if node is None:
        return graph.add_node(id, kind, name or id).id
    if name and node.name == node.id:
        node.name = name
    if node.kind != kind:
        report.counts["kind_conflicts"] += 1
    return node.id


class _Join:
    """One join of a table spec: the other table's rows indexed by its key column."""

    def __init__(self, spec: Any, needed_by: str) -> None:
        self.on = spec.left_on
        self.key = spec.right_on or spec.left_on
        self.out = column_map(spec.columns)
        self.name = Path(spec.path).name
        with TableFile(spec.path, spec.sep) as table:
            key = table.index(self.key, f"{needed_by}.right_on")
            cols = [table.index(c, f"{needed_by}.columns") for c in self.out]
            seen: dict[str, dict[tuple[str, ...], None]] = {}
            for _, row in table.rows(description=f"indexing {self.name}"):
                if len(row) > max((key, *cols)):
                    seen.setdefault(row[key].strip(), {})[tuple(row[c].strip() for c in cols)] = None
        self.index: dict[str, list[tuple[str, ...]]] = {k: list(v) for k, v in seen.items() if k}

    def expand(self, row: Row) -> list[Row] | str:
        """Return the row once per match, with the joined columns added; or the reason there is none."""
        value = row.get(self.on, "").strip()
        if not value:
            return f"missing {self.on!r} (the join key)"
        matches = self.index.get(value)
        if not matches:
            return f"no row of {self.name} has {self.key} = {value!r}"
        names = list(self.out.values())
        return [{**row, **dict(zip(names, values))} for values in matches]


class _Columns:
    """Where each column a table spec names is found: in the file's header or added by a join."""

    def __init__(self, table: TableFile, joins: list[_Join], where: str) -> None:
        self.table = table
        self.from_joins: set[str] = set()
        self.read: dict[str, int] = {}
        for i, join in enumerate(joins):
            self.need(join.on, f"{where}.join[{i}].left_on")
            self.from_joins.update(join.out.values())

    def need(self, column: str | None, needed_by: str) -> None:
        """Check `column` exists (header or an earlier join) and read it from every row."""
        if column is None or column in self.from_joins or column in self.read:
            return
        if column not in self.table.columns:
            raise missing_column(self.table.path, column, needed_by,
                                 self.table.columns + sorted(self.from_joins))
        self.read[column] = self.table.columns.index(column)


def load_table(graph: KnowledgeGraph, spec: Any, where: str, prefix_map: Mapping[str, str],
               report: RowReport, seen: set[tuple[str, str, str]], ctx: StageContext | None = None) -> None:
    """Add one table's rows to `graph` as edges; bad rows go to `report` with file:line."""
    joins = [_Join(j, f"{where}.join[{i}]") for i, j in enumerate(spec.join)]
    attrs = column_map(spec.attrs)
    with TableFile(spec.path, spec.sep) as table:
        cols = _Columns(table, joins, where)
        for fld in ("src", "dst", "relation_column", "src_name", "dst_name", "src_prefix_column",
                    "dst_prefix_column"):
            cols.need(getattr(spec, fld), f"{where}.{fld}")
        for column in attrs:
            cols.need(column, f"{where}.attrs")
        for column in spec.filter:
            cols.need(column, f"{where}.filter")
        keep = {c: {v} if isinstance(v, str) else set(v) for c, v in spec.filter.items()}
        early = {c: v for c, v in keep.items() if c in cols.read}  # filter before joining when possible
        late = {c: v for c, v in keep.items() if c not in early}
        width = len(table.columns)
        for line, fields in table.rows(ctx, f"reading {table.path.name}"):
            here = f"{table.path}:{line}"
            report.counts["rows"] += 1
            if len(fields) != width:
                report.reject(f"{len(fields)} fields where the header has {width}", here, {"fields": fields})
                continue
            base = {c: fields[i].strip() for c, i in cols.read.items()}
            if any(base[c] not in vals for c, vals in early.items()):
                report.counts["filtered"] += 1
                continue
            rows = _joined(base, joins)
            if isinstance(rows, str):
                report.reject(rows, here, {"fields": fields})
                continue
            for row in rows:
                if any(row.get(c, "") not in vals for c, vals in late.items()):
                    report.counts["filtered"] += 1
                    continue
                _add_row(graph, spec, row, attrs, here, prefix_map, report, seen)


def _joined(row: Row, joins: list[_Join]) -> list[Row] | str:
    """Return the row expanded by every join, or the reason a join found no match."""
    rows = [row]
    for join in joins:
        expanded: list[Row] = []
        for r in rows:
            got = join.expand(r)
            if isinstance(got, str):
                return got
            expanded += got
        rows = expanded
    return rows


def _add_row(graph: KnowledgeGraph, spec: Any, row: Row, attrs: Mapping[str, str], here: str,
             prefix_map: Mapping[str, str], report: RowReport, seen: set[tuple[str, str, str]]) -> None:
    missing = [f"{fld} {getattr(spec, fld)!r}" for fld in ("src", "dst", "relation_column")
               if getattr(spec, fld) is not None and not row.get(getattr(spec, fld))]
    if missing:
        report.reject(f"missing {', '.join(missing)}", here, row)
        return
    if spec.relation_column is not None:
        value = row[spec.relation_column]
        relation = spec.relation_map.get(value, spec.relation_map.get("*", value))
    else:
        relation = spec.relation
    src_prefix = row.get(spec.src_prefix_column, "") if spec.src_prefix_column else spec.src_prefix
    dst_prefix = row.get(spec.dst_prefix_column, "") if spec.dst_prefix_column else spec.dst_prefix
    src = curie(row[spec.src], src_prefix, prefix_map)
    dst = curie(row[spec.dst], dst_prefix, prefix_map)
    src = ensure_node(graph, src, spec.src_kind, row.get(spec.src_name or "", ""), report)
    dst = ensure_node(graph, dst, spec.dst_kind, row.get(spec.dst_name or "", ""), report)
    key = (src, relation, dst)
    if key in seen:
        report.counts["duplicate_edges"] += 1
        return
    seen.add(key)
    edge_attrs = {name: row[c] for c, name in attrs.items() if row.get(c)}
    graph.add_edge(src, relation, dst, edge_attrs or None)
    report.counts["edges"] += 1


def apply_xrefs(graph: KnowledgeGraph, spec: Any, where: str, prefix_map: Mapping[str, str],
                report: RowReport, ctx: StageContext | None = None) -> None:
    """Add one cross-reference table's xrefs to the nodes already in `graph` (others are counted)."""
    with TableFile(spec.path, spec.sep) as table:
        id_col = table.index(spec.id, f"{where}.id")
        xref_col = table.index(spec.xref, f"{where}.xref")
        for line, fields in table.rows(ctx, f"reading {table.path.name}"):
            here = f"{table.path}:{line}"
            if len(fields) <= max(id_col, xref_col):
                report.reject(f"{len(fields)} fields, too few for {spec.id!r} and {spec.xref!r}", here,
                              {"fields": fields})
                continue
            raw_id, raw_xref = fields[id_col].strip(), fields[xref_col].strip()
            if not raw_id or not raw_xref:
                empty = spec.id if not raw_id else spec.xref
                report.reject(f"missing {empty!r}", here, {"fields": fields})
                continue
            node = graph.nodes.get(curie(raw_id, spec.id_prefix, prefix_map))
            if node is None:
                report.counts["xrefs_unmatched"] += 1
                continue
            xref = curie(raw_xref, spec.xref_prefix, prefix_map)
            if xref not in node.xrefs and xref != node.id:
                graph.add_node(node.id, node.kind, node.name, xrefs=[xref])
                report.counts["xrefs"] += 1
