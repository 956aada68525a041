"""Mixing and splitting: held-out by answer entity, the synthetic share, difficulty quotas, nothing lost."""
from __future__ import annotations

from collections import Counter

import pytest

from fleming.mixing import MixResult, mix_items
from fleming.recipe import Mix
from fleming.testing import make_item
from fleming.types import QAItem


def _entity_items(n_entities: int = 20, per_entity: int = 4) -> list[QAItem]:
    return [make_item(e * per_entity + k, entity=f"OMIM:{1000 + e}")
            for e in range(n_entities) for k in range(per_entity)]


def _origin(items: list[QAItem], origin: str) -> list[QAItem]:
    return [i.replace(id=f"{origin}-{i.id}", provenance={**i.provenance, "origin": origin}) for i in items]


def _assert_nothing_lost(result: MixResult, items: list[QAItem]) -> None:
    ids = [i.id for i in result.train] + [i.id for i in result.heldout] + [u.record["id"] for u in result.unused]
    assert sorted(ids) == sorted(i.id for i in items)


def test_heldout_entities_never_appear_in_training() -> None:
    items = _entity_items()
    result = mix_items(items, Mix(heldout_fraction=0.3), seed=0)
    held = {i.provenance["answer_entity"] for i in result.heldout}
    trained = {i.provenance["answer_entity"] for i in result.train}
    assert held and trained
    assert not held & trained
    # a held-out entity takes all of its items along
    counts = Counter(i.provenance["answer_entity"] for i in result.heldout)
    assert set(counts.values()) == {4}
    assert result.notes["heldout_groups"] == len(held)
    _assert_nothing_lost(result, items)


def test_items_without_an_entity_are_split_one_by_one() -> None:
    items = [make_item(i) for i in range(200)]
    result = mix_items(items, Mix(heldout_fraction=0.5), seed=0)
    assert 50 < len(result.heldout) < 150
    _assert_nothing_lost(result, items)


def test_split_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    items = _entity_items()
    a = mix_items(items, Mix(heldout_fraction=0.3), seed=0)
    b = mix_items(list(reversed(items)), Mix(heldout_fraction=0.3), seed=0)
    c = mix_items(items, Mix(heldout_fraction=0.3), seed=1)
    assert [i.id for i in a.train] == [i.id for i in b.train]  # input order does not matter
    assert {i.id for i in a.heldout} == {i.id for i in b.heldout}
    assert {i.id for i in a.heldout} != {i.id for i in c.heldout}


def test_no_mix_keeps_everything_for_training() -> None:
    items = _entity_items(5, 2)
    result = mix_items(items, None, seed=0)
    assert sorted(i.id for i in result.train) == sorted(i.id for i in items)
    assert result.heldout == [] and result.unused == []


@pytest.mark.parametrize(("fraction", "n_synth", "n_curated", "want"), [
    (0.5, 30, 50, (30, 30)),
    (0.25, 30, 50, (16, 48)),
    (0.75, 30, 50, (30, 10)),
    (1.0, 30, 50, (30, 0)),
    (0.0, 30, 50, (0, 50)),
])
def test_synthetic_fraction_gives_exactly_the_asked_share(fraction: float, n_synth: int, n_curated: int,
                                                          want: tuple[int, int]) -> None:
    items = _origin([make_item(i) for i in range(n_synth)], "synthetic") + \
        _origin([make_item(i) for i in range(n_curated)], "curated")
    result = mix_items(items, Mix(synthetic_fraction=fraction, heldout_fraction=0.0), seed=3)
    synthetic = sum(i.provenance["origin"] == "synthetic" for i in result.train)
    assert (synthetic, len(result.train) - synthetic) == want
    assert synthetic / len(result.train) == fraction
    assert all(u.reason.startswith("synthetic_fraction") for u in result.unused)
    _assert_nothing_lost(result, items)


def test_difficulty_quotas_set_the_training_mix() -> None:
    levels = ["easy"] * 10 + ["moderate"] * 20 + ["difficult"] * 30 + [None] * 5
    items = [make_item(i, difficulty=d) for i, d in enumerate(levels)]
    mix = Mix(heldout_fraction=0.0, difficulty_quotas={"easy": 1, "moderate": 1, "difficult": 2})
    result = mix_items(items, mix, seed=0)
    got = Counter(i.difficulty for i in result.train)
    assert got == {"easy": 10, "moderate": 10, "difficult": 20}
    assert result.notes["difficulty"] == {"easy": 10, "moderate": 10, "difficult": 20}
    reasons = Counter(u.reason for u in result.unused)
    assert reasons["difficulty quota moderate: over the share"] == 10
    assert reasons["difficulty quota difficult: over the share"] == 10
    assert reasons["difficulty quota: no difficulty label in the quotas"] == 5
    _assert_nothing_lost(result, items)


def test_quotas_and_heldout_together_lose_nothing() -> None:
    items = [make_item(i, difficulty=("easy", "moderate", "difficult")[i % 3], entity=f"E{i % 17}")
             for i in range(120)]
    mix = Mix(heldout_fraction=0.2, difficulty_quotas={"easy": 1, "difficult": 1})
    result = mix_items(items, mix, seed=5)
    assert {i.difficulty for i in result.train} == {"easy", "difficult"}
    assert not {i.provenance["answer_entity"] for i in result.heldout} & \
        {i.provenance["answer_entity"] for i in result.train}
    _assert_nothing_lost(result, items)


def test_two_hop_items_are_held_out_by_their_hidden_diagnosis() -> None:
    """An inheritance item's answer is a mode shared by many diseases: the held-out unit is the diagnosis."""
    modes = ["HP:0000006", "HP:0000007"]  # autosomal dominant / recessive
    items = []
    for d in range(30):
        disease = f"ORPHA:{500 + d}"
        items.append(make_item(2 * d, entity=disease))  # findings -> diagnosis
        two_hop = make_item(2 * d + 1, entity=modes[d % 2])
        items.append(two_hop.replace(provenance={**two_hop.provenance, "diagnosis": disease}))
    result = mix_items(items, Mix(heldout_fraction=0.3), seed=0)

    def diagnoses(split: list[QAItem]) -> set[str]:
        return {i.provenance.get("diagnosis") or i.provenance["answer_entity"] for i in split}

    assert result.heldout and result.train
    assert not diagnoses(result.heldout) & diagnoses(result.train)
    # the modes themselves are answers on both sides: grouping by answer alone would have held out a whole mode
    assert {i.provenance["answer_entity"] for i in result.heldout} & set(modes)
    assert {i.provenance["answer_entity"] for i in result.train} & set(modes)
