"""A scripted Inspect model for the verifier tests: ``fleming-scripted/<name>`` replies from a table.

``SCRIPT[question_start] = [reply, reply, ...]`` gives the replies to successive calls about the question
starting with that text (the last one repeats); a reply that is an exception instance is raised. Every call
is counted in ``CALLS`` and its messages kept in ``PROMPTS``. Registered with Inspect once, on import.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from inspect_ai.model import GenerateConfig, ModelAPI, ModelOutput, ModelUsage, modelapi

SCRIPT: dict[str, list[Any]] = {}
CALLS: Counter[str] = Counter()
PROMPTS: list[list[dict[str, str]]] = []


def reset(script: dict[str, list[Any]]) -> None:
    """Replace the script and zero the call counts."""
    SCRIPT.clear()
    SCRIPT.update(script)
    CALLS.clear()
    PROMPTS.clear()


def _key(text: str) -> str:
    for start in SCRIPT:
        if start in text:
            return start
    raise KeyError(f"no scripted reply for {text[:80]!r}")


class ScriptedAPI(ModelAPI):
    """Reply from SCRIPT; count calls."""

    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any) -> None:
        super().__init__(model_name, base_url, api_key, [], config)

    async def generate(self, input: Any, tools: Any, tool_choice: Any, config: GenerateConfig) -> ModelOutput:
        PROMPTS.append([{"role": m.role, "content": m.text} for m in input])
        key = _key(input[-1].text)
        replies = SCRIPT[key]
        reply = replies[min(CALLS[key], len(replies) - 1)]
        CALLS[key] += 1
        if isinstance(reply, BaseException):
            raise reply
        out = ModelOutput.from_content(model=self.model_name, content=reply)
        out.usage = ModelUsage(input_tokens=20, output_tokens=5, total_tokens=25, total_cost=0.001)
        return out


@modelapi(name="fleming-scripted")
def scripted() -> type[ModelAPI]:
    """The scripted provider."""
    return ScriptedAPI
