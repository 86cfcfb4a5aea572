"""How long to wait for more words: a shorter hangover after a complete-sounding question, a
longer one after a trailing "and" or "um".

The text is the provisional transcript taken at the first pause, so the decision costs no
extra recognition. Whisper does not always write the question mark (less often with its
window cut to the audio): a sentence that opens like a question and ends on a whole word is
taken as one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRAILING_INCOMPLETE = {
    "and", "or", "but", "so", "because", "um", "uh", "er", "erm", "hmm", "the", "a", "an", "to",
    "of", "with", "if", "then", "like", "my", "your", "for", "in", "on", "at", "is", "are", "what",
    "which", "that", "about", "from", "how", "when", "where", "why", "who", "can", "could", "would",
}  # fmt: skip


QUESTION_OPENERS = {
    "who", "what", "where", "when", "why", "how", "which", "whose", "is", "are", "was", "were",
    "do", "does", "did", "can", "could", "would", "will", "should", "shall", "have", "has",
}  # fmt: skip


@dataclass
class HangoverConfig:
    question_ms: int = 250
    """After a transcript ending in a question mark: the user has asked."""
    statement_ms: int = 350
    """After a full stop or exclamation with at least two words."""
    incomplete_ms: int = 900
    """After a trailing conjunction, article, preposition or filler, or an ellipsis."""


def hangover_for(text: str, default_ms: int, config: HangoverConfig | None = None) -> int:
    c = config or HangoverConfig()
    stripped = text.strip()
    if not stripped:
        return default_ms
    words = re.findall(r"[a-z']+", stripped.lower())
    if stripped.endswith(("...", "…", ",", "-")) or (words and words[-1] in TRAILING_INCOMPLETE):
        return max(default_ms, c.incomplete_ms)
    if stripped.endswith("?") or (stripped[-1].isalnum() and len(words) >= 3 and words[0] in QUESTION_OPENERS):
        return min(default_ms, c.question_ms)
    if stripped.endswith((".", "!")) and len(words) >= 2:
        return min(default_ms, c.statement_ms)
    return default_ms
