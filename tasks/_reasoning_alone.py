"""The reasoning-alone check (MedReason's test): does a right answer's reasoning, with the answer cut, lead a judge
model to that answer?

What `cut_reasoning` removes from a completion (the answer is read with ``fleming.answers.extract_answer``, strict,
else lenient; no other parser is involved):

1. the first ``<answer>`` tag and everything after it (the tag, and whatever the model wrote once it had answered);
2. then, from the end, one sentence or line at a time, every *closing statement* of the answer: a sentence that
   names the answer, by its letter (the lenient parser asked for that letter alone finds it, e.g. "B", "(B)",
   "option B") or by its option text (whole words, any case), and either reads as a conclusion (a word from
   `CONCLUSION`: "therefore", "so", "answer", "correct", "most likely" ...) or holds nothing but the answer
   ("B. Metformin."); and a bare heading such as "Final answer:" or "Therefore, the answer is:", or a line of
   punctuation only ("---").

The cut stops at the first sentence from the end that is not a closing statement, so the answer named earlier
in the reasoning (weighing the options, "metformin lowers hepatic glucose output") is kept; a conclusion that
paraphrases the option text instead of quoting it is kept too.

`judge_reasoning` scores one sample: samples whose strict answer is wrong (or missing) get NaN, which Inspect
leaves out of the metrics (it counts them as unscored), so the ``reasoning_alone`` score's ``mean`` is the share
of right answers whose reasoning alone leads to them. A right answer whose cut is empty scores 0.0 without a
call. Otherwise the judge (`judge`, else the model bound to Inspect's ``judge`` role, else the evaluated model)
gets ``prompts/reasoning_alone_judge.jinja`` (question, options, cut reasoning) as one user message, at
temperature 0 with `JUDGE_MAX_TOKENS`; the sample scores 1.0 when its reply's strict answer is the right letter,
else 0.0. A judge call that fails after Inspect's own retries fails the sample, as a failed generation does.

Judge replies go through Inspect's generate cache (no expiry, shared across epochs; Inspect's cache folder,
``INSPECT_CACHE_DIR``): a re-run of the same evaluation makes no new judge calls. Inspect keys the cache by the
model's name, not its weights, so for a local model (a ``model_path`` model arg, or a provider such as
``fleming/<label>`` or ``hf/<label>`` whose label is a folder) a digest of the weight files' contents joins the
key: a checkpoint retrained under the same label is asked anew.
"""
from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from fleming.answers import extract_answer, reasoning_end, strip_end
from fleming.pipeline.rundir import file_digest, hash_outputs
from fleming.prompts import render

__all__ = ["CONCLUSION", "JUDGE_MAX_TOKENS", "cut_reasoning", "judge_reasoning", "weights_fingerprint",
           "weights_path"]

JUDGE_MAX_TOKENS = 128
"""The judge's budget: the letter in its tag, with room for a short sentence before it."""

CONCLUSION = ("therefore", "thus", "hence", "so", "consequently", "in conclusion", "in summary", "overall",
              "answer", "correct", "best", "final", "option", "choice", "most likely", "most appropriate",
              "most consistent")
"""Words that make a sentence naming the answer a conclusion rather than a step of the reasoning."""

_CONCLUSION = re.compile(r"\b(?:" + "|".join(w.replace(" ", r"\s+") for w in CONCLUSION) + r")\b", re.IGNORECASE)
_HEADING = {"final", "answer", "answers", "conclusion", "the", "correct", "option", "choice", "is", "my", "best",
            "therefore", "thus", "hence", "so", "in", "summary"}
_BREAK = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")
_WORD = re.compile(r"[^\W_]+")
_LOCAL_PROVIDERS = ("hf", "fleming", "vllm", "sglang")

Judged = tuple[float, dict[str, Any] | None]
"""One sample's value and its details for the score's metadata."""


def cut_reasoning(completion: str, options: Mapping[str, str]) -> str:
    """Return `completion`'s reasoning without its answer tag and closing statements (see the module docstring);
    `options` maps each option letter to its text."""
    letters = list(options)
    answer = extract_answer(completion, letters) or extract_answer(completion, letters, "lenient")
    text = strip_end(completion[:reasoning_end(completion)])
    while text:
        breaks = list(_BREAK.finditer(text))
        head, last = (text[:breaks[-1].start()], text[breaks[-1].end():]) if breaks else ("", text)
        if not _closing(last, answer, options.get(answer) if answer else None):
            break
        text = strip_end(head)
    return text.strip()


def _closing(sentence: str, answer: str | None, option: str | None) -> bool:
    """Whether `sentence` is a closing statement of `answer` (whose option text is `option`)."""
    words = [w.lower() for w in _WORD.findall(sentence)]
    if all(w in _HEADING for w in words):  # a heading, or a line of punctuation only ("---", "**")
        return True
    by_letter = answer is not None and extract_answer(sentence, [answer], "lenient") == answer
    text = " ".join((option or "").split())
    by_text = bool(text) and re.search(r"(?<!\w)" + r"\s+".join(map(re.escape, text.split())) + r"(?!\w)",
                                       sentence, re.IGNORECASE) is not None
    if not (by_letter or by_text):
        return False
    if _CONCLUSION.search(sentence):
        return True
    named = {w.lower() for w in _WORD.findall(text)} | ({answer.lower()} if answer else set())
    return all(w in named for w in words)


# ---------------------------------------------------------------- the judge

async def judge_reasoning(state: Any, answer: str, right: bool, judge: str | None) -> Judged:
    """Return one sample's ``reasoning_alone`` value and details (``cut``, ``judge_answer``, ``judge``): NaN and
    None for a sample whose strict answer is not right, else 1.0 when the judge, shown the cut reasoning, picks
    `answer`, and 0.0 otherwise."""
    if not right:
        return math.nan, None
    from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model

    metadata = state.metadata or {}
    options = metadata["options"]
    cut = cut_reasoning(state.output.completion if state.output else "", options)
    model = get_model(judge) if judge else get_model(role="judge")
    details: dict[str, Any] = {"cut": cut, "judge_answer": None, "judge": str(model)}
    if not cut:
        return 0.0, details
    prompt = render("reasoning_alone_judge", question=metadata.get("question") or _question(state),
                    options=options, reasoning=cut)
    out = await model.generate([ChatMessageUser(content=prompt)],
                               config=GenerateConfig(temperature=0.0, max_tokens=JUDGE_MAX_TOKENS),
                               cache=await _cache_policy(model))
    details["judge_answer"] = extract_answer(out.completion, list(options))
    return float(details["judge_answer"] == answer), details


def _question(state: Any) -> str:
    """The question of a sample whose metadata lacks it: the evaluation prompt's text (options included)."""
    return str(state.input_text)


async def _cache_policy(model: Any) -> Any:
    """Inspect's cache policy for judge calls: kept for good, shared across epochs, keyed by the judge's weights
    where the model is local."""
    import anyio.to_thread
    from inspect_ai.model import CachePolicy

    scopes = {"fleming": "reasoning_alone"}
    path = weights_path(model)
    if path is not None:
        scopes["weights"] = await anyio.to_thread.run_sync(weights_fingerprint, path)
    return CachePolicy(expiry=None, per_epoch=False, scopes=scopes)


def weights_path(model: Any) -> str | None:
    """The local weights an Inspect model answers from: its ``model_path`` arg, else the label of a local provider
    when that names a file or folder; None for anything else (a hosted model, ``mockllm/model``)."""
    path = (getattr(model, "model_args", None) or {}).get("model_path") or getattr(model.api, "model_path", None)
    if not path and str(model).split("/", 1)[0] in _LOCAL_PROVIDERS:
        path = model.api.model_name
    return str(path) if path and Path(str(path)).expanduser().exists() else None


_lock = threading.Lock()


def weights_fingerprint(path: str) -> str:
    """Return a digest of the contents of the weights at `path` (a folder: every file's name and bytes; a file:
    its bytes), computed once per process for as long as no file's size or modification time changes."""
    root = Path(path).expanduser().resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    with _lock:  # concurrent samples wait for the one digest instead of each reading the weights
        return _content_digest(str(root), stats)


@lru_cache(maxsize=16)
def _content_digest(root: str, stats: tuple[tuple[str, int, int], ...]) -> str:
    path = Path(root)
    return hash_outputs(path) if path.is_dir() else file_digest(path)
