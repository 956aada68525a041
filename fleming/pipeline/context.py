"""The run as the pipeline sees it (internal), and the public ``StageContext`` its components get."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pluggy
from rich.console import Console

from fleming.components import build_at
from fleming.context import ANNOUNCED, RunInfo, StageContext
from fleming.engines import EngineChoice, resolve
from fleming.kg import KnowledgeGraph
from fleming.plugin_manager import Registry
from fleming.recipe import LoadedRecipe
from fleming.review import read_decisions
from fleming.types import Checkpoint

__all__ = ["ANNOUNCED", "RunContext", "StageContext", "StageRun"]


@dataclass
class RunContext:
    """One `fleming run`: the recipe, the plugins, the run folder and the console. Internal to the pipeline:
    components never see it, only the ``StageContext`` of their stage."""

    loaded: LoadedRecipe
    registry: Registry
    pm: pluggy.PluginManager
    run_dir: Path
    console: Console = field(default_factory=lambda: Console(stderr=True))
    show_progress: bool = True
    engine_override: str | None = None  # ``--engine``: replaces the recipe's engine and every use's own
    _engine: tuple[EngineChoice, str | None] | None = field(default=None, init=False, repr=False)

    def _resolved(self) -> tuple[EngineChoice, str | None]:
        if self._engine is None:
            self._engine = resolve(self.loaded.recipe.engine, self.engine_override, self.registry)
        return self._engine

    @property
    def engine(self) -> EngineChoice:
        """The run's engine: the recipe's ``engine``, ``--engine`` applied, ``auto`` resolved (once per run)."""
        return self._resolved()[0]

    @property
    def engine_note(self) -> str | None:
        """The line saying why ``auto`` passed over an engine that cannot run here, or None."""
        return self._resolved()[1]

    def use_engine(self, choice: EngineChoice | None, where: str,
                   log: Callable[[str], None] | None = None) -> EngineChoice:
        """The engine a use samples with: its own `choice` (None: the run's engine), ``--engine`` applied,
        ``auto`` resolved; a fallback note goes to `log` (default: the console)."""
        if choice is None:
            return self.engine
        resolved, note = resolve(choice, self.engine_override, self.registry)
        if note:
            (log or self.console.print)(f"{where}: {note}")
        return resolved

    @property
    def name(self) -> str:
        """The recipe's (and the run's) name."""
        return self.loaded.recipe.name

    @property
    def info(self) -> RunInfo:
        """The run as observer hooks see it."""
        return RunInfo(name=self.name, dir=self.run_dir, seed=self.loaded.recipe.seed, recipe=self.loaded.path)

    def build(self, kind: str, where: str, spec: Any) -> Any:
        """Instantiate the component named at field path `where`, reusing the args the loader validated."""
        return build_at(self.loaded, self.registry, kind, where, spec)

    def announce_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Tell every plugin that a checkpoint was saved (evaluation listens here)."""
        self.pm.hook.checkpoint_saved(checkpoint=checkpoint, run=self.info)


@dataclass
class StageRun:
    """What a stage function works with (internal): the run, the stage's upstream stages and config, and the
    public context it hands its components."""

    run: RunContext
    ctx: StageContext
    inputs: tuple[str, ...] = ()
    config: Any = None
    engine: EngineChoice | None = None  # the engine the manifest records when not the run's (a use's own)

    @property
    def recipe(self) -> Any:
        """The run's recipe."""
        return self.run.loaded.recipe


def model_path(run_dir: Path, stage: str) -> str | None:
    """The model a finished ``model`` or training stage recorded in its ``model.json``, or None."""
    path = run_dir / stage / "model.json"
    if not path.exists():
        return None
    return str(json.loads(path.read_text(encoding="utf-8"))["path"])


def stage_run(run: RunContext, name: str, folder: Path, inputs: tuple[str, ...], config: Any,
              start_from: str | None = None, rollouts: int | None = None) -> StageRun:
    """Build a stage's internal view and the public context its components get."""
    ctx = StageContext(stage=name, dir=folder, seed=run.loaded.recipe.seed, run_name=run.name,
                       base_model=model_path(run.run_dir, "model"),
                       start_model=model_path(run.run_dir, start_from) if start_from else None,
                       rollouts=rollouts, engine=run.engine, console=run.console,
                       show_progress=run.show_progress, on_checkpoint=run.announce_checkpoint)
    loaded: dict[str, dict[str, KnowledgeGraph]] = {}

    def graphs() -> dict[str, KnowledgeGraph]:
        if "graphs" not in loaded:
            loaded["graphs"] = load_graphs(run, ctx)
        return loaded["graphs"]

    ctx.graph_loader = graphs
    ctx.decision_loader = lambda: read_decisions(run.run_dir)
    ctx.engine_resolver = lambda choice, where: run.use_engine(choice, where, ctx.log)
    return StageRun(run=run, ctx=ctx, inputs=inputs, config=config)


def load_graphs(run: RunContext, ctx: StageContext) -> dict[str, KnowledgeGraph]:
    """Every source's knowledge graph, keyed by plugin name; a second source of the same plugin gets "#<index>"."""
    graphs: dict[str, KnowledgeGraph] = {}
    for i, spec in enumerate(run.loaded.recipe.data.sources):
        graph = run.build("data_sources", f"data.sources[{i}]", spec).graph(ctx)
        if graph is not None:
            graphs[spec.plugin if spec.plugin not in graphs else f"{spec.plugin}#{i}"] = graph
    return graphs
