"""Curricula `difficulty-mix` (mix ratios, sparse-reward stop, step limit, notes) and `hard-mining` (pass rates
from a policy, right:wrong mix, rollout growth, rounds, cache), the latter on the tiny random model."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fleming.components import build
from fleming.context import StageContext
from fleming.errors import RecipeError, StageError
from fleming.models import resolve_model
from fleming.plugin_manager import DEFAULT_PLUGINS
from fleming.plugins.curricula.difficulty_mix import DifficultyMix, zero_variance_share
from fleming.plugins.curricula.hard_mining import HardMining
from fleming.recipe import Component
from fleming.testing import fresh_registry, make_item, stage_ctx
from fleming.types import Checkpoint, QAItem


def _ctx(tmp_path: Path, seed: int = 0, rollouts: int = 8, start: str | None = None) -> StageContext:
    return stage_ctx(tmp_path / "run" / "rl-stage", "rl-stage", seed=seed, rollouts=rollouts, start_model=start)


def _pool() -> list[QAItem]:
    labels = ["easy"] * 30 + ["moderate"] * 20 + ["difficult"] * 10 + [None] * 10
    return [make_item(i, difficulty=d) for i, d in enumerate(labels)]


# ---------------------------------------------------------------- difficulty-mix

def test_default_mix_takes_easy_and_moderate_with_unlabelled_as_moderate(tmp_path: Path) -> None:
    sel = DifficultyMix().select(_pool(), 0, None, _ctx(tmp_path))
    got = Counter(i.difficulty for i in sel.items)
    assert got == {"easy": 30, "moderate": 20, None: 10}
    excluded = DifficultyMix(unlabelled="exclude").select(_pool(), 0, None, _ctx(tmp_path))
    assert Counter(i.difficulty for i in excluded.items) == {"easy": 30, "moderate": 20}
    assert "easy 30" in sel.reason and "moderate 30" in sel.reason


def test_mix_ratios_and_size_are_kept_exactly_and_deterministically(tmp_path: Path) -> None:
    cur = DifficultyMix(mix=[1, 1], size=24, unlabelled="exclude")
    sel = cur.select(_pool(), 0, None, _ctx(tmp_path))
    assert Counter(i.difficulty for i in sel.items) == {"easy": 12, "moderate": 12}
    again = DifficultyMix(mix=[1, 1], size=24, unlabelled="exclude").select(_pool(), 0, None, _ctx(tmp_path))
    assert [i.id for i in sel.items] == [i.id for i in again.items]
    other = DifficultyMix(mix=[1, 1], size=24, unlabelled="exclude").select(_pool(), 0, None, _ctx(tmp_path, 1))
    assert [i.id for i in sel.items] != [i.id for i in other.items]
    capped = DifficultyMix(mix=[3, 1], unlabelled="exclude").select(_pool(), 0, None, _ctx(tmp_path))
    assert Counter(i.difficulty for i in capped.items) == {"easy": 30, "moderate": 10}  # easy limits the fit


def test_sparse_rewards_for_patience_steps_end_the_stage_and_say_why(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    cur = DifficultyMix(sparse_threshold=0.75, patience=2)
    assert cur.select(_pool(), 0, None, ctx) is not None
    varied = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]  # half the groups have zero variance
    flat = [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.5, 0.0]]  # three in four
    assert cur.observe(0, varied) is None
    assert cur.observe(1, flat) is None  # one sparse step is not enough
    assert cur.observe(2, varied) is None  # the run of sparse steps restarts
    assert cur.observe(3, flat) is None
    reason = cur.observe(4, flat)
    assert reason is not None and reason.startswith("rewards sparse: 75% of groups") and "2 consecutive" in reason
    assert cur.select(_pool(), 1, None, ctx) is None
    assert cur.end_reason == reason
    notes = ctx.notes["difficulty-mix"]
    assert notes["rounds"][0]["zero_variance_share"] == [0.5, 0.75, 0.5, 0.75, 0.75]
    fresh = DifficultyMix(sparse_threshold=0.75, patience=2, max_rounds=3)  # a resumed run keeps the stop
    assert fresh.select(_pool(), 1, None, _ctx(tmp_path)) is None


def test_step_limit_and_passes(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    cur = DifficultyMix(max_steps=3, max_rounds=5)
    cur.select(_pool(), 0, None, ctx)
    assert cur.observe(0, [[0.0, 1.0]]) is None
    assert cur.select(_pool(), 1, None, ctx) is not None  # a pass ended without a stop: another pass
    assert cur.observe(0, [[0.0, 1.0]]) is None
    assert cur.observe(1, [[0.0, 1.0]]).startswith("step limit: 3 steps")
    assert cur.select(_pool(), 2, None, ctx) is None
    assert [r["steps"] for r in ctx.notes["difficulty-mix"]["rounds"]] == [1, 2]
    single = DifficultyMix()
    single.select(_pool(), 0, None, _ctx(tmp_path / "b"))
    assert single.select(_pool(), 1, None, _ctx(tmp_path / "b")) is None  # max_rounds 1 by default
    assert single.end_reason == "max_rounds (1) passes done"


def test_a_round_resumed_after_a_kill_ends_where_an_uninterrupted_one_would(tmp_path: Path) -> None:
    varied, flat = [[0.0, 1.0]], [[1.0, 1.0]]

    def resumed(killed_saw: list[Any], redone: list[Any], folder: str, **args: Any) -> list[str | None]:
        """Observe `killed_saw` (step, groups) in one process, then in a fresh one (the curriculum rebuilt, the
        round selected again) `redone`: the steps after the checkpoint the round resumed from."""
        first = DifficultyMix(**args)
        first.select(_pool(), 0, None, _ctx(tmp_path / folder))
        for step, groups in killed_saw:
            first.observe(step, groups)
        second = DifficultyMix(**args)
        second.select(_pool(), 0, None, _ctx(tmp_path / folder))
        return [second.observe(step, groups) for step, groups in redone]

    # uninterrupted: sparse at steps 2-4 ends the stage at step 4
    straight = resumed([], [(1, varied), (2, flat), (3, flat), (4, flat)], "straight", patience=3)
    assert straight[:3] == [None] * 3 and straight[3] is not None and "at step 4" in straight[3]
    # killed after step 3 with the last checkpoint at step 2: step 3 is redone, and seen only once
    assert resumed([(1, varied), (2, flat), (3, flat)], [(3, flat), (4, flat)], "redo", patience=3) == straight[2:]
    # the step limit counts the steps before the kill
    limit = resumed([(1, varied), (2, varied)], [(3, varied)], "limit", max_steps=3)
    assert limit == ["step limit: 3 steps (max_steps 3)"]


def test_zero_variance_share() -> None:
    assert zero_variance_share([[1, 1, 1], [0, 1, 0], [None, 0.0]]) == pytest.approx(2 / 3)


# ---------------------------------------------------------------- hard-mining

class ScriptedPolicy(HardMining):
    """hard-mining with pass rates from a table instead of a model (to test the mix exactly)."""

    def __init__(self, table: dict[str, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table, self.calls = table, []

    def pass_rates(self, model: str, items: Any, seed: int, ctx: Any) -> dict[str, float]:
        self.calls.append(model)
        return {i.id: self.table[i.id] for i in items}


def test_hard_items_all_kept_with_solved_ones_one_to_two_and_rollouts_grow(tmp_path: Path) -> None:
    pool = [make_item(i) for i in range(40)]
    table = {it.id: (0.0 if i < 10 else 0.25 if i < 14 else 0.75 if i < 30 else 1.0) for i, it in enumerate(pool)}
    cur = ScriptedPolicy(table, rounds=2, right_wrong=(1, 2))
    ctx = _ctx(tmp_path, rollouts=8, start="/models/cold")
    sel = cur.select(pool, 0, None, ctx)
    hard = {it.id for it in pool if table[it.id] <= 0.25}
    assert hard <= {i.id for i in sel.items} and len(sel.items) == 14 + 7
    assert sel.rollouts == 8 and cur.calls == ["/models/cold"]
    assert "14 hard" in sel.reason and "7 solved" in sel.reason and "0.25: 4" in sel.reason
    ckpt = Checkpoint(Path("/ckpt/round-0"), "rl-stage", 5)
    sel1 = cur.select(pool, 1, ckpt, ctx)
    assert sel1.rollouts == 16 and cur.calls[-1] == "/ckpt/round-0"  # the newest checkpoint answers
    assert cur.select(pool, 2, ckpt, ctx) is None
    notes = ctx.notes["hard-mining"]
    assert [r["rollouts"] for r in notes["rounds"]] == [8, 16] and cur.end_reason == "2 mining rounds done"
    assert notes["rounds"][0]["pass_rate_histogram"] == {"0.00": 10, "0.25": 4, "0.75": 16, "1.00": 10}


def test_few_solved_items_and_a_policy_that_fails_nothing(tmp_path: Path) -> None:
    pool = [make_item(i) for i in range(12)]
    mostly_hard = ScriptedPolicy({it.id: (1.0 if i < 2 else 0.0) for i, it in enumerate(pool)})
    sel = mostly_hard.select(pool, 0, None, _ctx(tmp_path, start="m"))
    assert len(sel.items) == 12  # all 10 hard + the only 2 solved
    perfect = ScriptedPolicy({it.id: 1.0 for it in pool})
    ctx = _ctx(tmp_path / "other", start="m")
    assert perfect.select(pool, 0, None, ctx) is None
    assert "fails nothing" in perfect.end_reason
    with pytest.raises(StageError, match="rl-stage: hard-mining needs the model the stage starts from"):
        ScriptedPolicy({}).select(pool, 0, None, _ctx(tmp_path / "none"))


def test_pool_limit_and_max_rollouts(tmp_path: Path) -> None:
    pool = [make_item(i) for i in range(50)]
    cur = ScriptedPolicy({it.id: 0.0 for it in pool}, pool_limit=20, max_rollouts=12, rounds=3)
    ctx = _ctx(tmp_path, rollouts=8, start="m")
    assert len(cur.select(pool, 0, None, ctx).items) == 20
    assert cur.select(pool, 2, None, ctx).rollouts == 12


def test_pass_rates_from_the_tiny_random_policy(tmp_path: Path, model_cache: Path) -> None:
    model = resolve_model("tiny-random").path
    pool = [make_item(i) for i in range(6)]
    cur = HardMining(k=3, max_tokens=6, batch_size=4)
    ctx = _ctx(tmp_path, start=model)
    sel = cur.select(pool, 0, None, ctx)
    rates = json.loads((ctx.dir / "mining" / "round-0.json").read_text())
    assert rates["model"] == model and set(rates["rates"]) == {i.id for i in pool}
    assert all(r in (0.0, 1 / 3, 2 / 3, 1.0) for r in rates["rates"].values())
    n_hard = sum(r <= 0.25 for r in rates["rates"].values())
    info = ctx.notes["hard-mining"]["rounds"][0]
    assert info["hard"] == n_hard and info["evaluated"] == 6 and sum(info["pass_rate_histogram"].values()) == 6
    if sel is not None:
        assert len(sel.items) == n_hard + info["solved_kept"]
    assert info["engine"] == rates["engine"] == {"name": "hf", "args": {}}
    again = HardMining(k=3, max_tokens=6, batch_size=4)
    again.pass_rates = None  # a resumed round reads the saved rates, the policy is not run again
    ctx2 = _ctx(tmp_path, start=model)
    again.select(pool, 0, None, ctx2)
    assert ctx2.notes["hard-mining"]["rounds"][0]["hard"] == n_hard
    # rates sampled with other engine settings are not reused
    other = HardMining(k=3, max_tokens=6, batch_size=4, engine="hf", engine_args={"dtype": "bfloat16"})
    other.pass_rates = lambda *a: {i.id: 1.0 for i in pool}  # type: ignore[method-assign]
    other.select(pool, 0, None, _ctx(tmp_path, start=model))
    saved = json.loads((ctx.dir / "mining" / "round-0.json").read_text())
    assert saved["engine"] == {"name": "hf", "args": {"dtype": "bfloat16"}} and set(saved["rates"].values()) == {1.0}


def test_curricula_are_registered_with_checked_args() -> None:
    assert {"fleming.plugins.curricula.difficulty_mix", "fleming.plugins.curricula.hard_mining"} <= set(DEFAULT_PLUGINS)
    _, reg = fresh_registry()
    assert {"difficulty-mix", "hard-mining"} <= set(reg.names("curricula"))
    with pytest.raises(RecipeError, match=r"rl.stages\[0\].curriculum.args"):
        build(reg, "curricula", Component(plugin="difficulty-mix", args={"mix": [1, 2, 3]}),
              "rl.stages[0].curriculum", Path("."))
    with pytest.raises(RecipeError, match=r"rl.stages\[1\].curriculum.args.tau"):
        build(reg, "curricula", Component(plugin="hard-mining", args={"tau": 1.5}), "rl.stages[1].curriculum",
              Path("."))
