"""Engine `vllm`: vLLM on a CUDA GPU (``pip install 'fleming-med[vllm]'``), for fast sampling in RL and evaluation.

Prompts are posed exactly as the `hf` engine poses them (the tokenizer's chat template, no special tokens added)
and go to vLLM as token ids in one ``LLM.generate`` call; temperature 0 is greedy, generated once per prompt and
copied n times. Sampling filters mirror what HF ``generate`` uses for the checkpoint: its ``generation_config.json``
top-k / top-p / repetition penalty, else HF's defaults (top-k 50). Each prompt gets its own sampling seed, drawn
from ``seed`` (vLLM gives the n samples of a prompt that seed + 0, 1, ...): the same seed and inputs give the same
samples, and no two prompts share a random stream.

``load(path)`` builds the ``vllm.LLM`` on its first call (``gpu_memory_utilization`` 0.5 by default, so a trainer
can share the GPU). A later ``load`` of a folder of the same architecture updates the weights in place, the route
vLLM documents for RL since 0.8: a worker extension (``worker_extension_cls``) whose methods ``collective_rpc``
runs in every worker, each reading the folder's safetensors into its model's ``load_weights``; the prefix cache is
then reset. The tokenizer stays the first folder's. Another architecture, or a folder without safetensors, builds
a new LLM.

Optional engine method ``load_state_dict(named_tensors)``: take new weights from memory (HF parameter names to
tensors, e.g. ``policy.state_dict()``) with no folder written; a trainer calls it when the engine has it. The
tensors go to the workers in chunks, through CPU memory.

vLLM runs its engine in a child process: a script that builds this engine needs an ``if __name__ == "__main__":``
guard.
"""
from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt

from fleming import hookimpl
from fleming.errors import MissingDependencyError, StageError
from fleming.formats import prompt_text
from fleming.protocols import Requirement

INSTALL = "pip install 'fleming-med[vllm]'"
EXTENSION = f"{__name__}.WeightLoader"
CHUNK_BYTES = 512 << 20
"""`load_state_dict` sends the workers at most about this many bytes of tensors per call."""
SAME_ARCHITECTURE = ("architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "intermediate_size", "vocab_size", "tie_word_embeddings")
"""config.json fields that must match for a `load` to update the weights in place."""


class WeightLoader:
    """Methods vLLM mixes into each of its workers (``worker_extension_cls``); ``collective_rpc`` calls them."""

    def _fleming_model(self) -> Any:
        runner: Any = self.model_runner  # type: ignore[attr-defined]
        return runner.get_model() if hasattr(runner, "get_model") else runner.model

    def fleming_load_folder(self, path: str) -> int:
        """Load every safetensors file of the HF folder `path` into this worker's model; return the tensor count."""
        from safetensors import safe_open

        device = str(getattr(self, "device", None) or "cpu")
        count = 0
        for file in sorted(Path(path).glob("*.safetensors")):
            with safe_open(str(file), framework="pt", device=device) as fh:
                names = list(fh.keys())
                self._fleming_model().load_weights(weights=((name, fh.get_tensor(name)) for name in names))
                count += len(names)
        return count

    def fleming_load_tensors(self, named: list[tuple[str, Any]]) -> int:
        """Load (HF name, tensor) pairs into this worker's model; return how many."""
        self._fleming_model().load_weights(weights=named)
        return len(named)

    def fleming_weights_loaded(self) -> None:
        """Finish an update: let each layer post-process its new weights (vLLM's own step after loading)."""
        import torch

        try:
            from vllm.model_executor.model_loader.utils import process_weights_after_loading
        except ImportError:  # vLLM before 0.9 has no such step
            return
        process_weights_after_loading(self._fleming_model(), self.model_config,  # type: ignore[attr-defined]
                                      self.device)  # type: ignore[attr-defined]
        if torch.cuda.is_available():
            torch.cuda.synchronize()


class VllmEngine:
    """Sample with vLLM's offline ``LLM`` (see the module docstring)."""

    def __init__(self, model: str | None = None,
                 gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.5,
                 dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto",
                 max_model_len: PositiveInt | None = None, enforce_eager: bool = False,
                 tensor_parallel_size: PositiveInt = 1) -> None:
        self.model_path = model
        self.options: dict[str, Any] = {"gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype,
                                        "enforce_eager": enforce_eager, "tensor_parallel_size": tensor_parallel_size}
        if max_model_len is not None:
            self.options["max_model_len"] = max_model_len
        self._llm: Any = None
        self._config: dict[str, Any] = {}
        self._filters: dict[str, Any] = {}

    @staticmethod
    def unavailable() -> str | None:
        """Why vLLM cannot run here (not installed, no CUDA GPU, fails to import), or None when it can."""
        try:
            missing = importlib.util.find_spec("vllm") is None
        except (ImportError, ValueError):  # a module put in sys.modules without a spec is installed enough
            missing = False
        if missing:
            return f"vllm is not installed; {INSTALL} on a GPU machine"
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU is visible (vLLM runs on GPUs only)"
        try:
            importlib.import_module("vllm")
        except Exception as exc:  # a broken install: say so instead of failing later
            return f"vllm does not import: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
        return None

    def requirements(self) -> list[Requirement]:
        """vLLM, on a CUDA GPU."""
        return [Requirement("vllm", "engine 'vllm' samples with it", f"{INSTALL} (GPU machines)")]

    def load(self, model_path: str) -> None:
        """Take the weights of `model_path`: in place when an LLM of the same architecture is running, else build
        a new ``vllm.LLM``."""
        config = _json(Path(model_path) / "config.json")
        same = self._llm is not None and bool(config) and all(config.get(k) == self._config.get(k)
                                                              for k in SAME_ARCHITECTURE)
        if same and any(Path(model_path).glob("*.safetensors")):
            self._llm.collective_rpc("fleming_load_folder", args=(str(Path(model_path).resolve()),))
            self._weights_changed()
        else:
            self.close()
            vllm = _vllm()
            self._llm = vllm.LLM(model=str(model_path), worker_extension_cls=EXTENSION, **self.options)
        self._config, self._filters, self.model_path = config, _filters(model_path), model_path

    def load_state_dict(self, named_tensors: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Take new weights from memory: HF parameter names to tensors of the loaded architecture."""
        if self._llm is None:
            raise StageError("engine 'vllm': no model loaded to update (call load(model_path) first)")
        pairs = named_tensors.items() if isinstance(named_tensors, Mapping) else named_tensors
        for chunk in _chunks(pairs, CHUNK_BYTES):
            self._llm.collective_rpc("fleming_load_tensors", args=(chunk,))
        self._weights_changed()

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, seed: int = 0) -> list[list[str]]:
        """Return `n` completions per prompt, in order; greedy when `temperature` is 0."""
        if self._llm is None:
            if self.model_path is None:
                raise StageError("engine 'vllm': no model to generate with (call load(model_path) first)")
            self.load(self.model_path)
        if not prompts:
            return []
        vllm = _vllm()
        tok = self._llm.get_tokenizer()
        requests = [{"prompt_token_ids": tok.encode(prompt_text(tok, messages), add_special_tokens=False)}
                    for messages in prompts]
        sample = temperature > 0
        rng = random.Random(seed)
        params = [vllm.SamplingParams(n=n, temperature=temperature, max_tokens=max_tokens,
                                      seed=rng.randrange(2**31), **self._filters) if sample
                  else vllm.SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens, seed=seed)
                  for _ in requests]
        outputs = self._llm.generate(requests, params, use_tqdm=False)
        if len(outputs) != len(requests):
            raise StageError(f"engine 'vllm': asked for {len(requests)} prompts, got {len(outputs)} answers")
        texts = [[c.text for c in out.outputs] for out in outputs]
        return texts if sample else [got[:1] * n for got in texts]

    def close(self) -> None:
        """Shut the running LLM down and free its GPU memory (a later `load` builds a new one)."""
        if self._llm is None:
            return
        core = getattr(getattr(self._llm, "llm_engine", None), "engine_core", None)
        if callable(getattr(core, "shutdown", None)):
            core.shutdown()
        self._llm = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _weights_changed(self) -> None:
        self._llm.collective_rpc("fleming_weights_loaded")
        if callable(getattr(self._llm, "reset_prefix_cache", None)):
            self._llm.reset_prefix_cache()  # cached prefixes hold keys and values of the old weights


def _vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise MissingDependencyError(f"engine 'vllm' needs vLLM: {INSTALL} (GPU machines)") from exc
    return vllm


def _json(path: Path) -> dict[str, Any]:
    """A model folder's JSON file; {} when there is none (a hub id: vLLM reads it, never updated in place)."""
    try:
        got = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return got if isinstance(got, dict) else {}


def _filters(model_path: str) -> dict[str, Any]:
    """The sampling filters HF ``generate`` applies for this checkpoint, as ``SamplingParams`` fields."""
    gen = _json(Path(model_path) / "generation_config.json")
    top_k, top_p = gen.get("top_k"), gen.get("top_p")
    top_k = 50 if top_k is None else top_k  # HF's default; 0 turns it off
    penalty = gen.get("repetition_penalty")
    out: dict[str, Any] = {"top_k": top_k} if top_k else {}
    if top_p is not None and top_p < 1:
        out["top_p"] = top_p
    if penalty is not None and penalty != 1:
        out["repetition_penalty"] = penalty
    return out


def _chunks(pairs: Iterable[tuple[str, Any]], limit: int) -> Iterator[list[tuple[str, Any]]]:
    """Group (name, tensor) pairs, detached and on the CPU, into lists of about `limit` bytes."""
    chunk: list[tuple[str, Any]] = []
    size = 0
    for name, tensor in pairs:
        cpu = tensor.detach().to("cpu").contiguous()
        chunk.append((name, cpu))
        size += cpu.numel() * cpu.element_size()
        if size >= limit:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@hookimpl
def register_engines(register: Any) -> None:
    """Register the `vllm` engine."""
    register("vllm", VllmEngine)
