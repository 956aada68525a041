"""Inspect model provider ``fleming/<label>``: Inspect's generations made by a fleming generation engine.

``get_model("fleming/<label>", model_path=DIR, engine="hf", engine_args={...}, batch_size=32)`` (or
``inspect eval ... --model fleming/<label> -M model_path=DIR -M engine=openvino``) answers through the engine
named (``auto`` by default, see ``fleming.engines``); without ``model_path`` the label itself is the model (an
alias such as ``tiny-random``, a folder or a hub id). The engine is built when the model is made and loads
its weights on the first batch, in a worker thread.

Inspect calls ``generate`` once per sample, concurrently. Requests with the same generation settings
(``max_tokens``, temperature, seed, ``num_choices``) are gathered into one ``engine.generate`` call: a batch
closes when ``batch_size`` requests wait, or when none has arrived for `GATHER_IDLE` seconds (at most
`GATHER_MAX` after the batch's first), and requests go on joining the next batch while the engine works on one
(one engine call at a time, in a worker thread). Each
caller gets its own output: the completion (``num_choices`` of them), stop reason ``unknown`` and no token
usage (the engine contract returns texts only). Temperature 0 or unset is greedy; a sampling request without
a seed takes the engine call's number (0, 1, 2 ...) as its seed, so repeated batches (epochs) sample anew. Other
generation settings (``top_p``, stop sequences, tools ...) are not part of the engine contract and are
ignored, except tools, which are refused. Importing this module is cheap: no torch.
"""
from __future__ import annotations

import gc
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from inspect_ai.model import (ChatCompletionChoice, ChatMessage, ChatMessageAssistant, GenerateConfig, ModelAPI,
                              ModelOutput, modelapi)
from inspect_ai.tool import ToolChoice, ToolInfo

from fleming.engines import EngineChoice, open_engine, resolve
from fleming.evaluation import DEFAULT_BATCH_SIZE, _register_info
from fleming.errors import StageError
from fleming.models import resolve_model

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_TOKENS", "EngineAPI", "GATHER_IDLE", "GATHER_MAX"]

DEFAULT_MAX_TOKENS = 2048  # what Inspect's own hf provider gives a task that sets none
GATHER_IDLE = 0.1
GATHER_MAX = 2.0
_ARGS = ("model_path", "engine", "engine_args", "batch_size")

Key = tuple[int, float, int | None, int]
"""(max_tokens, temperature, seed, n): requests with equal keys can share an engine call."""


@dataclass(eq=False)
class _Request:
    prompt: list[dict[str, str]]
    wake: anyio.Event = field(default_factory=anyio.Event)
    texts: list[str] | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.texts is not None or self.error is not None


@dataclass(eq=False)
class _Gathering:
    """The requests of one key waiting for the engine; `leader` (always the first) gathers the next batch."""

    queue: list[_Request] = field(default_factory=list)
    leader: _Request | None = None
    arrived: anyio.Event = field(default_factory=anyio.Event)


class EngineAPI(ModelAPI):
    """Inspect's ``ModelAPI`` over a fleming engine (see the module docstring)."""

    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        unknown = sorted(set(model_args) - set(_ARGS))
        if unknown:
            raise ValueError(f"fleming/{model_name}: unknown model arg(s) {', '.join(unknown)} "
                             f"(known: {', '.join(_ARGS)})")
        self.model_path: str = str(model_args.get("model_path") or "")
        choice = EngineChoice.parse({"name": model_args.get("engine") or "auto",
                                     "args": model_args.get("engine_args") or {}},
                                    where=f"fleming/{model_name}: engine")
        self.choice: EngineChoice = resolve(choice)[0]
        self.batch_size = int(model_args.get("batch_size") or DEFAULT_BATCH_SIZE)
        if self.batch_size < 1:
            raise ValueError(f"fleming/{model_name}: batch_size must be at least 1, got {self.batch_size}")
        if self.model_path:
            _register_info(f"fleming/{model_name}", self.model_path)
        self._engine: Any = None
        self._loaded = False
        self._calls = 0
        self._thread_lock = threading.Lock()
        self._open()
        self._loop: Any = None
        self._lock: anyio.Lock | None = None
        self._groups: dict[Key, _Gathering] = {}

    def _open(self) -> None:
        """Build the engine (cheap: it loads nothing until the first batch)."""
        self._engine, self._loaded = open_engine(self.choice, where=f"fleming/{self.model_name}: engine"), False

    # ------------------------------------------------------------ Inspect's side

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
                       config: GenerateConfig) -> ModelOutput:
        """Answer one sample's messages from the engine batch it joins."""
        if tools:
            raise ValueError(f"fleming/{self.model_name}: generation engines take no tools")
        start = time.monotonic()
        texts = await self._submit(batch_key(config, self.max_tokens()), chat_dicts(input))
        choices = [ChatCompletionChoice(message=ChatMessageAssistant(content=text, model=self.model_name,
                                                                     source="generate"), stop_reason="unknown")
                   for text in texts]
        return ModelOutput(model=self.model_name, choices=choices, time=time.monotonic() - start)

    def max_tokens(self) -> int | None:
        """The generation budget of a task that sets none."""
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        """Concurrent requests: two batches' worth, so the next batch gathers while the engine works."""
        return 2 * self.batch_size

    def collapse_user_messages(self) -> bool:
        """Chat templates want user and assistant turns to alternate."""
        return True

    def close(self) -> None:
        """Drop the engine and its weights (its own ``close()`` first, if it has one); a later request opens
        it again."""
        with self._thread_lock:
            closing = getattr(self._engine, "close", None)
            if callable(closing):
                closing()
            self._engine, self._loaded = None, False
        gc.collect()

    # ------------------------------------------------------------ batching

    async def _submit(self, key: Key, prompt: list[dict[str, str]]) -> list[str]:
        """Queue one prompt under `key`; lead the gathering of a batch when it is this request's turn."""
        self._bind_loop()
        group = self._groups.setdefault(key, _Gathering())
        request = _Request(prompt)
        group.queue.append(request)
        group.arrived.set()
        if group.leader is None:
            group.leader = request
        try:
            while not request.done:
                if group.leader is request:
                    await self._gather_and_run(key, group)
                else:
                    await request.wake.wait()
                    request.wake = anyio.Event()
        finally:
            if not request.done:  # cancelled while waiting: leave the queue and hand on the lead
                if request in group.queue:
                    group.queue.remove(request)
                if group.leader is request:
                    _pass_lead(group)
        if request.error is not None:
            raise request.error
        assert request.texts is not None
        return request.texts

    async def _gather_and_run(self, key: Key, group: _Gathering) -> None:
        """Wait for a full batch (or `GATHER_IDLE` seconds without a new request, at most `GATHER_MAX`), then for
        the engine; run the batch and wake its callers."""
        end = anyio.current_time() + GATHER_MAX
        while len(group.queue) < self.batch_size:
            group.arrived = anyio.Event()
            with anyio.move_on_after(max(0.0, min(GATHER_IDLE, end - anyio.current_time()))) as waited:
                await group.arrived.wait()
            if waited.cancelled_caught:
                break
        assert self._lock is not None
        async with self._lock:  # one engine call at a time; meanwhile requests go on joining the queue
            batch = group.queue[:self.batch_size]
            del group.queue[:self.batch_size]
            _pass_lead(group)
            with anyio.CancelScope(shield=True):  # a started batch always reaches all of its callers
                try:
                    outs = await anyio.to_thread.run_sync(self._run, key, [r.prompt for r in batch])
                    for r, texts in zip(batch, outs):
                        r.texts = texts
                except Exception as exc:  # every caller of the batch gets the engine's error
                    for r in batch:
                        r.error = exc
                finally:
                    for r in batch:
                        r.error = r.error if r.done else RuntimeError("the engine call was interrupted")
                        r.wake.set()

    def _bind_loop(self) -> None:
        """Make the batching state for the running event loop (a memoized model may outlive one eval)."""
        token = anyio.lowlevel.current_token()
        if self._loop != token:
            self._loop, self._lock, self._groups = token, anyio.Lock(), {}

    def _run(self, key: Key, prompts: list[list[dict[str, str]]]) -> list[list[str]]:
        """One engine call (in a worker thread), loading the model first when needed."""
        max_tokens, temperature, seed, n = key
        with self._thread_lock:
            if self._engine is None:
                self._open()
            if not self._loaded:
                self._engine.load(self.model_path or _model_of(self.model_name))
                self._loaded = True
            self._calls += 1
            out = self._engine.generate(prompts, n=n, temperature=temperature, max_tokens=max_tokens,
                                        seed=self._calls - 1 if seed is None else seed)
        if len(out) != len(prompts) or any(len(texts) != n for texts in out):
            raise StageError(f"fleming/{self.model_name}: engine '{self.choice.name}' returned "
                             f"{[len(t) for t in out]} completions for {len(prompts)} prompts (expected {n} each)")
        return [list(texts) for texts in out]


def _pass_lead(group: _Gathering) -> None:
    """Make the first waiting request the leader of the next batch (none when nothing waits)."""
    group.leader = group.queue[0] if group.queue else None
    if group.leader is not None:
        group.leader.wake.set()


def _model_of(label: str) -> str:
    """The model a label without ``model_path`` names: an alias's folder, else the label (folder or hub id)."""
    return resolve_model(label).path


def batch_key(config: GenerateConfig, default_max_tokens: int | None) -> Key:
    """The engine settings of a request: greedy (seed 0) unless a temperature above 0 is set; an unset seed
    (None) becomes the engine call's number, so batches sampled one after another differ."""
    temperature = float(config.temperature or 0.0)
    seed = (None if config.seed is None else int(config.seed)) if temperature > 0 else 0
    return (int(config.max_tokens or default_max_tokens or DEFAULT_MAX_TOKENS), temperature, seed,
            int(config.num_choices or 1))


def chat_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Inspect's chat messages as the engine's plain ``{role, content}`` dicts."""
    return [{"role": m.role, "content": m.text} for m in messages]


@modelapi(name="fleming")
def fleming_engines() -> type[ModelAPI]:
    """The ``fleming`` provider: models answered by a fleming generation engine."""
    return EngineAPI
