"""Let Inspect count tokens without a network: fall back to an estimate when tiktoken cannot get its encoding.

Inspect estimates token counts with tiktoken's ``o200k_base`` encoding, which tiktoken downloads at first use.
Offline that download fails, and with it every generation of ``mockllm/model`` (it reports estimated usage).
Building a fleming task wraps Inspect's counter once: it is used unchanged while it works; after the first
network or import failure a character-based estimate (about 4 characters per token, plus Inspect's 10%
margin) is used instead, and a warning says so once. Nothing changes where tiktoken works.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable

logger = logging.getLogger(__name__)

_MARK = "_fleming_offline_fallback"


def estimate_tokens(text: str) -> int:
    """Return a rough token count for `text`: 4 characters per token plus 10%, at least 1."""
    return max(1, math.ceil(len(text) / 4 * 1.1))


def with_fallback(count: Callable[[str], int]) -> Callable[[str], int]:
    """Return `count` wrapped so that a failure to load the tokenizer switches to `estimate_tokens`."""
    failed: list[str] = []

    def count_text_tokens(text: str) -> int:
        if not failed:
            try:
                return count(text)
            except (OSError, ImportError) as exc:  # requests' errors are OSErrors; no tiktoken at all
                failed.append(f"{type(exc).__name__}: {exc}")
                logger.warning("tiktoken could not load its encoding (%s); token counts are estimated from "
                               "text length from now on", " ".join(failed[0].split())[:160])
        return estimate_tokens(text)

    setattr(count_text_tokens, _MARK, True)
    return count_text_tokens


def install_token_count_fallback() -> bool:
    """Wrap Inspect's text token counter (once per process); return False if Inspect has no such counter."""
    try:
        from inspect_ai.model import _model
    except ImportError:
        return False
    current = getattr(_model, "count_text_tokens", None)
    if current is None:
        return False
    if not getattr(current, _MARK, False):
        _model.count_text_tokens = with_fallback(current)
    return True
