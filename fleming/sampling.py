"""Sampling k answers per item from a model, posed exactly as the evaluation poses them.

The LLM verifiers (``label-check``, ``pass-rate``) and any third-party one that needs a model's answers share
this: each item is asked `k` times with the evaluation prompt (``fleming.formats.chat_messages``) and every
reply is read with the one answer parser in both modes. A hosted model (``openai/...``, ``anthropic/...``)
answers through the cached, retrying ``fleming.llm_calls.LLMClient`` (`sample_answers`); a local one (an alias
such as ``tiny-random``, a HF model folder, ``hf/<label>`` or ``fleming/<label>``, see `local_model`) through a
generation engine, k samples per item in one engine call per batch of items (`sample_with_engine`, with the
engine `engine_for` picks: the verifier's own, else the run's, else ``auto``).
"""
from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fleming import build_component
from fleming.answers import extract_answer
from fleming.engines import EngineChoice, open_engine, resolve
from fleming.errors import StageError
from fleming.formats import chat_messages
from fleming.io import atomic_write_text
from fleming.llm_calls import LLMClient, LLMRequest, cache_key, complete_in_stage
from fleming.models import ALIASES, resolve_model
from fleming.paths import cache_dir
from fleming.types import QAItem

if TYPE_CHECKING:
    from fleming.protocols import Engine

__all__ = ["Trials", "check_engine", "client_for", "engine_for", "local_model", "sample_answers",
           "sample_with_engine"]


@dataclass(frozen=True)
class Trials:
    """One item's k answers: strict and lenient letters (None: no answer), errors of failed calls."""

    answers: list[str | None]
    lenient: list[str | None]
    errors: list[str]

    def correct(self, answer: str, mode: Literal["strict", "lenient"] = "strict") -> int:
        """How many answers, read in `mode`, equal `answer`."""
        return sum(a == answer for a in (self.answers if mode == "strict" else self.lenient))


def client_for(model: str, model_args: dict[str, Any], max_connections: int, retries: int, backoff: float,
               timeout: float | None, cache: bool) -> LLMClient:
    """Build a cached, retrying client for the Inspect model `model`."""
    return LLMClient(model, model_args, max_connections=max_connections, retries=retries, backoff=backoff,
                     timeout=timeout, use_cache=cache)


def sample_answers(client: LLMClient, items: Sequence[QAItem], k: int, config: dict[str, Any], ctx: Any,
                   name: str, seed: int | None = None) -> list[Trials]:
    """Ask `client` each item `k` times with the evaluation prompt and parse every answer.

    `config` is the generation config (temperature, max_tokens); with `seed`, trial ``t`` uses ``seed + t``.
    `ctx` (the stage context, or None) gets the progress bar and usage notes under `name`.
    """
    requests = [LLMRequest(chat_messages(it), {**config, **({"seed": seed + t} if seed is not None else {})}, t)
                for it in items for t in range(k)]
    results = complete_in_stage(client, requests, ctx, f"{name}: {len(items)} items × {k}", name)
    out: list[Trials] = []
    for n, it in enumerate(items):
        got = results[n * k:(n + 1) * k]
        out.append(_parsed(it, [r.text if r.ok else None for r in got],
                           [r.error for r in got if not r.ok and r.error]))
    return out


def _parsed(item: QAItem, texts: Sequence[str | None], errors: list[str]) -> Trials:
    """Read every reply (None: the call failed) with the one answer parser, strict and lenient."""
    letters = list(item.options)
    return Trials(answers=[extract_answer(t, letters) if t is not None else None for t in texts],
                  lenient=[extract_answer(t, letters, mode="lenient") if t is not None else None for t in texts],
                  errors=errors)


# ---------------------------------------------------------------- local models, through an engine

def local_model(model: str, model_args: Mapping[str, Any] | None = None) -> str | None:
    """Return the local model `model` names (cheap: nothing is built or loaded): an alias (``tiny-random``), a HF
    model folder, or for ``hf/<label>`` / ``fleming/<label>`` their ``model_path`` arg, else the label; None for
    any other Inspect model (a hosted one, ``mockllm/model`` ...), which answers through ``LLMClient``."""
    args = dict(model_args or {})
    if model in ALIASES:
        return model
    provider, _, label = model.partition("/")
    if provider in ("hf", "fleming") and label:
        return str(args.get("model_path") or label)
    if (Path(model).expanduser() / "config.json").is_file():
        return str(Path(model).expanduser().resolve())
    return None


def check_engine(engine: str | None, engine_args: Mapping[str, Any] | None) -> None:
    """Check a component's ``engine`` / ``engine_args`` args (the engine is built, which loads nothing);
    ValueError naming the problem."""
    if engine is None:
        if engine_args:
            raise ValueError("engine_args needs engine: name the engine the args are for")
        return
    choice = EngineChoice.parse({"name": engine, "args": dict(engine_args or {})})
    if choice.name != "auto":
        build_component("engines", choice.name, dict(choice.args), where="engine")


def engine_for(ctx: Any, engine: str | None = None, engine_args: Mapping[str, Any] | None = None,
               where: str = "engine") -> EngineChoice:
    """Return the concrete engine a component samples a local model with: `engine` (with `engine_args`) when
    given, else the run's; through ``ctx.engine_for`` (which applies ``fleming run --engine``) when the context
    has it, else ``ctx.engine`` or ``auto``, resolved here (a line on `ctx` says when ``auto`` fell back)."""
    ask = getattr(ctx, "engine_for", None)
    if callable(ask):
        return ask(engine, engine_args, where)
    if engine is not None:
        choice = EngineChoice.parse({"name": engine, "args": dict(engine_args or {})}, where)
    else:
        choice = EngineChoice.parse(getattr(ctx, "engine", None), where)
    concrete, note = resolve(choice)
    if note and hasattr(ctx, "log"):
        ctx.log(note)
    return concrete


def sample_with_engine(engine: Engine | EngineChoice, items: Sequence[QAItem], k: int, *, temperature: float,
                       max_tokens: int, seed: int | None = None, ctx: Any = None, name: str = "sampling",
                       model: str | None = None, cache: bool = False, batch_size: int = 16) -> list[Trials]:
    """Sample `k` answers per item through a generation engine and parse every answer.

    One ``engine.generate`` call per batch of `batch_size` items (k completions each), with the stage's
    progress bar; batch 0 uses `seed` (None: the stage's seed), later batches a seed derived from it.
    `engine` is a built engine (loaded, or loaded here with `model`: a folder, hub id or alias) or an
    `EngineChoice`, opened with `model` only when some item is not in the cache. With `cache` (an
    `EngineChoice` only), each item's answers are kept on disk, keyed by the engine, its args, the model, the
    messages and the settings, so a re-run samples nothing again. A batch whose call fails gives its items the
    error (k failed trials each). Counts go into ``ctx.notes[name]`` with the model and the engine.
    """
    seed = seed if seed is not None else int(getattr(ctx, "seed", 0) or 0)
    choice = engine if isinstance(engine, EngineChoice) else None
    settings = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed, "k": k}
    keys = [_sample_key(choice, model, it, settings) if cache and choice else None for it in items]
    texts: list[list[str] | None] = [_cached(key) for key in keys]
    todo = [i for i, got in enumerate(texts) if got is None]
    errors: dict[int, str] = {}
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    totals = {"requests": len(items) * k, "cached": (len(items) - len(todo)) * k, "calls": 0, "failed": 0}
    if batches:
        live = _opened(engine, model, name)
        label = f"{name}: {len(todo)} items × {k}" + (f", {len(batches)} batches" if len(batches) > 1 else "")
        progress = getattr(ctx, "progress", None)
        for b, batch in enumerate(progress(batches, description=label) if progress else batches):
            try:
                got = live.generate([chat_messages(items[i]) for i in batch], n=k, temperature=temperature,
                                    max_tokens=max_tokens, seed=_batch_seed(seed, b))
            except Exception as exc:  # the batch's items end unverified with the error; the stage goes on
                message = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                errors.update(dict.fromkeys(batch, message))
                totals["failed"] += len(batch) * k
                continue
            finally:
                totals["calls"] += 1
            if len(got) != len(batch) or any(len(g) != k for g in got):
                raise StageError(f"{name}: engine returned {[len(g) for g in got]} answers for {len(batch)} "
                                 f"prompts (expected {k} each)")
            for i, answers in zip(batch, got):
                texts[i] = list(answers)
                _store(keys[i], texts[i])
    if ctx is not None and hasattr(ctx, "notes"):
        ctx.notes[name] = {"model": model, **({"engine": choice.record()} if choice else {}), **totals}
    return [_parsed(it, got if got is not None else [None] * k, [errors[i]] * k if i in errors else [])
            for i, (it, got) in enumerate(zip(items, texts))]


def _opened(engine: Engine | EngineChoice, model: str | None, name: str) -> Engine:
    """The engine to sample with, its model (an alias's folder built once) loaded; a failure is one line."""
    try:
        if model in ALIASES:
            model = resolve_model(model).path
        if isinstance(engine, EngineChoice):
            return open_engine(engine, model, where=f"{name}: engine")
        if model is not None:
            engine.load(model)
        return engine
    except Exception as exc:
        raise StageError(f"{name}: the engine could not load {model}: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:300]}") from exc


def _batch_seed(seed: int, batch: int) -> int:
    """Return the seed of batch `batch`: `seed` for the first, one derived from it for each later batch."""
    return seed if batch == 0 else random.Random(f"{seed}/batch/{batch}").randrange(2 ** 31)


def _sample_key(choice: EngineChoice, model: str | None, item: QAItem, settings: dict[str, Any]) -> str:
    request = LLMRequest(chat_messages(item), settings, 0)
    return cache_key(f"engine:{choice.name}", {"engine_args": dict(choice.args), "model": model}, request)


def _path(key: str) -> Path:
    return cache_dir() / "samples" / key[:2] / f"{key}.json"


def _cached(key: str | None) -> list[str] | None:
    if key is None or not _path(key).exists():
        return None
    try:
        texts = json.loads(_path(key).read_text(encoding="utf-8"))["texts"]
    except (OSError, ValueError, KeyError):
        return None  # a damaged entry is simply sampled again
    return [str(t) for t in texts] if isinstance(texts, list) else None


def _store(key: str | None, texts: list[str]) -> None:
    if key is not None:
        atomic_write_text(_path(key), json.dumps({"texts": texts}, ensure_ascii=False))
