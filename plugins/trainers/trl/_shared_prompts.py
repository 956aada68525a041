"""Each prompt computed once per group of rollouts (the `trl` trainer's ``share_prompts``, on by default).

GRPO samples ``rollouts`` completions of every prompt, and TRL computes the prompt again for each one: when
sampling (HF ``generate`` repeats a prompt before its first forward pass) and in the loss (one forward pass
over prompt + completion per row). With 200-token prompts and 50-token completions that is most of a CPU step.
Here a prompt's keys and values are computed once per group and the cache is repeated for its rollouts:

* `PolicyRollouts` (a TRL ``rollout_func``) samples from the live policy, so no weights are copied anywhere:
  each distinct prompt but its last token goes through the model once, the cache is repeated for the prompt's
  rollouts, and HF ``generate`` samples the rest with TRL's own generation config.
* `SharedPromptTrainer` overrides TRL's per-token log-probabilities (and entropies): each distinct prompt but
  its last token once, with gradients, then the last prompt token and the completion of every rollout, on the
  repeated cache, through TRL's fused LM head.

Positions and masks are the ones TRL's own code uses (``generate``: from the attention mask; the loss: row
positions), so greedy samples equal HF ``generate``'s and log-probabilities equal TRL's up to float rounding
(``tests/test_shared_prompts.py``). Rows of one prompt are found wherever they are in the batch; a prompt
asked once is a group of one.
"""
from __future__ import annotations

import inspect
from typing import Any

from fleming.plugins.trainers.trl._rollouts import _prompt_ids, _runs


def prompt_runs(prompt_ids: Any, prompt_mask: Any) -> tuple[Any, Any]:
    """For rows of left-padded prompts: one row of each distinct prompt, and every row's index among those.
    Rows of one prompt need not sit together (TRL shuffles a generation batch before the loss sees it)."""
    import torch

    key = torch.cat([prompt_ids, prompt_mask], 1)
    distinct, rows = torch.unique(key, dim=0, return_inverse=True)
    order = torch.arange(key.size(0), device=key.device)
    firsts = torch.full((distinct.size(0),), key.size(0), dtype=torch.long, device=key.device)
    return firsts.scatter_reduce(0, rows, order, reduce="amin"), rows


def shared_prompt_logps(model: Any, input_ids: Any, attention_mask: Any, logits_to_keep: int,
                        compute_entropy: bool, autocast: Any) -> tuple[Any, Any]:
    """Per-token log-probabilities (and entropies, else None) of the last `logits_to_keep` tokens of each row,
    as TRL's fused LM head computes them, with each run of identical prompts computed once."""
    import torch

    keep = logits_to_keep
    prompt, prompt_mask = input_ids[:, :-keep], attention_mask[:, :-keep]
    completion, completion_mask = input_ids[:, -keep:], attention_mask[:, -keep:]
    firsts, rows = prompt_runs(prompt, prompt_mask)
    width = prompt.size(1)
    with autocast():
        cache = _prefill(model, prompt[firsts, :-1], prompt_mask[firsts, :-1],
                         _row_positions(firsts.numel(), width - 1, prompt.device))
        cache.reorder_cache(rows)
        tail = torch.cat([prompt[:, -1:], completion[:, :-1]], dim=1)
        labels = completion.masked_fill(completion_mask == 0, -100)
        out = model(input_ids=tail, attention_mask=attention_mask[:, :-1], **{_cache_word(model): cache},
                    position_ids=_row_positions(tail.size(0), tail.size(1), tail.device, start=width - 1),
                    shift_labels=labels, fused_lm_head=True)
    return out.log_probs, (out.entropy if compute_entropy else None)


def _cache_word(model: Any) -> str:
    """The keyword a model's forward takes its KV cache by (transformers 5.2x: ``cache``; before:
    ``past_key_values``)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def _prefill(model: Any, ids: Any, mask: Any, positions: Any) -> Any:
    """The KV cache of `ids` (one LM-head row computed, the last)."""
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _row_positions(rows: int, length: int, device: Any, start: int = 0) -> Any:
    """Positions counted along the row, pads included (what TRL's loss forward uses)."""
    import torch

    return torch.arange(start, start + length, device=device).unsqueeze(0).expand(rows, -1)


def shared_prompt_trainer(base: type) -> type:
    """A subclass of TRL's GRPOTrainer `base` whose log-probabilities compute each prompt once per group (text
    models; anything multimodal or an MoE aux loss goes to TRL's own code)."""

    class SharedPromptTrainer(base):  # type: ignore[misc, valid-type]
        def _get_per_token_logps_and_entropies(self, model: Any, input_ids: Any, attention_mask: Any,
                                               logits_to_keep: int, batch_size: int | None = None,
                                               compute_entropy: bool = False, compute_aux_loss: bool = False,
                                               **extra: Any) -> tuple[Any, Any, Any]:
            if compute_aux_loss or any(v is not None for v in extra.values()) or input_ids.size(1) <= logits_to_keep:
                return super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                    compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **extra)
            import torch

            size = batch_size or input_ids.size(0)
            logps, entropies = [], []
            for start in range(0, input_ids.size(0), size):
                lp, ent = shared_prompt_logps(model, input_ids[start:start + size],
                                              attention_mask[start:start + size], logits_to_keep,
                                              compute_entropy, self.accelerator.autocast)
                logps.append(lp)
                entropies.append(ent)
            return (torch.cat(logps), torch.cat(entropies) if compute_entropy else None, None)

    SharedPromptTrainer.__name__ = SharedPromptTrainer.__qualname__ = f"SharedPrompt{base.__name__}"
    return SharedPromptTrainer


class PolicyRollouts:
    """TRL ``rollout_func``: sample each prompt's rollouts from the live policy, the prompt computed once, and a
    rollout dropped from the batch as soon as it ends (HF ``generate`` computes every row to the longest)."""

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        import torch
        from trl.models import unwrap_model_for_generation

        tok = trainer.processing_class
        runs = _runs(prompts)
        ids = [_prompt_ids(tok, p) for p, _ in runs]
        width = max(len(x) for x in ids)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        device = trainer.accelerator.device
        prompt = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
        rows = torch.repeat_interleave(torch.arange(len(runs), device=device),
                                       torch.tensor([n for _, n in runs], device=device))
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # as generate counts them
        config = trainer.generation_config
        eos = trainer.eos_token_ids if isinstance(trainer.eos_token_ids, (list, tuple)) else [trainer.eos_token_ids]
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                         generation_kwargs=trainer.generation_kwargs) as model, \
                torch.no_grad(), trainer.accelerator.autocast():
            model = _sampling_copy(model, trainer)
            cache = _prefill(model, prompt[:, :-1], mask[:, :-1], positions[:, :-1])
            cache.reorder_cache(rows)
            completions = _sample(model, cache, prompt[rows], mask[rows], positions[rows, -1:], config,
                                  torch.tensor(eos, device=device))
        return {"prompt_ids": [ids[r] for r in rows.tolist()], "completion_ids": completions, "logprobs": None}


def _sampling_copy(model: Any, trainer: Any) -> Any:
    """The model to sample with: on a CPU with bf16 training, a bf16 copy of the policy (autocast recasts every
    fp32 weight at every decoding step: measured on SmolLM2-135M, 64 rollouts of 56 tokens took 16 s under
    autocast, 12 s from the copy, which takes 0.3 s to make); otherwise the policy itself."""
    import torch

    if not getattr(trainer.args, "bf16", False) or trainer.accelerator.device.type != "cpu":
        return model
    import copy

    twin = copy.deepcopy(model).to(torch.bfloat16)
    for module in (twin, twin.get_base_model() if hasattr(twin, "get_base_model") else None):
        if module is not None:  # TRL's fused-head forward (on a PEFT model, on its base) calls the original's
            module.__dict__.pop("forward", None)
    return twin


def _processors(config: Any) -> Any:
    """HF's logits processors for TRL's generation config, in the order HF ``generate`` applies them."""
    from transformers.generation.logits_process import (LogitsProcessorList, MinPLogitsWarper,
                                                        RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    out = LogitsProcessorList()
    if config.repetition_penalty not in (None, 1.0):
        out.append(RepetitionPenaltyLogitsProcessor(config.repetition_penalty))
    if config.do_sample:
        if config.temperature not in (None, 1.0):
            out.append(TemperatureLogitsWarper(config.temperature))
        if config.top_k:
            out.append(TopKLogitsWarper(config.top_k))
        if config.top_p not in (None, 1.0):
            out.append(TopPLogitsWarper(config.top_p))
        if config.min_p:
            out.append(MinPLogitsWarper(config.min_p))
    return out


def _sample(model: Any, cache: Any, seqs: Any, mask: Any, position: Any, config: Any, eos: Any) -> list[list[int]]:
    """Sample up to ``config.max_new_tokens`` tokens after each row of `seqs` (whose last token is not in the
    `cache` yet); a row leaves the batch (and the cache) at its first EOS, which it keeps."""
    import torch

    processors = _processors(config)
    word = _cache_word(model)
    live = torch.arange(seqs.size(0), device=seqs.device)
    out: list[list[int]] = [[] for _ in range(seqs.size(0))]
    step = seqs[:, -1:]
    for _ in range(config.max_new_tokens):
        logits = model(input_ids=step, attention_mask=mask, position_ids=position, use_cache=True,
                       logits_to_keep=1, **{word: cache}).logits[:, -1].float()
        scores = processors(seqs, logits)
        token = (torch.multinomial(torch.softmax(scores, -1), 1) if config.do_sample
                 else scores.argmax(-1, keepdim=True))
        for row, t in zip(live.tolist(), token[:, 0].tolist()):
            out[row].append(t)
        going = ~torch.isin(token[:, 0], eos)
        seqs, mask = torch.cat([seqs, token], 1), torch.cat([mask, mask.new_ones(mask.size(0), 1)], 1)
        step, position = token, position + 1
        if not going.all():
            if not going.any():
                break
            keep = going.nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            live, seqs, mask, step, position = live[keep], seqs[keep], mask[keep], step[keep], position[keep]
    return out
