"""What an Inspect model name needs before it can answer: the Python packages and the environment variables.

``needs("openai/gpt-4o")`` is ``ProviderNeeds(packages=(("openai", "openai"),), env=("OPENAI_API_KEY",))``.
The table follows the providers of inspect-ai 0.3: most hosted providers talk through the ``openai`` client;
``openai-api/<service>/<model>`` reads ``<SERVICE>_API_KEY`` and ``<SERVICE>_BASE_URL``; ``vllm`` and
``sglang`` start a local server (their package) unless ``VLLM_BASE_URL`` / ``SGLANG_BASE_URL`` point at a
running one. Names of unknown providers (a plugin's own) give no needs. Only names are returned: nothing
here reads a secret's value or calls a provider.
"""
from __future__ import annotations

from dataclasses import dataclass

_OPENAI = ("openai", "openai")  # (import name, pip name)
_TABLE: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "openai": ((_OPENAI,), ("OPENAI_API_KEY",)),
    "anthropic": ((("anthropic", "anthropic"),), ("ANTHROPIC_API_KEY",)),
    "google": ((("google.genai", "google-genai"),), ("GOOGLE_API_KEY",)),
    "mistral": ((("mistralai", "mistralai"),), ("MISTRAL_API_KEY",)),
    "groq": ((("groq", "groq"),), ("GROQ_API_KEY",)),
    "grok": ((("xai_sdk", "xai-sdk"),), ("XAI_API_KEY",)),
    "together": ((_OPENAI,), ("TOGETHER_API_KEY",)),
    "fireworks": ((_OPENAI,), ("FIREWORKS_API_KEY",)),
    "openrouter": ((_OPENAI,), ("OPENROUTER_API_KEY",)),
    "deepseek": ((_OPENAI,), ("DEEPSEEK_API_KEY",)),
    "ollama": ((_OPENAI,), ()),
    "hf": ((("transformers", "transformers"), ("torch", "torch")), ()),
    "mockllm": ((), ()),
    "none": ((), ()),
}
_SERVERS = {"vllm": "VLLM_BASE_URL", "sglang": "SGLANG_BASE_URL"}


@dataclass(frozen=True)
class ProviderNeeds:
    """The packages (import name, pip name) and environment variables an Inspect model needs."""

    provider: str
    packages: tuple[tuple[str, str], ...] = ()
    env: tuple[str, ...] = ()
    known: bool = True


def needs(model: str, environ: dict[str, str] | None = None) -> ProviderNeeds:
    """Return what the Inspect model `model` (``provider/name``) needs; `environ` decides vllm / sglang."""
    import os

    env = os.environ if environ is None else environ
    parts = model.split("/")
    provider = parts[0]
    if provider in _TABLE:
        packages, variables = _TABLE[provider]
        return ProviderNeeds(provider, packages, variables)
    if provider in ("openai-api", "openai-api-completions") and len(parts) >= 3:
        service = parts[1].upper().replace("-", "_")
        return ProviderNeeds(provider, (_OPENAI,), (f"{service}_API_KEY", f"{service}_BASE_URL"))
    if provider in _SERVERS:  # a running server needs only the client; otherwise the engine starts here
        own = (provider, provider)
        return ProviderNeeds(provider, (_OPENAI,) if env.get(_SERVERS[provider]) else (_OPENAI, own))
    return ProviderNeeds(provider, known=False)
