"""Spoken numbers back to digits, as the speech recognizer writes them.

Whisper tiny.en mostly writes digits ("17 times 23") but sometimes words ("seventeen times
twenty-three", "one hundred and five", "a half"). Command matching works on digits only, so
``words_to_digits`` rewrites every run of number words in a text as one number, and leaves
every other word as it was. (``pipeline/spoken_numbers.py`` goes the other way, for speech.)
"""

from __future__ import annotations

import re

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_FRACTIONS = {"half": 0.5, "quarter": 0.25}
_NUMBER_WORDS = {*_UNITS, *_TENS, *_SCALES}

_TOKEN = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+|[a-z]+(?:'[a-z]+)?|\S", re.IGNORECASE)


def format_number(value: float) -> str:
    """Digits without a trailing ``.0``; at most four decimals."""
    rounded = round(value, 4)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.4f}".rstrip("0").rstrip(".")


def tokens(text: str) -> list[str]:
    """Lower-case words, numbers and single symbols; hyphens between words split them."""
    return [token for token, _, _ in token_spans(text)]


Span = tuple[str, int, int]
"""A token and where it came from: ``text[start:end]``."""


def token_spans(text: str) -> list[Span]:
    """``tokens(text)``, each with the span of ``text`` it was read from."""
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text, flags=re.IGNORECASE)  # same length
    return [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _is_digits(token: str) -> bool:
    return bool(token) and (token[0].isdigit() or token[0] == "." and len(token) > 1)


def _digits_value(token: str) -> float:
    return float(token.replace(",", ""))


def _free(current: float, unit: int) -> bool:
    """``unit`` can go into the last two digits: "twenty three" is one number, "two three" two."""
    rest = current % 100
    return rest == 0 or (rest >= 20 and rest % 10 == 0 and unit < 10)


def _read_number(words: list[str], i: int) -> tuple[float, int] | None:
    """The number starting at ``words[i]`` and the index after it, or None."""
    total = 0.0
    current = 0.0
    seen = False
    j = i
    n = len(words)
    while j < n:
        w = words[j]
        if w in _UNITS and _free(current, _UNITS[w]):
            current += _UNITS[w]
        elif w in _TENS and current % 100 == 0:
            current += _TENS[w]
        elif w in _SCALES and (seen or w == "hundred"):
            current = max(current, 1) * _SCALES[w]
            if _SCALES[w] > 100:
                total += current
                current = 0
        elif w == "a" and j + 1 < n and words[j + 1] in {"hundred", "thousand", "million"} and not seen:
            current = 1
        elif w == "and" and seen and j + 1 < n and (words[j + 1] in _UNITS or words[j + 1] in _TENS):
            pass  # "one hundred and five"
        elif w == "and" and seen and words[j + 1 : j + 3] in (["a", "half"], ["a", "quarter"]):
            total += current + _FRACTIONS[words[j + 2]]
            return total, j + 3
        elif w == "point" and seen and j + 1 < n and (words[j + 1] in _UNITS or words[j + 1].isdigit()):
            digits = []
            j += 1
            while j < n and (words[j] in _UNITS and _UNITS[words[j]] < 10 or words[j].isdigit()):
                digits.append(str(_UNITS[words[j]]) if words[j] in _UNITS else words[j])
                j += 1
            return total + current + float("0." + "".join(digits)), j
        else:
            break
        seen = True
        j += 1
    if not seen:
        return None
    return total + current, j


def words_to_digits(text: str) -> list[str]:
    """``text`` as tokens, each run of number words replaced by its digits.

    "one hundred and five" → ["105"]; "a half" → ["0.5"]; "3.5" stays; "what is a dog" keeps
    its "a". For matching only: "0042" becomes "42", and a long number may lose digits
    (``words_to_digits_spans`` says where each token came from, to keep the user's words)."""
    return [token for token, _, _ in words_to_digits_spans(text)]


def words_to_digits_spans(text: str) -> list[Span]:
    """``words_to_digits(text)``, each token with the span of ``text`` it stands for (a run of
    number words: from its first word to its last)."""
    spans = token_spans(text)
    words = [token for token, _, _ in spans]
    out: list[Span] = []

    def put(token: str, first: int, after: int) -> None:
        out.append((token, spans[first][1], spans[after - 1][2]))

    i = 0
    while i < len(words):
        w = words[i]
        start = i
        if _is_digits(w):
            value = _digits_value(w)
            i += 1
            if words[i : i + 3] in (["and", "a", "half"], ["and", "a", "quarter"]):  # "1 and a half"
                value += _FRACTIONS[words[i + 2]]
                i += 3
            put(format_number(value), start, i)
            continue
        if w in {"a", "one"} and i + 1 < len(words) and words[i + 1] in _FRACTIONS:
            put(format_number(_FRACTIONS[words[i + 1]]), start, i + 2)
            i += 2
            continue
        if w in _NUMBER_WORDS or (w == "a" and i + 1 < len(words) and words[i + 1] in _SCALES):
            read = _read_number(words, i)
            if read is not None:
                value, i = read
                put(format_number(value), start, i)
                continue
        put(w, i, i + 1)
        i += 1
    return out


def parse_number(text: str) -> float | None:
    """The number ``text`` says, when it says nothing else: "twenty-three", "3.5", "a half"."""
    found = words_to_digits(text.strip().rstrip(".?!"))
    if len(found) == 1 and _is_digits(found[0]):
        return float(found[0])
    return None
