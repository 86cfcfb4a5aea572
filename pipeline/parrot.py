"""Never a parrot: a clause of the reply that repeats the user's words, or an earlier reply,
is not an answer, and is neither spoken nor kept.

Small models often answer a question with the question itself ("What is the largest ocean on
earth?"), or with a line of an earlier reply; once such a reply is in the history they copy the
pattern. The reply stage asks ``ParrotGuard.copied_from`` about each clause as it comes out of
the chunker, so a normal answer waits for nothing.

A clause is a copy of a source (the user's words this turn, one of their clauses, or a clause
of a recent reply) when the words they share in common runs of two or more make nearly all of
the clause and most of the source. Answers that reuse the question's words stay well below
that ("What is the capital of France?" -> "The capital of France is Paris." shares 4 words of
6), an answer that fills in the question's "what" is no copy, and short clauses ("Yes.", "It is
Paris.") always pass.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .chunker import ClauseChunker
from .speech_text import clean_for_speech


@dataclass(frozen=True)
class ParrotConfig:
    min_words: int = 4
    """Clauses shorter than this always pass: a short answer may well be the question's words."""
    clause_share: float = 0.85
    """Share of the clause's words in runs of 2+ shared with a source from which it is a copy:
    a 6-word clause must match all 6 words, a 7-word one 6 of 7 ("Is the Pacific the largest
    ocean?" -> "The Pacific is the largest ocean." matches 5 of 6 and passes)."""
    source_share: float = 0.6
    """...and of the source's words, so that a phrase of a long question ("the largest ocean on
    earth") may lead an answer."""
    recent_replies: int = 3
    """Earlier replies whose clauses a clause may not repeat."""


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_ASKING = frozenset("what which who whom whose where when why how".split())
# The user asked to hear their own words: "say ...", "repeat after me: ...".
_WANTS_ECHO = re.compile(r"^\W*(?:please )?(?:say|repeat)\b|\b(?:repeat|say) (?:after me|this|these words|the following|back)\b")


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped."""
    return _WORD.findall(text.lower().replace("-", " "))


def shared_runs(a: Sequence[str], b: Sequence[str]) -> list[difflib.Match]:
    """The runs of 2+ words ``a`` and ``b`` share, in order. Single common words ("is", "the")
    are chance, not copying."""
    blocks = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()
    return [block for block in blocks if block.size >= 2]


def similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Words of ``a`` and ``b`` in shared runs, over the longer one's length (0..1)."""
    if not a or not b:
        return 0.0
    return sum(run.size for run in shared_runs(a, b)) / max(len(a), len(b))


@functools.lru_cache(maxsize=64)  # a reply is a source for the next few turns
def units(text: str) -> tuple[tuple[str, ...], ...]:
    """The words of ``text`` whole, then clause by clause (cleaned for speech as a reply is,
    then cut as the reply stage cuts one: a long question is parroted in several clauses)."""
    spoken = clean_for_speech(text)
    chunker = ClauseChunker()
    found = (tuple(words(unit)) for unit in [spoken, *chunker.push(spoken), *chunker.flush()])
    return tuple(dict.fromkeys(found))  # a one-clause text is its own clause: once is enough


class ParrotGuard:
    """Made for one reply: the user's words of this turn and the recent replies it may not copy.

    ``earlier`` are (question, reply) pairs, oldest first; a reply to (nearly) the same question
    as this turn's is not held against this one, since asking again deserves the same answer.
    """

    def __init__(
        self,
        user_text: str,
        earlier: Sequence[tuple[str, str]] = (),
        config: ParrotConfig | None = None,
    ) -> None:
        self.config = c = config or ParrotConfig()
        # Same question, same answer: asked (nearly) word for word again.
        self._sources: list[tuple[str, Sequence[str]]] = []
        question = units(user_text)[0]
        if not _WANTS_ECHO.search(user_text.lower()):
            self._add("the user's words", user_text)
        for asked, reply in list(earlier)[-c.recent_replies :] if c.recent_replies else []:
            if similarity(units(asked)[0], question) < c.clause_share:
                self._add("an earlier reply", reply)

    def _add(self, source: str, text: str) -> None:
        self._sources += [(source, unit) for unit in units(text) if len(unit) >= self.config.min_words]

    def copied_from(self, clause: str) -> str | None:
        """What the (cleaned) ``clause`` copies ("the user's words", "an earlier reply", "this
        reply"), or None when it may be spoken. A clause let through becomes a source itself:
        a reply that loops says each line once."""
        said = words(clause)
        if len(said) < self.config.min_words:
            return None
        for source, unit in self._sources:
            if self._copies(said, unit):
                return source
        self._sources.append(("this reply", said))
        return None

    def _copies(self, said: Sequence[str], source: Sequence[str]) -> bool:
        runs = shared_runs(said, source)
        shared = sum(run.size for run in runs)
        if shared < self.config.clause_share * len(said) or shared < self.config.source_share * len(source):
            return False
        # "The capital city of France is what?" -> "... is Paris.": an answer in the question's
        # slot. The clause has words of its own where the source has a question word.
        copied = {j for run in runs for j in range(run.b, run.b + run.size)}
        answered = any(word in _ASKING for j, word in enumerate(source) if j not in copied)
        return not (answered and shared < len(said))
