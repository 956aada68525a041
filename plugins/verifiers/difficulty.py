"""Annotator `difficulty`: an LLM sorts each item into easy / moderate / difficult for the curriculum.

The paper's three levels (``prompts/difficulty_system.jinja``): easy needs basic knowledge; moderate needs
detailed knowledge or intermediate reasoning; difficult needs specialised knowledge, multi-step inference
or knowledge of rare conditions. The model sees the question, its options and the correct answer
(``prompts/difficulty_user.jinja``) and ends its reply with ``<difficulty>LEVEL</difficulty>``; the last such
tag is read (case and surrounding spaces ignored). Any Inspect model works (``openai/gpt-4o``,
``hf/<label>`` with ``model_args: {model_path: DIR}``, ...).

Each item gets ``difficulty`` set and ``meta.difficulty_by`` = ``{annotator, model}``; verdict ``pass``. A reply
without a valid tag, or a call that keeps failing, leaves the item's difficulty as it was (None for a new
item) with verdict ``unverified`` and the reason. ``overwrite: false`` keeps difficulties items already
have (no call is made for them). Calls are cached (``fleming.llm_calls``); usage goes into the manifest notes.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, PositiveInt

from fleming import QAItem, StageContext, hookimpl
from fleming.llm_calls import LLMRequest, complete_in_stage
from fleming.prompts import render
from fleming.sampling import client_for
from fleming.types import DIFFICULTIES, Verdict

_TAG = re.compile(r"<difficulty>\s*\**\s*([A-Za-z]+)\s*\**\s*</difficulty>", re.IGNORECASE)


def parse_difficulty(text: str) -> str | None:
    """Return the level in the reply's last ``<difficulty>`` tag, or None when there is no valid one."""
    found = _TAG.findall(text or "")
    level = found[-1].lower() if found else None
    return level if level in DIFFICULTIES else None


def difficulty_messages(item: QAItem) -> list[dict[str, str]]:
    """Return the system and user messages that ask for one item's difficulty."""
    return [{"role": "system", "content": render("difficulty_system")},
            {"role": "user", "content": render("difficulty_user", question=item.question,
                                               options=dict(item.options), answer=item.answer)}]


class DifficultyAnnotator:
    """Set each item's difficulty from an LLM's judgement (see the module docstring)."""

    name = "difficulty"

    def __init__(self, model: str, model_args: dict[str, Any] | None = None,
                 temperature: Annotated[float, Field(ge=0)] = 0.0, max_tokens: PositiveInt = 512,
                 overwrite: bool = True, max_connections: PositiveInt = 8,
                 retries: Annotated[int, Field(ge=0)] = 3, backoff: Annotated[float, Field(ge=0)] = 1.0,
                 timeout: Annotated[float, Field(gt=0)] | None = 300.0, cache: bool = True) -> None:
        self.model = model
        self.config = {"temperature": temperature, "max_tokens": max_tokens}
        self.overwrite = overwrite
        self.client = client_for(model, dict(model_args or {}), max_connections, retries, backoff, timeout, cache)

    def verify(self, items: Sequence[QAItem], ctx: StageContext) -> list[Verdict]:
        """Return one verdict per item, each item carrying its new difficulty."""
        todo = [i for i, it in enumerate(items) if self.overwrite or it.difficulty is None]
        requests = [LLMRequest(difficulty_messages(items[i]), self.config) for i in todo]
        results = dict(zip(todo, complete_in_stage(self.client, requests, ctx, f"{self.name}: {len(todo)} items",
                                                   self.name)))
        verdicts: list[Verdict] = []
        for i, item in enumerate(items):
            result = results.get(i)
            if result is None:
                verdicts.append(Verdict(item, "pass", f"kept its difficulty '{item.difficulty}'"))
            elif not result.ok:
                verdicts.append(Verdict(item, "unverified", f"call failed: {result.error}",
                                        {"model": self.model}))
            elif (level := parse_difficulty(result.text or "")) is None:
                reply = " ".join((result.text or "").split())
                verdicts.append(Verdict(item, "unverified", "no <difficulty>easy|moderate|difficult</difficulty> "
                                        f"in the reply: {reply[-160:]!r}", {"model": self.model}))
            else:
                marked = item.replace(difficulty=level, provenance={
                    **item.provenance, "difficulty_by": {"annotator": self.name, "model": self.model}})
                verdicts.append(Verdict(marked, "pass", level, {"model": self.model, "difficulty": level}))
        return verdicts


@hookimpl
def register_verifiers(register: Any) -> None:
    """Register the `difficulty` annotator."""
    register("difficulty", DifficultyAnnotator)
