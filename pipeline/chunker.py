"""Cut a streamed reply into speakable chunks as early as possible.

The LLM's text arrives in small deltas ("Hel", "lo", ",", " wor"...). Speech can start as soon
as the first clause is complete, so the first chunk is cut at the first clause boundary
(, ; : — –) once it has a few words (or, if asked, before a conjunction: "The sky is blue |
because...", where a speaker may pause too); later chunks are cut at sentence ends, at newlines, or at
a clause boundary once they are long enough to stand alone. ``max_chars`` caps any chunk.

A boundary counts only when the whitespace after it has arrived: "3." may yet become "3.14".
Some periods never end a sentence (titles such as "Dr.", "e.g.", initials, list numbers) and
some do unless a lower-case word follows ("etc.", "U.S.", an ellipsis). Nothing is cut
inside a markdown link, inline code or a fenced code block (which comes out as one chunk,
whatever its length), so ``clean_for_speech`` later sees each construct whole. URLs and
decimals are safe by the whitespace rule alone.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

_SENTENCE_END = ".!?…"
_CLAUSE_END = ",;:—–"
_CLOSERS = "\"'”’)]*_"  # may follow the punctuation: 'he said "yes." Then', "**Done.** Next"
_FENCE = "```"

# Periods after these never end a sentence: "Dr. Smith", "e.g. apples".
_NEVER_END = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "cf", "approx"}
# These end one unless a lower-case word follows: "so on, etc. Then" but "etc. and".
_MAYBE_END = {"etc", "inc", "ltd", "co"}
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # U.S, a.m, e.g
_OPENERS = "\"'“‘([*_"

PHRASE_STARTS = frozenset("because since although though while whereas unless until but".split())
"""Conjunctions that start a clause: the first chunk may end before one of these without
punctuation. Not "and", "or", "so" (they join words as often as clauses: "Romeo | and
Juliet", "so dirty"), not a verb after its subject ("The capital of France | is Paris": that
chunk is only the question's words again, which the parrot guard holds back), nor a relative
pronoun, a preposition or an article ("capital | of France" sounds broken)."""


@dataclass(frozen=True)
class ChunkerConfig:
    first_min_words: int = 3
    """The first chunk may end at a clause boundary once it has this many words. This is the
    chunk the user waits for, so it is allowed to be short."""
    first_cut_before: frozenset[str] = frozenset()
    """The first chunk may also end, once it has ``first_min_words``, before one of these
    words (lower case; the reply stage uses ``PHRASE_STARTS``). The model then says fewer words
    before the first audio: at 37 tokens a second (1.5B on 2 cores), "The sky is blue" is out
    ~8 tokens, 200 ms, before "...because of the scattering of light." Empty: punctuation only."""
    min_words: int = 6
    """Later chunks end at a clause boundary only from this many words; otherwise they run on
    to the sentence end, which sounds more natural."""
    max_chars: int = 220
    """Hard cap: a longer chunk is cut at the last whitespace before it. A fenced code block
    and a single word longer than this are kept whole."""


class ClauseChunker:
    """Feed text deltas with ``push``; call ``flush`` at the end of the stream.

    Both return completed chunks in order, stripped and never empty. After ``flush`` the
    chunker is ready for the next reply.
    """

    def __init__(self, config: ChunkerConfig | None = None) -> None:
        self.config = config or ChunkerConfig()
        self._buf = ""  # text not yet emitted; never starts with whitespace
        self._first = True  # the next chunk is the reply's first
        self._line_start = True  # the buffer begins a line (for "1." list markers)
        self._restart_scan()

    def push(self, delta: str) -> list[str]:
        if not self._buf:
            text = delta.lstrip()
            if "\n" in delta[: len(delta) - len(text)]:
                self._line_start = True
            delta = text
        self._buf += delta
        return self._scan(final=False)

    def flush(self) -> list[str]:
        chunks = self._scan(final=True)
        if self._fence_from >= 0:
            logger.debug("the reply ended inside a code block")
        rest = self._buf.strip()
        if rest:
            chunks.append(rest)
        self._buf = ""
        self._first = True
        self._line_start = True
        self._restart_scan()
        return chunks

    # --- scanning ----------------------------------------------------------------------------

    def _restart_scan(self) -> None:
        """Forget what the scan learned about the buffer; it restarts at its beginning."""
        self._pos = 0  # next character to look at
        self._has_word = False  # a letter or digit before _pos
        self._brackets = 0  # inside [link text]
        self._parens = 0  # inside (link target), after "]"
        self._in_code = False  # inside `inline code`
        self._last_space = -1  # last whitespace outside links and code: where a cap cut goes
        self._last_any_space = -1  # fallback when a link or code span holds no whitespace
        self._overflow = False  # over the cap with no whitespace yet: cut at the next one
        self._fence_from = -1  # inside a fence: where to look for the closing one

    def _scan(self, final: bool) -> list[str]:
        chunks: list[str] = []
        while (cut := self._find_cut(final)) is not None:
            chunk, rest = self._buf[:cut].strip(), self._buf[cut:]
            text = rest.lstrip()
            self._line_start = "\n" in rest[: len(rest) - len(text)]
            self._buf = text
            self._restart_scan()
            if chunk:
                chunks.append(chunk)
                self._first = False
        return chunks

    def _find_cut(self, final: bool) -> int | None:
        """Where the first chunk in the buffer ends, or None to wait for more text.

        Returning None leaves ``_pos`` on a character still undecided, without having updated
        any state for it, so the next call looks at it again with more text after it.
        """
        buf, cap = self._buf, self.config.max_chars
        i = self._pos
        while i < len(buf):
            self._pos = i
            ch = buf[i]
            if self._fence_from >= 0:
                end = buf.find(_FENCE, self._fence_from)
                if end < 0:
                    self._fence_from = max(self._fence_from, len(buf) - len(_FENCE) + 1)
                    return None
                return end + len(_FENCE)
            if i > cap and (cut := self._cap_cut()) is not None:
                return cut
            if ch.isspace():
                if self._first and self.config.first_cut_before and self._has_word and not (self._brackets or self._parens or self._in_code):
                    before = self._phrase_starts_after(i, final)
                    if before is None:
                        return None  # the next word is not complete yet
                    if before:
                        return i
                if ch == "\n":
                    self._brackets = self._parens = 0
                    self._in_code = False
                    if self._has_word:
                        return i  # a paragraph or list item ends here
                if self._overflow and self._has_word:
                    return i
                if self._has_word:
                    self._last_any_space = i
                    if not (self._brackets or self._parens or self._in_code):
                        self._last_space = i
            elif ch.isalnum():
                self._has_word = True
            elif ch == "`":
                if i + len(_FENCE) > len(buf) and not final:
                    return None  # it may be the start of a fence
                if buf.startswith(_FENCE, i):
                    if self._has_word:
                        return i  # say what came before the code
                    self._fence_from = i + len(_FENCE)
                    continue
                self._in_code = not self._in_code
            elif self._in_code:
                pass
            elif ch == "[":
                self._brackets += 1
            elif ch == "]" and self._brackets:
                if i + 1 >= len(buf) and not final:
                    return None  # "](" would open the link target
                self._brackets -= 1
                if not self._brackets and buf.startswith("(", i + 1):
                    self._parens = 1
                    i += 2
                    continue
            elif ch == "(" and self._parens:
                self._parens += 1
            elif ch == ")" and self._parens:
                self._parens -= 1
            elif self._brackets or self._parens:
                pass
            elif ch in _SENTENCE_END or ch in _CLAUSE_END:
                decision = self._boundary(i, final)
                if decision is None:
                    return None
                cut, resume = decision
                if cut is not None:
                    return cut if cut <= cap else self._cap_cut() or cut
                i = resume
                continue
            i += 1
        self._pos = i
        if final and len(buf) > cap:
            return self._cap_cut()  # the rest of the reply is too long for one chunk
        return None

    def _phrase_starts_after(self, i: int, final: bool) -> bool | None:
        """Whether the word after the whitespace at ``i`` starts a phrase the first chunk may
        end before (and the chunk so far is long enough); None: that word is not complete yet."""
        buf = self._buf
        j = i
        while j < len(buf) and buf[j] in " \t":
            j += 1
        k = j
        while k < len(buf) and (buf[k].isalpha() or buf[k] == "'"):
            k += 1
        if k == len(buf) and not final:
            return None
        word = buf[j:k]
        if word.lower() not in self.config.first_cut_before or k == j or (k < len(buf) and not (buf[k].isspace() or buf[k] in ",;:")):
            return False  # "island", "that's", "is." are not the word alone
        return _count_words(buf[:i]) >= self.config.first_min_words

    def _cap_cut(self) -> int | None:
        """Where to cut a chunk that grew past ``max_chars``: its last whitespace."""
        if self._overflow:
            return None
        cut = self._last_space if self._last_space > 0 else self._last_any_space
        if cut > 0:
            logger.debug("a chunk reached %d characters: cut at whitespace", self.config.max_chars)
            return cut
        self._overflow = True
        return None

    def _boundary(self, i: int, final: bool) -> tuple[int | None, int] | None:
        """Decide the punctuation at ``i``: (cut or None, where to resume), or None to wait."""
        buf = self._buf
        end = i
        while end < len(buf) and buf[end] in _SENTENCE_END + _CLAUSE_END:
            end += 1
        after = end
        while after < len(buf) and buf[after] in _CLOSERS:
            after += 1
        if after == len(buf) and not final:
            return None
        if after < len(buf) and not buf[after].isspace():
            return None, end  # "3.14", "10:30", "example.com/a.b": not a boundary
        if not self._has_word:
            return None, end
        marks = buf[i:end]
        if marks[-1] in _SENTENCE_END:  # "etc.," is a clause boundary, not a sentence end
            rule = self._sentence_rule(i, marks)
            if rule == "never":
                return None, end
            if rule == "if capital":
                following = self._next_word_start(after, final)
                if following is None:
                    return None
                if following < len(buf) and buf[following].islower():
                    return None, end
            return after, end
        needed = self.config.first_min_words if self._first else self.config.min_words
        if _count_words(buf[:after]) >= needed:
            return after, end
        return None, end

    def _sentence_rule(self, i: int, marks: str) -> Literal["always", "never", "if capital"]:
        """'always', 'never' or 'if capital': whether the stop at ``i`` ends a sentence."""
        if "…" in marks or ".." in marks:
            return "if capital"  # "Well... maybe" runs on; "I see... So" does not
        if marks != ".":
            return "always"
        start = i
        while start > 0 and not self._buf[start - 1].isspace():
            start -= 1
        word = self._buf[start:i].lstrip(_OPENERS)
        if word.lower() in _NEVER_END or re.fullmatch(r"[A-Z]", word):
            return "never"  # titles and initials: "Dr. Who", "J. R. R. Tolkien"
        if (word.isdigit() or len(word) == 1) and self._starts_line(start):
            return "never"  # a list marker: "1. Preheat the oven"
        if word.lower() in _MAYBE_END or _DOTTED.fullmatch(word):
            return "if capital"
        return "always"

    def _next_word_start(self, j: int, final: bool) -> int | None:
        """Index of the first non-space character from ``j`` (len(buf) past the end of a
        paragraph or the stream), or None while the buffer ends in whitespace."""
        buf = self._buf
        k = j
        while k < len(buf) and buf[k].isspace():
            if buf[k] == "\n":
                return len(buf)
            k += 1
        if k == len(buf) and not final:
            return None
        return k

    def _starts_line(self, k: int) -> bool:
        k -= 1
        while k >= 0 and self._buf[k] in " \t":
            k -= 1
        return self._line_start if k < 0 else self._buf[k] == "\n"


def _count_words(text: str) -> int:
    return sum(1 for word in text.split() if any(ch.isalnum() for ch in word))
