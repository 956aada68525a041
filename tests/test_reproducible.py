"""Reproducibility: the same GRPO job and seed, run in two fresh processes with different hash seeds, select the
same items and train the same weights, with a reward the tiny random model earns (so every step moves them)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from fleming.models import resolve_model

# one process: a difficulty-mix selection, then two GRPO steps rewarded by completion length (mod 3)
SCRIPT = r"""
import json, random, sys
from pathlib import Path
from fleming.plugins.curricula.difficulty_mix import DifficultyMix
from fleming.protocols import TrainJob
from fleming.testing import fresh_registry, make_item


class LengthReward:
    def __call__(self, completions, items, **kwargs):
        return [float(len(c) % 3) for c in completions]


model, out = sys.argv[1], Path(sys.argv[2])
pool = [make_item(i, answer="AB"[i % 2], difficulty=("easy", "moderate", None)[i % 3]) for i in range(12)]
chosen, _ = DifficultyMix(size=6).choose(pool, random.Random("0/0"))
_, registry = fresh_registry()
trainer = registry.get("trainers", "trl").factory(max_completion_length=8, batch_size=2, save_steps=1,
                                                  learning_rate=1e-3)
job = TrainJob(kind="grpo", model_path=model, items=chosen, output_dir=out, seed=0, stage="rl-stage1",
               rollouts=2, max_steps=2, rewards=[(LengthReward(), 1.0)], announce=lambda c: None, notes={})
trainer.train(job, None)
print(json.dumps([it.id for it in chosen]))
"""


def test_two_processes_with_different_hash_seeds_train_the_same_weights(model_cache: Path, tmp_path: Path) -> None:
    model = resolve_model("tiny-random").path
    runs = {}
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        runs[seed] = subprocess.Popen([sys.executable, "-c", SCRIPT, model, str(tmp_path / seed)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    selected = {}
    for seed, proc in runs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        selected[seed] = json.loads(out.strip().splitlines()[-1])
    assert selected["1"] == selected["2"] and len(selected["1"]) == 6
    base = load_file(str(Path(model) / "model.safetensors"))
    for step in (1, 2):
        a, b = (load_file(str(tmp_path / seed / f"checkpoint-{step}" / "model.safetensors")) for seed in ("1", "2"))
        assert a.keys() == b.keys()
        assert all(a[k].equal(b[k]) for k in a), f"step {step}: the two processes trained different weights"
    assert any(not a[k].equal(base[k]) for k in base if k in a)  # the steps did move the weights
