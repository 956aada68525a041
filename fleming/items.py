"""Reading and writing items between stages: HF datasets on disk plus `items.jsonl` in the uniform schema."""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fleming.io import atomic_dir, atomic_write_text, redact_data
from fleming.types import QAItem, Rejected, record_problem


def _row(item: QAItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "question": item.question,
        "options": [{"letter": k, "text": v} for k, v in item.options.items()],
        "answer": item.answer,
        "source": item.source,
        "difficulty": item.difficulty,
        "rationale": item.rationale,
        "provenance": json.dumps(dict(item.provenance), ensure_ascii=False, sort_keys=True),
    }


def _item(row: dict[str, Any]) -> QAItem:
    return QAItem(
        id=row["id"],
        question=row["question"],
        options={o["letter"]: o["text"] for o in row["options"]},
        answer=row["answer"],
        source=row["source"],
        difficulty=row["difficulty"],
        rationale=row["rationale"],
        provenance=json.loads(row["provenance"]),
    )


def question_key(text: str) -> str:
    """The question text as two questions are compared: case-folded, every run of non-alphanumerics one space."""
    return re.sub(r"[^a-z0-9]+", " ", text.casefold()).strip()


def jsonl_text(records: Iterable[dict[str, Any]]) -> str:
    """Render records as JSON Lines (UTF-8, one record per physical line)."""
    lines = [json.dumps(r, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
             for r in records]
    return "".join(line + "\n" for line in lines)


def write_items(folder: Path, items: Sequence[QAItem], name: str = "items") -> None:
    """Write `items` as a HF dataset (`<name>/`) and as `<name>.jsonl`, each atomically."""
    import datasets

    datasets.disable_progress_bars()
    rows = redact_data([_row(i) for i in items])  # the Arrow files must not keep a secret either
    features = datasets.Features({
        "id": datasets.Value("string"), "question": datasets.Value("string"),
        "options": datasets.List({"letter": datasets.Value("string"), "text": datasets.Value("string")}),
        "answer": datasets.Value("string"), "source": datasets.Value("string"),
        "difficulty": datasets.Value("string"), "rationale": datasets.Value("string"),
        "provenance": datasets.Value("string"),
    })
    # from_list([]) writes a dataset whose schema does not match its features; from_dict does not
    ds = datasets.Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)
    with atomic_dir(folder / name) as tmp:
        ds.save_to_disk(str(tmp))
    atomic_write_text(folder / f"{name}.jsonl", jsonl_text(i.to_record() for i in items))


def json_lines(path: Path, errors: str = "strict") -> Iterator[tuple[int, dict[str, Any] | Rejected]]:
    """Yield (line number, object) per non-blank line of a JSONL file; a line that is not a JSON object
    becomes a `Rejected` at ``file:line``. ``errors`` is the text decoding's error handler."""
    with open(path, encoding="utf-8", errors=errors) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, Rejected(f"invalid JSON: {exc.msg} at column {exc.colno}", where, {"line": line[:500]})
                continue
            if not isinstance(rec, dict):
                yield lineno, Rejected(f"expected a JSON object, got {type(rec).__name__}", where,
                                       {"line": line[:500]})
                continue
            yield lineno, rec


def item_or_reject(record: dict[str, Any], where: str, source: str = "") -> QAItem | Rejected:
    """Check a uniform-schema row at the source boundary: an item whose provenance records ``where`` (its
    ``file:line``), or a `Rejected` at ``where`` saying what is wrong with the row."""
    problem = record_problem(record)
    if problem is not None:
        return Rejected(problem, where, record)
    meta = {**(record.get("meta") or {}), "where": where}
    return QAItem.from_record({**record, "meta": meta}, source=source)


def checked(build: Callable[[], QAItem | Rejected], where: str, record: Any) -> QAItem | Rejected:
    """Return `build()`, or a `Rejected` at ``where`` when the row it reads holds a value of the wrong type
    (a ValueError while building the item, e.g. a list where the question text should be)."""
    try:
        return build()
    except ValueError as exc:
        return Rejected(str(exc), where, record if isinstance(record, dict) else {"value": repr(record)[:500]})


def read_items(folder: Path, name: str = "items") -> list[QAItem]:
    """Read the items a stage wrote with `write_items`."""
    import datasets

    listing = folder / f"{name}.jsonl"
    if listing.exists() and listing.stat().st_size == 0:  # datasets cannot load an empty saved dataset
        return []
    ds = datasets.load_from_disk(str(folder / name))
    return [_item(r) for r in ds]


def write_rejects(folder: Path, rejects: Sequence[Rejected], name: str = "rejects") -> None:
    """Write set-aside rows with their reasons to `<name>.jsonl` (always written, even when empty)."""
    atomic_write_text(folder / f"{name}.jsonl", jsonl_text(r.to_record() for r in rejects))
