"""Cached, concurrent, retrying calls to any Inspect model (``openai/gpt-4o``, ``vllm/...``, ``hf/...``).

``LLMClient(model, model_args).complete(requests)`` answers a list of ``LLMRequest(messages, config, trial)``
with one ``LLMResult`` each (text or error, token usage, cost where the provider reports it):

* up to ``max_connections`` requests run at once (asyncio + a semaphore, in a worker thread);
* a call that raises or exceeds ``timeout`` seconds is retried ``retries`` times with exponential backoff
  (``backoff`` · 2^attempt seconds, capped at 60, with jitter); Inspect's own provider retries (rate limits)
  happen inside each attempt. A request that still fails comes back with ``error`` set, never raised;
* every successful result is stored on disk under ``cache_dir()/llm``, keyed by the model name, the model
  args (secrets and credentials left out), the messages, the generate config and the trial index, so a
  re-run makes no new calls (failures are not cached: a re-run tries them again). The model itself is only
  instantiated when some request misses the cache.

``hf/<label>`` models: pass ``model_path`` in the model args; ``device`` defaults to the GPU when there is
one, and ``do_sample`` to true when the temperature is above 0 (Inspect's hf provider needs both).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleming.io import atomic_write_text, secret_values
from fleming.paths import cache_dir

__all__ = ["LLMRequest", "LLMResult", "LLMClient", "UsageTotals", "cache_key", "complete_in_stage"]

_SECRET_ARG = ("key", "token", "secret", "password", "credential", "auth")
CACHE_VERSION = 1


@dataclass(frozen=True)
class LLMRequest:
    """One call: chat messages (``{"role", "content"}``), Inspect ``GenerateConfig`` fields, a trial index."""

    messages: Sequence[Mapping[str, str]]
    config: Mapping[str, Any] = field(default_factory=dict)
    trial: int = 0


@dataclass(frozen=True)
class LLMResult:
    """The answer to one request: `text`, or `error` when every attempt failed."""

    text: str | None
    error: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False
    attempts: int = 0

    @property
    def ok(self) -> bool:
        """True when the call produced text."""
        return self.error is None and self.text is not None


@dataclass
class UsageTotals:
    """What a batch of requests cost: calls made, cache hits, failures, tokens and cost."""

    requests: int = 0
    calls: int = 0
    cached: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None

    def add(self, result: LLMResult) -> None:
        """Count one result."""
        self.requests += 1
        self.cached += result.cached
        self.calls += 0 if result.cached else result.attempts
        self.failed += not result.ok
        if result.cached:
            return
        self.input_tokens += int(result.usage.get("input_tokens") or 0)
        self.output_tokens += int(result.usage.get("output_tokens") or 0)
        if result.usage.get("total_cost") is not None:
            self.cost = (self.cost or 0.0) + float(result.usage["total_cost"])

    def as_dict(self) -> dict[str, Any]:
        """Return the totals for a manifest."""
        return dict(vars(self))


def _public_args(model_args: Mapping[str, Any]) -> dict[str, Any]:
    """Model args without credentials (by name, or by value matching a secret environment variable)."""
    secrets = set(secret_values())
    return {k: v for k, v in model_args.items()
            if not any(s in k.lower() for s in _SECRET_ARG) and not (isinstance(v, str) and v in secrets)}


def _stable(value: Any) -> Any:
    """A JSON-ready stand-in for an arg: callables by qualified name, other objects by type."""
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}"
    return f"<{type(value).__name__}>"


def cache_key(model: str, model_args: Mapping[str, Any], request: LLMRequest) -> str:
    """Return the cache key of one request (sha256 of model, public model args, messages, config, trial)."""
    data = {"v": CACHE_VERSION, "model": model, "args": _public_args(model_args),
            "messages": [dict(m) for m in request.messages], "config": dict(request.config),
            "trial": request.trial}
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=_stable)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _model_args(model: str, model_args: Mapping[str, Any], sampling: bool) -> dict[str, Any]:
    args = dict(model_args)
    if model.startswith("hf/"):
        from fleming.evaluation import _register_info

        if "model_path" in args:
            _register_info(model, str(args["model_path"]))
        args.setdefault("device", _default_device())
        args.setdefault("do_sample", sampling)
    return args


def _default_device() -> str:
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class LLMClient:
    """Calls one Inspect model with caching, concurrency and retries (see the module docstring)."""

    def __init__(self, model: str, model_args: Mapping[str, Any] | None = None, *, max_connections: int = 8,
                 retries: int = 3, backoff: float = 1.0, timeout: float | None = 300.0, use_cache: bool = True,
                 cache_folder: Path | None = None) -> None:
        self.model = model
        self.model_args = dict(model_args or {})
        self.max_connections = max(1, max_connections)
        self.retries = max(0, retries)
        self.backoff = backoff
        self.timeout = timeout
        self.use_cache = use_cache
        self.cache_folder = cache_folder or cache_dir() / "llm"
        self.totals = UsageTotals()
        self._model: Any = None

    # ------------------------------------------------------------ cache

    def _path(self, key: str) -> Path:
        return self.cache_folder / key[:2] / f"{key}.json"

    def _cached(self, key: str) -> LLMResult | None:
        path = self._path(key)
        if not self.use_cache or not path.exists():
            return None
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # a damaged entry is simply asked again
        return LLMResult(text=rec["text"], usage=rec.get("usage") or {}, cached=True, attempts=0)

    def _store(self, key: str, result: LLMResult) -> None:
        if self.use_cache and result.ok:
            atomic_write_text(self._path(key), json.dumps({"model": self.model, "text": result.text,
                                                           "usage": dict(result.usage)}, ensure_ascii=False))

    # ------------------------------------------------------------ calls

    def _get_model(self, sampling: bool) -> Any:
        if self._model is None:
            from inspect_ai.model import get_model

            from fleming.tasks import offline_token_counts

            offline_token_counts()
            self._model = get_model(self.model, **_model_args(self.model, self.model_args, sampling))
        return self._model

    async def _call(self, request: LLMRequest, sem: asyncio.Semaphore) -> LLMResult:
        from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, GenerateConfig

        kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
        messages = [kinds[m["role"]](content=m["content"]) for m in request.messages]
        config = GenerateConfig(**request.config)
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(60.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random()))
            async with sem:
                try:
                    model = self._get_model(bool(request.config.get("temperature")))
                    out = await asyncio.wait_for(model.generate(messages, config=config), self.timeout)
                except asyncio.TimeoutError as exc:  # ours has no message; a provider's usually has one
                    error = f"TimeoutError: {exc}" if str(exc) else f"timed out after {self.timeout:g} s"
                    continue
                except Exception as exc:  # any provider failure: retry, then report it on the item
                    error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                    continue
            usage = out.usage.model_dump(exclude_none=True) if out.usage is not None else {}
            return LLMResult(text=out.completion, usage=usage, attempts=attempt + 1)
        return LLMResult(text=None, error=f"{error} ({self.retries + 1} attempts)", attempts=self.retries + 1)

    async def _run_all(self, todo: list[tuple[int, str, LLMRequest]], out: queue.Queue[Any]) -> None:
        sem = asyncio.Semaphore(self.max_connections)

        async def one(index: int, key: str, request: LLMRequest) -> None:
            result = await self._call(request, sem)
            self._store(key, result)
            out.put((index, result))

        await asyncio.gather(*(one(*t) for t in todo))

    def iter_complete(self, requests: Sequence[LLMRequest]) -> Iterator[tuple[int, LLMResult]]:
        """Yield ``(index, result)`` for every request as it finishes: cache hits first, then live calls."""
        todo: list[tuple[int, str, LLMRequest]] = []
        for i, request in enumerate(requests):
            key = cache_key(self.model, self.model_args, request)
            hit = self._cached(key)
            if hit is not None:
                self.totals.add(hit)
                yield i, hit
            else:
                todo.append((i, key, request))
        if not todo:
            return
        results: queue.Queue[Any] = queue.Queue()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                asyncio.run(self._run_all(todo, results))
            except BaseException as exc:  # surfaced in the caller's thread below
                failure.append(exc)
            finally:
                results.put(None)

        thread = threading.Thread(target=work, name="fleming-llm-calls", daemon=True)
        thread.start()
        while (got := results.get()) is not None:
            self.totals.add(got[1])
            yield got
        thread.join()
        if failure:
            raise failure[0]

    def complete(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """Return one result per request, in order."""
        out: list[LLMResult | None] = [None] * len(requests)
        for i, result in self.iter_complete(requests):
            out[i] = result
        return out  # type: ignore[return-value]


def complete_in_stage(client: LLMClient, requests: Sequence[LLMRequest], ctx: Any, description: str,
                      notes_key: str) -> list[LLMResult]:
    """Run `requests` with the stage's progress bar, then add the usage totals to ``ctx.notes[notes_key]``."""
    out: list[LLMResult | None] = [None] * len(requests)
    stream = client.iter_complete(requests)
    if ctx is not None and hasattr(ctx, "progress"):
        stream = ctx.progress(stream, total=len(requests), description=description)
    for i, result in stream:
        out[i] = result
    if ctx is not None and hasattr(ctx, "notes"):
        ctx.notes[notes_key] = {"model": client.model, **client.totals.as_dict()}
    return out  # type: ignore[return-value]
