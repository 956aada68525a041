"""The hooks a fleming plugin can implement.

Registration hooks are called once when the plugin manager starts; each receives a `Register`
callback, ``register(name, factory)``. The factory is called with a recipe's validated ``args``
and returns the component (see ``fleming.protocols`` for each kind's contract). Observer hooks are
called while a run goes on.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from fleming.types import Checkpoint

if TYPE_CHECKING:
    from fleming.context import RunInfo
    from fleming.eval_rows import EvalRow

hookspec = pluggy.HookspecMarker("fleming")
hookimpl = pluggy.HookimplMarker("fleming")


class Register(Protocol):
    """The callback a registration hook receives: ``register(name, factory)`` adds one component of the
    hook's kind. `name` is what recipes write (unique per kind: a clash is a startup error); `factory` is a
    class or function called with the recipe's validated args that returns the component."""

    def __call__(self, name: str, factory: Callable[..., Any]) -> None:
        """Register `factory` under `name`."""


# ---------------------------------------------------------------- registration

@hookspec
def register_data_sources(register: Register) -> None:
    """Register data sources (curated QA files, knowledge graphs).

    :param register: call ``register(name, factory)`` once per data source.
    """


@hookspec
def register_synthesizers(register: Register) -> None:
    """Register question synthesizers that turn a knowledge graph into items.

    :param register: call ``register(name, factory)`` once per synthesizer.
    """


@hookspec
def register_filters(register: Register) -> None:
    """Register filters that keep or reject items, each reject with its reason.

    :param register: call ``register(name, factory)`` once per filter.
    """


@hookspec
def register_verifiers(register: Register) -> None:
    """Register verifiers and annotators that judge items (label checks, difficulty labels).

    :param register: call ``register(name, factory)`` once per verifier.
    """


@hookspec
def register_teachers(register: Register) -> None:
    """Register teachers that write a chain of thought for an item whose answer is known.

    :param register: call ``register(name, factory)`` once per teacher.
    """


@hookspec
def register_rewards(register: Register) -> None:
    """Register reward functions scoring completions against items.

    :param register: call ``register(name, factory)`` once per reward.
    """


@hookspec
def register_curricula(register: Register) -> None:
    """Register curricula that choose what an RL stage trains on and when it ends.

    :param register: call ``register(name, factory)`` once per curriculum.
    """


@hookspec
def register_trainers(register: Register) -> None:
    """Register trainer backends for the cold start and the RL stages.

    :param register: call ``register(name, factory)`` once per trainer.
    """


@hookspec
def register_benchmarks(register: Register) -> None:
    """Register evaluation benchmarks (each builds an Inspect task).

    :param register: call ``register(name, factory)`` once per benchmark.
    """


@hookspec
def register_engines(register: Register) -> None:
    """Register generation engines that sample completions from a model for the stages that generate.

    :param register: call ``register(name, factory)`` once per engine.
    """


# ---------------------------------------------------------------- observers

@hookspec
def checkpoint_saved(checkpoint: Checkpoint, run: RunInfo) -> None:
    """Observe a checkpoint a trainer has just saved (evaluation hangs off this hook).

    :param checkpoint: the ``fleming.types.Checkpoint`` that was saved.
    :param run: the run (a ``fleming.context.RunInfo``: name, folder, seed, recipe file).
    """


@hookspec
def stage_finished(stage: str, manifest: dict[str, Any], run: RunInfo) -> None:
    """Observe a pipeline stage that has just finished and written its manifest.

    :param stage: the stage's name, e.g. ``filter`` or ``rl-stage1``.
    :param manifest: the stage's manifest as a dict (fingerprint, counts, timings).
    :param run: the run (a ``fleming.context.RunInfo``: name, folder, seed, recipe file).
    """


@hookspec
def eval_finished(results: list[EvalRow], run: RunInfo | None) -> None:
    """Observe an evaluation that has just finished.

    :param results: the evaluation's results (benchmark scores and log locations).
    :param run: the run (a ``fleming.context.RunInfo``), or None outside a run (``fleming eval``).
    """
