"""Turn a language model's reply, often markdown, into plain text a TTS voice reads naturally.

A voice should not say "asterisk asterisk" or spell out a URL, so markup is reduced to the
words it wraps: headers, emphasis, lists and tables keep their text, links keep their label,
URLs and e-mail addresses are read as their host ("example dot com"), code blocks are replaced
by a short spoken note, and emoji and stray symbols go. Normal punctuation stays: the
phonemizer uses it for its pauses. Last, numbers, symbols and abbreviations are written out in
the voice's language (``spoken_numbers.normalize_for_speech``): "$5.50 at 9:05 am" is read
"five dollars and fifty cents at nine oh five AM".

The reply stage calls ``clean_for_speech`` on each chunk from the ``ClauseChunker``, which
keeps fenced blocks, links and URLs whole, so each construct is seen here in one piece.
"""

from __future__ import annotations

import html
import logging
import re

from .spoken_numbers import normalize_for_speech

logger = logging.getLogger(__name__)

CODE_BLOCK_PHRASE = "I've left out a code block."
"""Spoken in place of a fenced code block: reading code aloud helps nobody."""

# --- whole-text patterns (may span lines) ----------------------------------------------------

# An unterminated fence runs to the end: the chunker hands over a block that never closed.
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_HTML_BREAK = re.compile(r"<br\s*/?>|</?(?:p|div|li|ul|ol|tr|table|h[1-6])\b[^<>]*>", re.IGNORECASE)
# A tag name must follow "<" directly, so "<https://…>" autolinks and "a < b" are not tags.
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")

# --- line patterns ---------------------------------------------------------------------------

_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_QUOTE = re.compile(r"^\s*(?:>\s?)+")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?")

# --- inline patterns -------------------------------------------------------------------------

_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+|[^<>\s@]+@[^<>\s]+)>", re.IGNORECASE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_FOOTNOTE = re.compile(r"\[\^[^\]]*\]")
_INLINE_CODE = re.compile(r"`+([^`]*)`+")
_SCHEME_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'()\[\]]+", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])(?:mailto:)?([\w.+-]+)@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b")
# Bare domains only with a well-known top-level domain, so "file.py" or "e.g." stay as they are.
_BARE_URL = re.compile(
    r"(?<![\w@./-])(?:www\.)?(?:[A-Za-z0-9-]+\.)+"
    r"(?:com|org|net|edu|gov|io|dev|ai|app|co|uk|de|fr|nl|eu|info|me|tv|us|ca|au|xyz|ly)\b"
    r"(?:[:/][^\s<>\"'()\[\]]*)?",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_ITALIC = re.compile(r"(?<!\*)\*(?=\S)([^*]+?)(?<=\S)\*(?!\*)|(?<!\w)_(?=\S)([^_]+?)(?<=\S)_(?!\w)")
_STRIKE = re.compile(r"~~(.+?)~~")
_TIMES = re.compile(r"(?<=\d) [*×] (?=\d)")
_NUMBER_SIGN = re.compile(r"(?<!\w)#(?=\d)")
_ABOUT = re.compile(r"(?<!\S)~(?=\d)")
_ARROW = re.compile(r"\s*(?:->|=>|→|⇒|⟶)\s*")
_COMPARISON = re.compile(r"(?<=\w) ([<>]=?) (?=\w)")
_COMPARISON_WORDS = {"<": "less than", ">": "greater than", "<=": "at most", ">=": "at least"}
# Emoji, pictographs, dingbats, arrows, shapes, and the joiners and selectors that build emoji.
_PICTOGRAPH = re.compile(
    "[\U0001F000-\U0001FBFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF\u25A0-\u25FF\u2190-\u21FF"
    "\u2022\u00B7\u2139\u203C\u2049\u3030\u303D\u3297\u3299\uFE0E\uFE0F\u200D\u20E3"
    "\U000E0020-\U000E007F]"
)
_STRAY = re.compile(r"[*#|~<>`^\\{}]")
_TRAILING_URL_PUNCT = ".,;:!?'\""

# --- tidying ---------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:…]+)(?=\s|$)")
_REPEATED_COMMA = re.compile(r",(?:\s*,)+")
_COMMA_BEFORE_STOP = re.compile(r"[,;:]\s*(?=[.!?])")
_EMPTY_PARENS = re.compile(r"\(\s*\)|\[\s*\]")
_ENDS_CLAUSE = re.compile(r"[.!?…:;,][\"'”’)\]]*$")


def is_speakable(text: str) -> bool:
    """True when ``text`` has at least one letter or digit for the voice to say."""
    return any(ch.isalnum() for ch in text)


def clean_for_speech(text: str, lang: str = "en") -> str:
    """Plain, speakable text for ``text`` in language ``lang``; "" when nothing speakable is left."""
    text, blocks = _FENCE.subn(f"\n{CODE_BLOCK_PHRASE}\n", text)
    if blocks:
        logger.debug("left out %d code block(s) from speech", blocks)
    text = _HTML_COMMENT.sub(" ", text)
    text = _HTML_BREAK.sub("\n", text)
    text = html.unescape(_HTML_TAG.sub("", text))

    lines: list[str] = []  # "" marks a blank or unspeakable line: a paragraph break
    items: list[bool] = []  # headers, list items, table rows, the code note: own sentences
    for raw in text.split("\n"):
        line, is_item = _strip_line_markup(raw)
        line = _clean_inline(line).strip()
        lines.append(line if is_speakable(line) else "")
        items.append(is_item or line == CODE_BLOCK_PHRASE)

    spoken: list[str] = []
    for i, line in enumerate(lines):
        if not line:
            continue
        following = next((j for j in range(i + 1, len(lines)) if lines[j]), None)
        # A line that ends a paragraph or precedes a list item needs a stop, or the voice
        # runs "Steps" and "Preheat the oven" together into one breathless sentence.
        breaks = following is not None and (following > i + 1 or items[following])
        if (items[i] or breaks) and not _ENDS_CLAUSE.search(line):
            line += "."
        spoken.append(line)
    return normalize_for_speech(_tidy(" ".join(spoken)), lang)


def _strip_line_markup(line: str) -> tuple[str, bool]:
    """The line without its block markup, and whether it is a header, list item or table row."""
    header = _HEADER.match(line)
    if header:
        return header.group(1), True
    line = _QUOTE.sub("", line)
    if "|" in line:
        cells = [cell.strip() for cell in line.split("|")]
        return ", ".join(cell for cell in cells if cell), True
    marker = _LIST_MARKER.match(line)
    if marker:
        return line[marker.end() :], True
    return line, False


def _clean_inline(line: str) -> str:
    line = _AUTOLINK.sub(r"\1", line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _REF_LINK.sub(r"\1", line)
    line = _FOOTNOTE.sub("", line)
    line = _INLINE_CODE.sub(r"\1", line)
    # Full URLs first: an address inside one is part of the URL, not an e-mail.
    line = _SCHEME_URL.sub(_read_url, line)
    line = _EMAIL.sub(_read_email, line)
    line = _BARE_URL.sub(_read_url, line)
    line = _TIMES.sub(" times ", line)
    line = _BOLD.sub(lambda m: m.group(1) or m.group(2), line)
    line = _ITALIC.sub(lambda m: m.group(1) or m.group(2), line)
    line = _STRIKE.sub(r"\1", line)
    line = _NUMBER_SIGN.sub("number ", line)
    line = _ABOUT.sub("about ", line)
    line = _ARROW.sub(", ", line)
    line = _COMPARISON.sub(lambda m: f" {_COMPARISON_WORDS[m.group(1)]} ", line)
    line = _PICTOGRAPH.sub(" ", line)
    line = _STRAY.sub("", line)
    return line.replace("_", " ")


def _read_url(match: re.Match[str]) -> str:
    """The host of a URL as a voice says it: "https://www.example.com/a" -> "example dot com"."""
    url = match.group(0)
    trailing = len(url) - len(url.rstrip(_TRAILING_URL_PUNCT))
    url, tail = url[: len(url) - trailing], url[len(url) - trailing :]
    host = re.sub(r"^[a-z]+://", "", url, flags=re.IGNORECASE)
    host = re.split(r"[/?#]", host, maxsplit=1)[0]
    host = host.rsplit("@", 1)[-1].split(":", 1)[0]
    if host.lower().startswith("www."):
        host = host[4:]
    return _dotted(host) + tail


def _read_email(match: re.Match[str]) -> str:
    return f"{_dotted(match.group(1))} at {_dotted(match.group(2))}"


def _dotted(name: str) -> str:
    return " dot ".join(part for part in name.split(".") if part)


def _tidy(text: str) -> str:
    text = _EMPTY_PARENS.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _REPEATED_COMMA.sub(",", text)
    text = _COMMA_BEFORE_STOP.sub("", text)
    text = text.strip().lstrip(",;:.").strip()
    return text if is_speakable(text) else ""
