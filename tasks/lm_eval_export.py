"""Export the benchmarks as lm-evaluation-harness task YAMLs over the local uniform JSONL files.

For users who want log-likelihood scoring (``lm_eval --include_path OUT --tasks fleming_med9``). Each task
reads its file with ``dataset_path: json`` and shows the same prompt as the Inspect task: the template
``prompts/eval_mcq.jinja`` itself is embedded as lm-eval's ``doc_to_text`` (it uses only ``question`` and
``options``, and no block tags, so both Jinja set-ups render it alike). Two ways to score:

* ``choices="letters"`` (default): the prompt, then ``<answer>``; the continuations are the option letters,
  so the model's probability of writing ``<answer>X`` picks its answer;
* ``choices="texts"``: the prompt, then ``Answer:``; the continuations are the option texts (acc and acc_norm).

The system prompt is not part of a task YAML; lm-eval's ``--system_instruction`` adds it.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from fleming.errors import RecipeError
from fleming.prompts import environment
from fleming.tasks import BENCHMARKS, SUITES, expand_benchmarks
from fleming.tasks._records import data_dir_from, find_file

PREFIX = "fleming_"
_COMMENT = re.compile(r"\A\s*\{#.*?#\}\s*", re.DOTALL)  # the template's leading comment (a no-op in the YAML)
_KEYS = "(options.items() | rejectattr('1', 'none') | map(attribute='0') | list)"
_TEXTS = "(options.items() | rejectattr('1', 'none') | map(attribute='1') | list)"
_ANSWER = "(answer if answer is string else answer[0])"  # JMED's official rows give ["C"]


def prompt_template() -> str:
    """Return the source of ``eval_mcq.jinja`` (the same override folder as the Inspect tasks applies)."""
    env = environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, "eval_mcq.jinja")
    return _COMMENT.sub("", source).strip()


def task_config(name: str, data_file: Path, choices: Literal["letters", "texts"] = "letters") -> dict[str, Any]:
    """Return the lm-eval config of one benchmark over one uniform JSONL file."""
    common: dict[str, Any] = {
        "task": PREFIX + name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_target": f"{{{{ {_KEYS}.index({_ANSWER}) }}}}",
        "metadata": {"version": 1.0, "exported_by": "fleming.tasks.lm_eval_export", "benchmark": name},
    }
    if choices == "letters":
        return {**common, "doc_to_text": prompt_template() + "\n<answer>", "doc_to_choice": f"{{{{ {_KEYS} }}}}",
                "target_delimiter": "",
                "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]}
    if choices == "texts":
        return {**common, "doc_to_text": prompt_template() + "\nAnswer:", "doc_to_choice": f"{{{{ {_TEXTS} }}}}",
                "target_delimiter": " ",
                "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                                for m in ("acc", "acc_norm")]}
    raise RecipeError(f"choices must be 'letters' or 'texts' (got {choices!r})")


def _spec(name: str) -> Any:
    if BENCHMARKS[name].reads_run:
        raise RecipeError(f"{name} is not exported to lm-eval (its rows are chosen by meta.origin); "
                          "evaluate it with Inspect")
    return importlib.import_module(f"fleming.tasks.{name}").SPEC


def export_lm_eval(out_dir: str | Path, data_dir: str | Path | None = None,
                   benchmarks: str | Sequence[str] = "med9", *, choices: Literal["letters", "texts"] = "letters",
                   data_files: Mapping[str, str | Path] | None = None, group: str | None = None) -> list[Path]:
    """Write one ``fleming_<name>.yaml`` per benchmark and a group YAML into `out_dir`; return their paths.

    `data_dir` is the folder of uniform JSONL files (default ``$FLEMING_DATA_DIR``); `data_files` maps a
    benchmark to its file instead (e.g. ``{"jmed": "JMED.jsonl"}``). The group is ``fleming_med9`` when the
    nine benchmarks are exported, else ``fleming_benchmarks`` (or `group`). A missing file is a DataError.
    """
    names = expand_benchmarks(benchmarks)
    folder = data_dir_from(data_dir)
    files = {n: find_file(_spec(n), folder, (data_files or {}).get(n)) for n in names}
    missing = [n for n, f in files.items() if f is None]
    if missing:
        raise RecipeError(f"lm-eval export needs local files: pass data_dir or set FLEMING_DATA_DIR "
                          f"(no folder given for {', '.join(missing)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, file in files.items():
        path = out / f"{PREFIX}{name}.yaml"
        _write_yaml(path, task_config(name, file, choices))  # type: ignore[arg-type]
        written.append(path)
    group = group or (PREFIX + "med9" if names == SUITES["med9"] else PREFIX + "benchmarks")
    path = out / f"{group}.yaml"
    _write_yaml(path, {"group": group, "task": [PREFIX + n for n in names],
                       "aggregate_metric_list": [{"metric": "acc", "aggregation": "mean", "weight_by_size": False}],
                       "metadata": {"version": 1.0}})
    written.append(path)
    return written


def _write_yaml(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=1000), encoding="utf-8")
    tmp.replace(path)
