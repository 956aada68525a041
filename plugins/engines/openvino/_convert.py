"""Converting a HF causal LM folder to an OpenVINO model that OpenVINO GenAI can run, without optimum-intel.

The model is traced once through ``openvino.convert_model`` with its KV cache passed as flat tensors (a
``DynamicCache`` whose layers hold them), then made stateful the way GenAI expects: inputs ``input_ids``,
``attention_mask``, ``position_ids`` and ``beam_idx`` (a Gather on each cache input), the cache kept in state
variables. Weights are stored as fp16 (``weights: fp32`` keeps them full width); the tokenizer is converted
with ``openvino_tokenizers``. Conversions are cached under fleming's cache folder, keyed by the content of the
checkpoint's files and the OpenVINO version, written to a temporary folder and renamed when whole, so an
interrupted conversion is never taken for a finished one. The cache keeps the `KEEP` most recently used
conversions (RL converts the policy at every weight sync); older ones are removed.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from fleming.io import atomic_dir, cache_dir

FORMAT = 1  # bump when the conversion changes what it writes
DONE = "fleming-converted.json"
KEEP = 8
_COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
           "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt", "tokenizer.model")


def content_key(model_dir: Path, weights: str) -> str:
    """A digest of every file of `model_dir` (names and bytes), the OpenVINO version and the settings."""
    import openvino

    digest = hashlib.sha256(f"{FORMAT}|{openvino.__version__}|{weights}".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(model_dir)).encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:24]


def converted(model_dir: str | Path, weights: str = "fp16", status: Any = None) -> Path:
    """Return the cached OpenVINO folder of `model_dir`, converting it first when missing or half-written."""
    model_dir = Path(model_dir)
    target = cache_dir() / "openvino" / content_key(model_dir, weights)
    if (target / DONE).exists():
        (target / DONE).touch()  # most recently used
        return target
    if target.exists():  # no completion mark: an interrupted conversion, never reused
        shutil.rmtree(target, ignore_errors=True)
    if status is not None:
        status(f"converting {model_dir.name} for OpenVINO (once per checkpoint) into {target}")
    with atomic_dir(target) as tmp:
        convert(model_dir, tmp, weights)
        (tmp / DONE).write_text(json.dumps({"source": str(model_dir), "weights": weights, "format": FORMAT}))
    _prune(target.parent, KEEP)
    return target


def _prune(folder: Path, keep: int) -> None:
    """Remove all but the `keep` most recently used finished conversions in `folder`."""
    done = sorted((p for p in folder.iterdir() if (p / DONE).exists()), key=lambda p: (p / DONE).stat().st_mtime,
                  reverse=True)
    for old in done[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def convert(model_dir: Path, out: Path, weights: str = "fp16") -> None:
    """Write the OpenVINO model, tokenizer and detokenizer of the HF folder `model_dir` into `out`."""
    import openvino as ov
    import torch
    import transformers
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's warnings about shapes it records as constants
            ov_model = _trace(model)
    finally:
        transformers.logging.set_verbosity(verbosity)
    ov.save_model(ov_model, out / "openvino_model.xml", compress_to_fp16=weights == "fp16")
    ov_tok, ov_detok = convert_tokenizer(tok, with_detokenizer=True)
    ov.save_model(ov_tok, out / "openvino_tokenizer.xml")
    ov.save_model(ov_detok, out / "openvino_detokenizer.xml")
    for name in _COPIED:
        if (model_dir / name).exists():
            shutil.copy(model_dir / name, out / name)


def _trace(model: Any) -> Any:
    """Trace `model` with a flat KV cache and return the stateful OpenVINO model."""
    import openvino as ov
    import torch
    from transformers.cache_utils import DynamicCache

    config = model.config
    layers = config.num_hidden_layers
    heads = config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads

    class Flat(torch.nn.Module):
        """The model with its cache as flat inputs and outputs (key, value per layer)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> tuple[Any, ...]:
            cache = DynamicCache(config=config)
            for i, layer in enumerate(cache.layers):  # set, not updated: an empty first tensor would be traced
                layer.keys, layer.values, layer.is_initialized = past[2 * i], past[2 * i + 1], True
                layer.device, layer.dtype = past[0].device, past[0].dtype
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True)
            return (out.logits, *[t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)])

    batch, new, old = 2, 3, 4
    mask = torch.ones(batch, new + old, dtype=torch.long)
    mask[0, :2] = 0  # left padding, so the trace keeps the attention mask
    example = (torch.ones(batch, new, dtype=torch.long), mask, torch.arange(old, old + new).repeat(batch, 1),
               *[torch.zeros(batch, heads, old, head_dim) for _ in range(2 * layers)])
    ov_model = ov.convert_model(Flat(), example_input=example)
    kv_in = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    kv_out = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    for port, name in zip(ov_model.inputs, ["input_ids", "attention_mask", "position_ids", *kv_in]):
        port.get_tensor().set_names({name})
        rank = port.get_partial_shape().rank.get_length()
        port.get_node().set_partial_shape(ov.PartialShape([-1, -1] if rank == 2 else [-1, heads, -1, head_dim]))
    for port, name in zip(ov_model.outputs, ["logits", *kv_out]):
        port.get_tensor().set_names({name})
    ov_model.validate_nodes_and_infer_types()
    _make_stateful(ov_model, kv_in, kv_out)
    return ov_model


def _make_stateful(ov_model: Any, kv_in: list[str], kv_out: list[str]) -> None:
    """Add ``beam_idx`` (reorders the cache by batch row), hide the cache in state variables, and size each
    state's initial value by the batch of ``input_ids``."""
    import numpy as np
    import openvino as ov
    from openvino import opset13
    from openvino._offline_transformations import apply_make_stateful_transformation

    beam_idx = opset13.parameter(name="beam_idx", dtype=ov.Type.i32, shape=ov.PartialShape([-1]))
    beam_idx.output(0).get_tensor().add_names({"beam_idx"})
    ov_model.add_parameters([beam_idx])
    for name in kv_in:
        port = ov_model.input(name)
        consumers = port.get_target_inputs()
        gathered = opset13.gather(port, beam_idx, opset13.constant(0))
        for consumer in consumers:
            consumer.replace_source_output(gathered.output(0))
    ov_model.validate_nodes_and_infer_types()
    apply_make_stateful_transformation(ov_model, dict(zip(kv_in, kv_out)))
    ids = ov_model.input("input_ids")
    batch = opset13.gather(opset13.shape_of(ids, output_type="i64"), opset13.constant([0]), opset13.constant(0))
    for op in ov_model.get_ops():
        if op.get_type_name() == "ReadValue":
            dims: list[Any] = [d.min_length for d in list(op.get_output_partial_shape(0))]
            dims[0] = batch
            parts = [opset13.constant(np.array([d], dtype=np.int64)) if isinstance(d, int) else d for d in dims]
            zero = opset13.constant(0.0, dtype=op.get_output_element_type(0))
            op.set_arguments([opset13.broadcast(zero, opset13.concat(parts, axis=0))])
    ov_model.validate_nodes_and_infer_types()
