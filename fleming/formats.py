"""Training-set shapes: the same prompt the evaluation uses, as OpenRLHF and TRL read their data.

The prompt is rendered from ``prompts/eval_system.jinja`` and ``prompts/eval_mcq.jinja``, so a model is
trained on exactly the question format it is evaluated on.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleming.io import atomic_write_text
from fleming.items import jsonl_text
from fleming.prompts import render
from fleming.types import QAItem


def chat_messages(item: QAItem) -> list[dict[str, str]]:
    """Return the system and user messages that pose `item` (the evaluation's prompt)."""
    return [{"role": "system", "content": render("eval_system")},
            {"role": "user", "content": render("eval_mcq", question=item.question, options=dict(item.options))}]


def prompt_text(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """Return the chat prompt an engine generates from (the tokenizer's chat template with the generation
    prompt added), or the messages' texts joined by blank lines when the tokenizer has no chat template."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['content']}\n\n" for m in messages)


def openrlhf_record(item: QAItem) -> dict[str, Any]:
    """OpenRLHF prompt-dataset row: ``input`` (chat messages, for ``--data.apply_chat_template``) and
    ``label`` (the answer letter); ``letters`` and ``id`` ride along for the reward function."""
    return {"input": chat_messages(item), "label": item.answer, "letters": list(item.options), "id": item.id}


def trl_record(item: QAItem) -> dict[str, Any]:
    """TRL (GRPOTrainer / SFTTrainer) row: conversational ``prompt``; the other columns reach reward functions
    as keyword arguments; ``completion`` holds the rationale when the item has one (SFT data)."""
    row: dict[str, Any] = {"prompt": chat_messages(item), "answer": item.answer, "letters": list(item.options),
                           "id": item.id}
    if item.rationale:
        row["completion"] = [{"role": "assistant", "content": item.rationale}]
    return row


def write_training_shapes(folder: Path, name: str, items: Sequence[QAItem]) -> list[Path]:
    """Write ``<name>.openrlhf.jsonl`` and ``<name>.trl.jsonl`` beside the split's uniform files."""
    paths = [folder / f"{name}.openrlhf.jsonl", folder / f"{name}.trl.jsonl"]
    atomic_write_text(paths[0], jsonl_text([openrlhf_record(i) for i in items]))
    atomic_write_text(paths[1], jsonl_text([trl_record(i) for i in items]))
    return paths
