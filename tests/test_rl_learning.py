"""RL that learns: a few GRPO steps of the `trl` trainer change the weights and raise a reward the policy can earn,
and `hard-mining` mines exactly the items a policy keeps failing, round after round as the policy improves.

tiny-random itself cannot show the first: its next-token distribution is nearly flat over the 49k-token vocabulary
(the likeliest token has p ~ 7e-5), so no reward on a property of its text moves in a few steps. The same model with
seeded noise on its weights (`fleming.testing.perturbed`) is peaked enough: its first token holds an 'e' about a
third of the time, and that is what the reward below pays for.
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fleming import hookimpl
from fleming.components import build_named
from fleming.models import resolve_model
from fleming.plugins.curricula.difficulty_mix import zero_variance_share
from fleming.plugins.curricula.hard_mining import HardMining
from fleming.protocols import TrainJob
from fleming.testing import add_plugins, fresh_registry, make_item, perturbed, stage_ctx
from fleming.types import Checkpoint, QAItem

STEPS = 8
ROLLOUTS = 8


class LetterE:
    """A third-party reward: 1 for a completion with an 'e' in it, else 0."""

    def __call__(self, completions: Sequence[str], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        return [1.0 if "e" in c else 0.0 for c in completions]


class LetterEPlugin:
    @hookimpl
    def register_rewards(self, register: Any) -> None:
        register("acme-letter-e", LetterE)


class Recorder:
    """A curriculum that keeps the per-group rewards the trainer hands it each step and never ends the round."""

    def __init__(self) -> None:
        self.steps: list[list[list[float]]] = []

    def select(self, pool: Any, round: int, last: Any, ctx: Any) -> None:
        return None

    def observe(self, step: int, group_rewards: Sequence[Sequence[float]]) -> str | None:
        self.steps.append([list(g) for g in group_rewards])
        return None


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory, _session_model_cache: Path) -> Iterator[str]:
    """tiny-random with seeded noise on every weight: a random policy whose first tokens are peaked."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLEMING_CACHE", str(_session_model_cache))
        yield perturbed(resolve_model("tiny-random").path, tmp_path_factory.mktemp("policy"))


def grpo(policy: str, out: Path, seed: int = 0,
         **trainer_args: Any) -> tuple[list[dict[str, Any]], Recorder, Checkpoint]:
    """Run STEPS GRPO steps rewarded by `acme-letter-e` (one-token completions, ROLLOUTS per prompt, 2 prompts a
    step); return TRL's per-step log, what the curriculum was handed, and the final checkpoint."""
    _, registry = fresh_registry(LetterEPlugin())
    reward = build_named(registry, "rewards", "acme-letter-e", {}, "rl.rewards[0]", out)
    args = {"max_completion_length": 1, "batch_size": 2, "learning_rate": 0.03, "save_steps": STEPS, **trainer_args}
    trainer = build_named(registry, "trainers", "trl", args, "rl.trainer", out)
    recorder = Recorder()
    items = [make_item(i) for i in range(4, 8)]  # an 'e' ~1/3 of the time each (item 3: 4 times in 5)
    job = TrainJob(kind="grpo", model_path=policy, items=items, output_dir=out, seed=seed, stage="rl-stage1",
                   rollouts=ROLLOUTS, max_steps=STEPS, rewards=[(reward, 1.0)], curriculum=recorder, notes={})
    ckpt = trainer.train(job, None)
    history = json.loads((Path(ckpt.path) / "trainer_state.json").read_text())["log_history"]
    return [h for h in history if "frac_reward_zero_std" in h], recorder, ckpt


def changed_weights(start: str, trained: str) -> list[str]:
    """The names of the tensors that differ between two checkpoints."""
    import torch
    from transformers import AutoModelForCausalLM

    a = dict(AutoModelForCausalLM.from_pretrained(start).named_parameters())
    b = AutoModelForCausalLM.from_pretrained(trained).named_parameters()
    return [name for name, p in b if not torch.equal(p, a[name])]


@pytest.mark.parametrize("train_layers", [None, 1], ids=["all weights", "top block"])
def test_a_few_grpo_steps_raise_a_reward_the_policy_can_earn(policy: str, tmp_path: Path,
                                                             train_layers: int | None) -> None:
    logged, recorder, ckpt = grpo(policy, tmp_path / "round-0", train_layers=train_layers)
    assert [h["step"] for h in logged] == list(range(1, STEPS + 1)) and ckpt.step == STEPS
    means = [h["rewards/LetterE/mean"] for h in logged]
    # what the curriculum is handed is what TRL trained on: the same rewards, the same all-equal groups
    assert means == pytest.approx([statistics.mean(r for g in groups for r in g) for groups in recorder.steps])
    assert [h["frac_reward_zero_std"] for h in logged] == pytest.approx(list(map(zero_variance_share, recorder.steps)))
    # the policy learns: step 1 samples the start model (an 'e' ~1/3 of the time), the last two the trained one
    # (seeds 0-9, both variants: step 1 at 0.19-0.56, the last two at 0.97-1.0, a rise of 0.44 at least)
    assert statistics.mean(means[-2:]) >= means[0] + 0.3, means
    # rewards varied within groups, so steps had gradients (the logged loss is no sign of it: on-policy GRPO with
    # no KL weight reports 0, its advantages summing to 0 per group over completions of one length)
    assert min(h["frac_reward_zero_std"] for h in logged) < 1
    assert max(h["grad_norm"] for h in logged) > 0
    changed = changed_weights(policy, str(ckpt.path))
    top = "model.layers.1."  # tiny-random has 2 blocks
    assert any(n.startswith(top) for n in changed)
    if train_layers is None:
        assert "model.embed_tokens.weight" in changed and any(n.startswith("model.layers.0.") for n in changed)
    else:  # the rest, embeddings included, stayed as they were
        assert all(n.startswith(top) or n.startswith("model.norm.") for n in changed), changed


# ---------------------------------------------------------------- hard-mining with a policy that answers some right

class PolicyEngine:
    """A third-party engine standing in for the policy: `scripts[model][n]` are the letters of the k answers the
    model loaded gives to item number n (every item's right answer is B)."""

    scripts: dict[str, dict[int, str]] = {}
    loaded: list[str] = []

    def load(self, model_path: str) -> None:
        PolicyEngine.loaded.append(model_path)
        self.script = self.scripts[model_path]

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, seed: int = 0) -> list[list[str]]:
        numbers = [int(p[-1]["content"].split("Question number ")[1].split("?")[0]) for p in prompts]
        return [[f"Reasoning. <answer>{letter}</answer>" for letter in self.script[i][:n]] for i in numbers]


class PolicyEnginePlugin:
    @hookimpl
    def register_engines(self, register: Any) -> None:
        register("acme-policy", PolicyEngine)


@pytest.fixture
def policy_engine(monkeypatch: pytest.MonkeyPatch) -> type[PolicyEngine]:
    """Register `acme-policy` for every registry fleming loads in this test (hard-mining builds its engine by name)."""
    add_plugins(monkeypatch, PolicyEnginePlugin())
    PolicyEngine.loaded = []
    return PolicyEngine


def test_hard_mining_mines_what_the_policy_fails_and_less_as_it_learns(policy_engine: type[PolicyEngine],
                                                                      tmp_path: Path) -> None:
    right, wrong = "BBBB", "ACDA"
    policy_engine.scripts = {
        # the start model: 0-2 always right, 3 right 3 times in 4, 4 once in 4, 5-7 never
        "/models/cold": {0: right, 1: right, 2: right, 3: "BBAB", 4: "CBAD", 5: wrong, 6: "AAAA", 7: "CDCD"},
        # after round 0's training it has learnt 4 and 5; 6 and 7 are still failed
        "/ckpt/round-0": {0: right, 1: right, 2: right, 3: right, 4: right, 5: "BBBA", 6: "ABAA", 7: wrong},
        # after round 1's it fails nothing
        "/ckpt/round-1": {i: right for i in range(8)},
    }
    pool = [make_item(i) for i in range(8)]
    cur = HardMining(k=4, rounds=3, batch_size=3, engine="acme-policy")
    ctx = stage_ctx(tmp_path / "rl-stage2", "rl-stage2", rollouts=8, start_model="/models/cold")

    def mined(round: int, last: Checkpoint | None) -> tuple[set[str], set[str], int]:
        sel = cur.select(pool, round, last, ctx)
        assert sel is not None
        rates = json.loads((ctx.dir / "mining" / f"round-{round}.json").read_text())["rates"]
        hard = {i for i, r in rates.items() if r <= cur.args.tau}
        chosen = {it.id for it in sel.items}
        assert hard <= chosen and len(chosen) == len(sel.items)
        return hard, chosen - hard, sel.rollouts

    ids = [it.id for it in pool]
    hard, solved, rollouts = mined(0, None)
    saved = json.loads((ctx.dir / "mining" / "round-0.json").read_text())
    assert saved["rates"] == dict(zip(ids, [1.0, 1.0, 1.0, 0.75, 0.25, 0.0, 0.0, 0.0]))
    assert hard == set(ids[4:8]) and rollouts == 8
    assert len(solved) == 2 and solved <= set(ids[:4])  # one solved item for every two hard ones
    hard, solved, rollouts = mined(1, Checkpoint(Path("/ckpt/round-0"), "rl-stage2", 5))
    assert hard == {ids[6], ids[7]} and len(solved) == 1 and solved <= set(ids[:6]) and rollouts == 16
    assert json.loads((ctx.dir / "mining" / "round-1.json").read_text())["rates"] == \
        dict(zip(ids, [1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.25, 0.0]))
    assert cur.select(pool, 2, Checkpoint(Path("/ckpt/round-1"), "rl-stage2", 10), ctx) is None
    assert cur.end_reason == "the policy fails nothing (no pass rate <= 0.25)"
    # each round the newest policy answered; the notes tell the story round by round
    assert policy_engine.loaded == ["/models/cold", "/ckpt/round-0", "/ckpt/round-1"]
    rounds = ctx.notes["hard-mining"]["rounds"]
    assert [(r["model"], r["hard"], r["solved"], r["solved_kept"]) for r in rounds] == [
        ("/models/cold", 4, 4, 2), ("/ckpt/round-0", 2, 6, 1), ("/ckpt/round-1", 0, 8, 0)]
    assert rounds[0]["pass_rate_histogram"] == {"0.00": 3, "0.25": 1, "0.75": 1, "1.00": 3}
    assert all(r["engine"] == {"name": "acme-policy", "args": {}} for r in rounds)
