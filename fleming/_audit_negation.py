"""Sentences and negation for `fleming.audit`: NegEx (Chapman et al. 2001) as negspacy implements it.

negspacy's clinical trigger lists (``en_clinical``) find the triggers: preceding ones such as "no",
"without", "denies", "absence of"; following ones such as "was ruled out", "unlikely"; pseudo-negations such
as "no increase" negate nothing; termination terms ("but", "however", "which", "secondary to" ...) end a
trigger's reach. Added here: the following triggers "absent", "not seen" and the like, which a reasoning
text writes after a finding, and "lack of" / "lacks". A sentence ends at spaCy's sentencizer boundaries and
at every line break.

A claim relates a disease mention and a target mention in one sentence; `negated` says whether a trigger
negates it, NegEx's scope applied to the relation:

* a trigger between the two mentions ("D has no T", "D is not associated with T", "T, which is absent in
  D") negates it, unless a contrastive termination ("but", "however", "although" ...) stands between the
  trigger and the second mention ("D is not X but has T"); connecting ones ("which", "secondary to") do not
  cut a relation;
* outside them, NegEx's own rule for the target: a preceding trigger before a target that comes first ("no T
  is seen in D"), a following trigger after a target that comes last ("in D, T is absent"), with no
  termination of any kind in between;
* a trigger inside a linked name ("Absent speech") negates nothing, and one before a disease that comes
  first is about the disease ("not D, since T ..."), not the claim.

spaCy's thinc imports torch whenever it is installed (1.5 s and ~180 MB that the audit never uses), so
spaCy is imported with that one import refused; a process that already holds torch keeps it.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.abc
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from fleming.errors import MissingDependencyError

EXTRA_FOLLOWING = ["absent", "not present", "not seen", "not found", "not observed", "not reported",
                   "not expected", "not typical", "not a feature", "is not", "are not", "excluded"]
EXTRA_PRECEDING = ["lack of", "lacks", "lacking"]
CONTRASTS = {"although", "apart from", "as there are", "aside from", "but", "except", "however", "nevertheless",
             "still", "though", "yet"}

Span = tuple[int, int]


@dataclass(frozen=True)
class Scopes:
    """Character spans of one text's sentences, negation triggers and terminations (contrastive or not)."""

    sentences: tuple[Span, ...]
    preceding: tuple[Span, ...]
    following: tuple[Span, ...]
    terminations: tuple[tuple[int, int, bool], ...]

    def outside(self, names: Sequence[Span]) -> Scopes:
        """Return these scopes without the triggers that overlap any of `names` (a trigger inside a linked name,
        "Absent speech", negates nothing)."""
        def free(x: Span) -> bool:
            return not any(s < x[1] and x[0] < e for s, e in names)

        return dataclasses.replace(self, preceding=tuple(filter(free, self.preceding)),
                                   following=tuple(filter(free, self.following)))

    def negated(self, disease: Span, target: Span) -> bool:
        """Return whether a trigger negates the relation of two mentions in one sentence (module docstring)."""
        def cut(a: int, b: int, contrast_only: bool) -> bool:
            return any(a <= s and e <= b for s, e, contrast in self.terminations if contrast or not contrast_only)

        first, second = sorted((disease, target))
        if any(first[1] <= x[0] and x[1] <= second[0] and not cut(x[1], second[0], True)
               for x in (*self.preceding, *self.following)):
            return True
        sentence = next((s for s in self.sentences if s[0] <= target[0] < s[1]), (0, target[1]))
        if target < disease:
            return any(sentence[0] <= x[0] and x[1] <= target[0] and not cut(x[1], target[0], False)
                       for x in self.preceding)
        return any(target[1] <= x[0] and x[1] <= sentence[1] and not cut(target[1], x[0], False)
                   for x in self.following)


class _NoTorchForThinc(importlib.abc.MetaPathFinder):
    """Refuse ``import torch`` to thinc's optional-backend probe, and to no one else."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        if name.split(".")[0] == "torch":
            frame = sys._getframe(1)
            while frame is not None:
                if frame.f_globals.get("__name__") == "thinc.compat":
                    raise ModuleNotFoundError("torch is not needed by the reasoning audit", name=name)
                frame = frame.f_back
        return None


_LOCK = threading.Lock()  # scorers audit from worker threads; spaCy's vocabulary is not made for that


@functools.cache
def _pipeline() -> tuple[Any, Any]:
    guard = _NoTorchForThinc()
    sys.meta_path.insert(0, guard)
    try:
        import negspacy.negation  # noqa: F401  (registers the "negex" factory)
        import spacy
        from negspacy.termsets import termset
    except ImportError as exc:
        raise MissingDependencyError("the reasoning audit needs negspacy, a dependency of fleming-med "
                                     "(pip install 'negspacy>=1.1')") from exc
    finally:
        sys.meta_path.remove(guard)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    terms = {k: list(v) for k, v in termset("en_clinical").get_patterns().items()}  # a copy: theirs is shared
    terms["following_negations"] = sorted({*terms["following_negations"], *EXTRA_FOLLOWING})
    terms["preceding_negations"] = sorted({*terms["preceding_negations"], *EXTRA_PRECEDING})
    return nlp, nlp.add_pipe("negex", config={"neg_termset": terms})


def scopes(text: str) -> Scopes:
    """Return the sentences, negation triggers and terminations of `text`."""
    with _LOCK:
        nlp, negex = _pipeline()
        doc = nlp.get_pipe("sentencizer")(nlp.make_doc(text))
        for tok in doc[:-1]:
            if "\n" in tok.text or "\n" in tok.whitespace_:
                doc[tok.i + 1].is_sent_start = True
        preceding, following, terminating = negex.process_negations(doc)

    def chars(start: int, end: int) -> Span:
        return doc[start].idx, doc[end - 1].idx + len(doc[end - 1])

    return Scopes(sentences=tuple(chars(s.start, s.end) for s in doc.sents),
                  preceding=tuple(chars(s, e) for _, s, e in preceding),
                  following=tuple(chars(s, e) for _, s, e in following),
                  terminations=tuple((*chars(s, e), doc[s:e].text.lower() in CONTRASTS) for _, s, e in terminating))
