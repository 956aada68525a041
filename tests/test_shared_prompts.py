"""Computing each prompt once per group of rollouts (`share_prompts`) gives TRL's own numbers: the same greedy
samples as HF ``generate`` and the same log-probabilities and gradients as TRL's loss forward, on left-padded
prompts of different lengths and completions cut at different lengths."""
from __future__ import annotations

import copy
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from fleming.models import resolve_model  # noqa: E402
from fleming.plugins.trainers.trl._shared_prompts import (PolicyRollouts, _sampling_copy,  # noqa: E402
                                                          prompt_runs, shared_prompt_logps, shared_prompt_trainer)
from fleming.testing import perturbed  # noqa: E402

PROMPTS = [[{"role": "user", "content": "Which option? A. heart B. lung"}],
           [{"role": "user", "content": "A much longer question about a patient with fever, rash and joint pain. "
                                        "Which option is right? A. one B. two C. three"}]]


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory, _session_model_cache: Path) -> Any:
    """A peaked tiny-random (so greedy paths are not ties) with TRL's fused LM head, and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.utils import add_fused_lm_head

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLEMING_CACHE", str(_session_model_cache))
        path = perturbed(resolve_model("tiny-random").path, tmp_path_factory.mktemp("policy"))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    return model, AutoTokenizer.from_pretrained(path)


def _trainer(model: Any, tok: Any, max_new_tokens: int) -> Any:
    from accelerate import Accelerator
    from transformers import GenerationConfig

    eos = [tok.eos_token_id]
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                              eos_token_id=eos, disable_compile=True)
    return SimpleNamespace(processing_class=tok, accelerator=Accelerator(cpu=True), model_wrapped=model, args=SimpleNamespace(bf16=False),
                           model=model, generation_kwargs={}, generation_config=config, eos_token_ids=eos)


def _padded_batch(tok: Any, counts: list[int], completion_len: int, seed: int = 0) -> tuple[Any, Any]:
    """Rows of left-padded prompts (each prompt `counts[i]` times in a row) + random completions whose masks end
    at different lengths."""
    ids = [list(tok(tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
                    add_special_tokens=False)["input_ids"]) for p in PROMPTS]
    width = max(map(len, ids))
    rows, masks = [], []
    g = torch.Generator().manual_seed(seed)
    for i, n in enumerate(counts):
        for _ in range(n):
            rows.append([tok.pad_token_id] * (width - len(ids[i])) + ids[i])
            masks.append([0] * (width - len(ids[i])) + [1] * len(ids[i]))
    completion = torch.randint(0, tok.vocab_size, (len(rows), completion_len), generator=g)
    lengths = torch.randint(1, completion_len + 1, (len(rows),), generator=g)
    completion_mask = (torch.arange(completion_len)[None] < lengths[:, None]).long()
    input_ids = torch.cat([torch.tensor(rows), completion], 1)
    return input_ids, torch.cat([torch.tensor(masks), completion_mask], 1)


def test_prompt_runs_groups_one_prompt_wherever_its_rows_are() -> None:
    ids = torch.tensor([[1, 2], [3, 4], [1, 2], [0, 2], [1, 2]])
    mask = torch.tensor([[1, 1], [1, 1], [1, 1], [0, 1], [1, 1]])  # [0, 2] is [2] left-padded: its own prompt
    firsts, rows = prompt_runs(ids, mask)
    assert len(firsts) == 3 and sorted(firsts.tolist()) == [0, 1, 3]
    assert [firsts[r].item() for r in rows.tolist()] == [0, 1, 0, 3, 0]


def test_log_probabilities_and_gradients_equal_trls_own(policy: Any) -> None:
    from trl import GRPOTrainer

    model, tok = policy
    input_ids, mask = _padded_batch(tok, counts=[3, 4], completion_len=9)
    shuffle = torch.tensor([4, 0, 6, 2, 5, 1, 3])  # TRL shuffles the batch before its loss
    input_ids, mask = input_ids[shuffle], mask[shuffle]
    keep = 9
    assert len(prompt_runs(input_ids[:, :-keep], mask[:, :-keep])[0]) == 2  # each prompt computed once
    fake = SimpleNamespace(accelerator=SimpleNamespace(autocast=nullcontext, is_main_process=True))
    twin = copy.deepcopy(model)
    theirs, their_ent, _ = GRPOTrainer._get_per_token_logps_and_entropies(fake, twin, input_ids, mask, keep,
                                                                           compute_entropy=True)
    ours, our_ent = shared_prompt_logps(model, input_ids, mask, keep, True, nullcontext)
    assert ours.shape == theirs.shape == (7, keep)
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()
    assert torch.allclose(our_ent, their_ent, atol=1e-4)
    assert (ours[mask[:, -keep:] == 0] == 0).all()  # masked completion tokens score nothing, as in TRL
    (ours.sum() + our_ent.sum()).backward()
    (theirs.sum() + their_ent.sum()).backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-4, rtol=1e-3), name


def test_the_trainer_subclass_routes_text_batches_through_shared_prompts(policy: Any) -> None:
    from trl import GRPOTrainer

    model, tok = policy
    cls = shared_prompt_trainer(GRPOTrainer)
    assert issubclass(cls, GRPOTrainer) and cls.__name__ == "SharedPromptGRPOTrainer"
    fake = SimpleNamespace(accelerator=SimpleNamespace(autocast=nullcontext, is_main_process=True))
    input_ids, mask = _padded_batch(tok, counts=[2, 2], completion_len=5, seed=1)
    with torch.no_grad():
        ours, ent, aux = cls._get_per_token_logps_and_entropies(fake, model, input_ids, mask, 5, batch_size=3)
        theirs, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(fake, model, input_ids, mask, 5)
    assert ent is None and aux is None
    assert torch.allclose(ours, theirs, atol=1e-4)


def _greedy(model: Any, tok: Any, trainer: Any, prompt: Any) -> tuple[list[int], list[int]]:
    text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    ids = list(tok(text, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             generation_config=trainer.generation_config)[0, len(ids):].tolist()
    end = next((i for i, t in enumerate(out) if t in trainer.eos_token_ids), None)
    return ids, out if end is None else out[:end + 1]


def test_policy_rollouts_sample_what_generate_samples(policy: Any) -> None:
    model, tok = policy
    trainer = _trainer(model, tok, max_new_tokens=8)
    # an end token the first prompt's greedy path meets at its 3rd token: its rows leave the batch early
    stop = _greedy(model, tok, trainer, PROMPTS[0])[1][2]
    trainer.eos_token_ids = trainer.generation_config.eos_token_id = [stop]
    prompts = [PROMPTS[0]] * 2 + [PROMPTS[1]] * 3
    out = PolicyRollouts()(prompts, trainer)
    assert len(out["completion_ids"]) == len(out["prompt_ids"]) == 5 and out["logprobs"] is None
    lengths = []
    for prompt, ids, completion in zip(prompts, out["prompt_ids"], out["completion_ids"]):
        want_ids, want = _greedy(model, tok, trainer, prompt)
        assert ids == want_ids
        assert completion == want
        lengths.append(len(completion))
    assert lengths[0] <= 3 and max(lengths) > lengths[0]  # the batch went on after the first rows ended


def test_bf16_training_on_a_cpu_samples_from_a_bf16_copy_of_the_policy(policy: Any) -> None:
    model, tok = policy
    trainer = _trainer(model, tok, max_new_tokens=4)
    assert _sampling_copy(model, trainer) is model  # fp32 training samples from the policy itself
    trainer.args.bf16 = True
    twin = _sampling_copy(model, trainer)
    assert twin is not model and next(model.parameters()).dtype == torch.float32
    with torch.no_grad():
        logits = twin(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert logits.dtype == torch.bfloat16  # the copy's own weights ran, not the fp32 policy's behind its forward
    out = PolicyRollouts()([PROMPTS[0]] * 2, trainer)
    assert len(out["completion_ids"]) == 2 and all(1 <= len(c) <= 4 for c in out["completion_ids"])
