"""Engine `hf`: HF transformers, the reference every other engine is measured against.

On ``device`` (``auto``, the default: the first CUDA GPU when one is visible, else the CPU; or ``cpu``,
``cuda``, ``cuda:N``), in fp32 by default (``dtype: bfloat16`` is faster on CPUs with AMX and on GPUs, but its
answers drift from fp32's); prompts in batches of ``batch_size`` (default: each ``generate`` call's prompts as
one batch, so a caller's batches are kept as they are) with left padding, posed with the tokenizer's chat
template (plain text joined by blank lines when it has none). Sampling uses ``num_return_sequences=n``;
temperature 0 is greedy, generated once per prompt and copied n times. ``torch.manual_seed(seed)`` is set once
per ``generate`` call, before its first batch.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import PositiveInt, StringConstraints

from fleming import hookimpl
from fleming.errors import StageError
from fleming.formats import prompt_text


class HfEngine:
    """Sample with ``transformers``' ``generate`` (see the module docstring)."""

    def __init__(self, model: str | None = None, dtype: Literal["float32", "bfloat16"] = "float32",
                 batch_size: PositiveInt | None = None,
                 device: Annotated[str, StringConstraints(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto") -> None:
        self.model_path, self.dtype, self.batch_size, self.device = model, dtype, batch_size, device
        self._model: Any = None
        self._tok: Any = None

    @staticmethod
    def unavailable() -> str | None:
        """The reference engine runs wherever fleming does (transformers is a core dependency): never a reason."""
        return None

    def load(self, model_path: str) -> None:
        """Load the tokenizer and weights of `model_path` (replacing any loaded before)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_path)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, self.dtype))
        model.to(self._device(torch))
        model.eval()
        self._tok, self._model, self.model_path = tok, model, model_path

    def _device(self, torch: Any) -> str:
        """The device to load onto: `device`, with ``auto`` the first CUDA GPU when one is visible."""
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise StageError(f"engine 'hf': device {self.device!r} asked for, but no CUDA GPU is visible "
                             "(use device: auto or cpu)")
        return self.device

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, seed: int = 0) -> list[list[str]]:
        """Return `n` completions per prompt, in order; greedy when `temperature` is 0."""
        import torch

        if self._model is None:
            if self.model_path is None:
                raise StageError("engine 'hf': no model to generate with (call load(model_path) first)")
            self.load(self.model_path)
        tok, model = self._tok, self._model
        texts = [prompt_text(tok, messages) for messages in prompts]
        sample = temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": tok.pad_token_id}
        if sample:
            kwargs.update(do_sample=True, temperature=temperature, num_return_sequences=n)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        per_prompt = n if sample else 1
        torch.manual_seed(seed)
        out: list[list[str]] = []
        size = self.batch_size or max(1, len(texts))
        for start in range(0, len(texts), size):
            enc = tok(texts[start:start + size], return_tensors="pt", padding=True,
                      add_special_tokens=False).to(model.device)
            with torch.no_grad():
                ids = model.generate(**enc, **kwargs)
            done = tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for j in range(0, len(done), per_prompt):
                got = done[j:j + per_prompt]
                out.append(got if sample else got * n)
        return out


@hookimpl
def register_engines(register: Any) -> None:
    """Register the `hf` engine."""
    register("hf", HfEngine)
