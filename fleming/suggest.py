"""Close-name suggestions for every "unknown X" message."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return " — did you mean 'a' or 'b'?" for the closest known names, or a list of what is known."""
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return " — did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not known:
        return " (none are registered)"
    shown = ", ".join(repr(k) for k in known[:12])
    more = f", ... ({len(known) - 12} more)" if len(known) > 12 else ""
    return f" (known: {shown}{more})"
