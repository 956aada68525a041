"""Option-order consistency: each item asked under K cyclic rotations of its options, and what the answers show.

* Rotation ``k`` moves every option ``k`` places up, wrapping around (rotation 1 of ``A. a  B. b  C. c  D. d``
  is ``A. b  B. c  C. d  D. a``), re-letters the options A, B, ... and moves the answer letter with its text.
  With ``shuffle_seed`` the options are shuffled first and the shuffled order is rotated.
* Rotation 0 is the item as it is without rotations: same id, input and target. Rotation ``k > 0`` has the id
  ``<item id>#r<k>``. With K > 1 every sample's metadata has ``id`` (the item's id) and ``rotation``.
* An item with fewer options than K is asked under all its n orders only (rotation n would repeat rotation 0),
  and the task warns once how many items that is.
* Metrics on the ``strict`` score when K > 1: `consistent`, the share of items answered right under every
  order they were shown in; `flip_rate`, the share of items whose chosen option text is not the same under
  every order (no answer is a choice of its own, so an item never answered in any order does not flip).
  Both group by the item id the scorer puts in ``Score.metadata["item"]``; the chosen text is
  ``Score.metadata["choice"]``. The strict and lenient standard errors are clustered by item.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from inspect_ai.scorer import Metric, SampleScore, metric, stderr

from fleming.errors import DataError
from fleming.tasks._records import LETTERS

logger = logging.getLogger(__name__)

ITEM_KEY = "id"
"""The sample metadata key holding the item id (the same in every rotation of an item)."""


def check_permutations(name: str, permutations: Any) -> int:
    """Return `permutations` as K, or raise a one-line `DataError` naming benchmark `name` if it is not 1 or more."""
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise DataError(f"{name}: permutations must be a whole number of at least 1 (got {permutations!r}); "
                        "1 asks each item once, K > 1 under K rotations of its options")
    return permutations


def item_rotations(name: str, records: Sequence[Mapping[str, Any]], permutations: int) -> list[list[int | None]]:
    """Return, per record, the rotations to ask it under: ``[None]`` for K = 1 (the sample as without rotations),
    else ``0 .. min(K, n) - 1`` for an item of n options (warning once when some items have fewer than K)."""
    if permutations == 1:
        return [[None] for _ in records]
    short = [r for r in records if len(r["options"]) < permutations]
    if short:
        fewest = min(len(r["options"]) for r in short)
        logger.warning("%s: %d of %d items have fewer than %d options (fewest: %d); each is asked under all of "
                       "its orders only", name, len(short), len(records), permutations, fewest)
    return [list(range(min(permutations, len(r["options"])))) for r in records]


def rotated_options(options: Mapping[str, str], answer: str, rotation: int) -> tuple[dict[str, str], str]:
    """Return the options moved `rotation` places up (wrapping), re-lettered A, B, ..., and the answer's new letter."""
    order = list(options)
    shift = rotation % len(order)
    order = order[shift:] + order[:shift]
    return {LETTERS[i]: options[old] for i, old in enumerate(order)}, LETTERS[order.index(answer)]


def rotation_id(item_id: Any, rotation: int | None) -> Any:
    """Return the sample id of `item_id` under `rotation`: its own for rotation 0 (or none), else ``<id>#r<k>``."""
    return item_id if not rotation else f"{item_id}#r{rotation}"


def unique_ids(name: str, samples: Sequence[Any]) -> None:
    """Raise a one-line `DataError` naming benchmark `name` when two samples share an id."""
    seen: set[Any] = set()
    for sample in samples:
        if sample.id in seen:
            raise DataError(f"{name}: two samples have the id {sample.id!r} (an item id that ends in '#r<k>' "
                            "clashes with a rotation's id)")
        seen.add(sample.id)


def _by_item(scores: list[SampleScore]) -> list[list[SampleScore]]:
    groups: dict[Any, list[SampleScore]] = {}
    for score in scores:
        item = (score.score.metadata or {}).get("item")
        if item is None:
            item = (score.sample_metadata or {}).get(ITEM_KEY, score.sample_id)
        groups.setdefault(item, []).append(score)
    return list(groups.values())


@metric(name="consistent")
def consistent() -> Metric:
    """Share of items answered right under every order they were shown in."""

    def compute(scores: list[SampleScore]) -> float:
        items = _by_item(scores)
        right = sum(all(s.score.as_float() >= 1.0 for s in group) for group in items)
        return right / len(items) if items else 0.0

    return compute


@metric(name="flip_rate")
def flip_rate() -> Metric:
    """Share of items whose chosen option text is not the same under every order (no answer is a choice)."""

    def compute(scores: list[SampleScore]) -> float:
        items = _by_item(scores)
        flips = sum(len({(s.score.metadata or {}).get("choice") for s in group}) > 1 for group in items)
        return flips / len(items) if items else 0.0

    return compute


def logged_as(instance: Metric, name: str) -> Metric:
    """Return metric `instance` logged as `name` in every install: Inspect namespaces a metric of an installed
    package (``fleming/consistent`` from a wheel), and the leaderboard reads the plain name."""
    try:
        from inspect_ai._util.registry import registry_info, set_registry_info
    except ImportError:  # a later Inspect moved it: keep its own name
        return instance
    info = registry_info(instance)
    if info.name != name:
        set_registry_info(instance, info.model_copy(update={"name": name}))
    return instance


def order_metrics() -> list[Metric]:
    """Return the metrics added to the strict score when K > 1: `consistent` and `flip_rate`."""
    return [logged_as(consistent(), "consistent"), logged_as(flip_rate(), "flip_rate")]


def item_stderr() -> Metric:
    """Return the standard error of the mean clustered by item (the K rotations of an item are not independent)."""
    return stderr(cluster=ITEM_KEY)
