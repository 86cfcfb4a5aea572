"""What the user said about themselves (a name, a place, a job), kept for every later turn.

The history is trimmed to fit the model's context, so "my name is Priya" said thirty turns ago
is gone from it; the dialog puts the facts found here into its system message instead. They
are picked from the user's own words only, never from replies, files or tool results (those
are data), by precise patterns: a missed fact costs little, a wrong one is repeated every turn.
So "I'm X" counts as a name only after a greeting ("Hi, I'm Priya."), nothing is taken from a
question ("Is my name Priya?"), and words such as "not" or "a secret" are no name. A later
fact of the same kind replaces an earlier one ("call me Pri").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .number_words import parse_number


@dataclass(frozen=True)
class UserFact:
    kind: str
    """What it is about: "name", "age", "home", "origin", "job", "workplace", "favourite colour"..."""
    phrase: str
    """As the prompt puts it: "their name is Priya"."""


_WORD = r"[^\W\d_][\w'-]*"
_NAME = rf"(?P<value>(?:(?:Dr|Mr|Mrs|Ms|Miss|Prof)\.?\s+)?{_WORD}(?:\s+{_WORD}){{0,2}})"

# Words that end a value: "I live in Lyon now", "my name is Priya and I ...".
_ENDS = frozenset(
    "and but so because since with where which who that now currently these anymore though too as "
    "when while if then there here today yesterday tomorrow also i i'm you it it's is was are am".split()
)
# After these a name has not started: "my name is not important", "my name is a secret".
_NOT_A_NAME = _ENDS | frozenset(
    "not no a an the what unknown unimportant important irrelevant secret private none nothing also still "
    "hard difficult easy long short weird funny strange unusual common spelled spelt pronounced written too "
    "very kind same different on in at this like whatever something anything mine yours your my his her their "
    "our back later tomorrow anytime tonight soon maybe again sometime sorry good fine ok okay ready glad "
    "happy tired bored hungry confused lost listening wondering curious trying looking going done just "
    "actually really".split()
)
_NOT_A_VALUE = frozenset("not no what which who whatever unknown secret".split())


def _value(ends: frozenset[str]) -> str:
    """Up to five words, stopping before any of ``ends`` (so "my favourite food is pizza and
    my favourite colour is blue" leaves the second fact to be found)."""
    stop = "|".join(sorted(map(re.escape, ends), key=len, reverse=True))
    word = rf"(?!(?:{stop})\b)(?:St\.|{_WORD}|\d+)"
    return rf"(?P<value>{word}(?:\s+{word}){{0,4}})"


_PHRASE = _value(_ENDS)
_JOB = _value(_ENDS | {"at", "in", "for", "on", "from"})  # "a nurse at the city hospital": a nurse

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("name", re.compile(rf"\bmy name(?:'s| is)\s+(?:actually\s+|just\s+|still\s+)?{_NAME}", re.I)),
    # "call me later" is no name: these two need the name capitalised (as the recognizer writes it).
    ("capitalised name", re.compile(rf"(?<!don't )(?<!not )\b(?:call me|i'm called|i am called)\s+{_NAME}", re.I)),
    ("capitalised name", re.compile(rf"\b(?:hi|hello|hey)(?:\s+there|\s+vox)?[,.!]?\s+(?:i'm|i am)\s+{_NAME}(?=\s*(?:[,.!]|and\b|$))", re.I)),
    ("age", re.compile(r"\bi(?:'m| am)\s+(?P<value>\d{1,3}|[a-z]+(?:[ -][a-z]+)?)\s+years?\s+old\b", re.I)),
    ("home", re.compile(rf"\bi (?:live|am living|'m living|now live|currently live) in\s+{_PHRASE}", re.I)),
    ("origin", re.compile(rf"\bi(?:'m| am| come) from\s+{_PHRASE}", re.I)),
    ("job", re.compile(rf"\bi (?:work|am working|'m working) as\s+{_JOB}", re.I)),
    ("workplace", re.compile(rf"\bi (?:work|am working|'m working) (?P<prep>at|for)\s+{_PHRASE}", re.I)),
    ("favourite", re.compile(rf"\bmy (?P<spelling>favou?rite)\s+(?P<thing>{_WORD}(?:\s+{_WORD})?)\s+is\s+{_PHRASE}", re.I)),
]

# A clause that starts so and ends with "?" asks: "Do you know that I live in Lyon?"
_ASKING = frozenset(
    "what which who whom whose when where why how is are am was were do does did can could would will shall "
    "should may might isn't aren't don't doesn't didn't".split()
)


def facts_in(text: str) -> tuple[UserFact, ...]:
    """The facts one user turn states about the user, in the order said."""
    return _facts_in(" ".join(text.replace("’", "'").split()))


@functools.lru_cache(maxsize=1024)  # the dialog asks again each turn for every turn so far
def _facts_in(text: str) -> tuple[UserFact, ...]:
    found: list[tuple[int, UserFact]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if _is_question(text, match.start(), match.end()):
                continue
            fact = _fact(kind, match)
            if fact is not None:
                found.append((match.start(), fact))
    return tuple(fact for _, fact in sorted(found, key=lambda item: item[0]))


def known_facts(user_texts: Iterable[str]) -> list[UserFact]:
    """The facts of all these turns, oldest first; a later one of a kind replaces the earlier
    (in the earlier one's place, so the prompt's wording moves as little as possible)."""
    facts: dict[str, UserFact] = {}
    for text in user_texts:
        for fact in facts_in(text):
            facts[fact.kind] = fact
    return list(facts.values())


def describe(facts: Iterable[UserFact]) -> str:
    """One line for the system message, or "" when nothing is known."""
    phrases = [fact.phrase for fact in facts]
    return f"What the user has told you about themselves: {'; '.join(phrases)}." if phrases else ""


def _is_question(text: str, start: int, end: int) -> bool:
    """The match from ``start`` to ``end`` is in a question ("My name is Priya, what's yours?"
    is not one: it is the clause the match is in that must ask)."""
    stop = re.search(r"[.!?](?=\s|$)", text[end:])
    if stop is None or stop.group() != "?":
        return False
    clause = re.split(r"[.!?,;:](?:\s|$)", text[:start])[-1].split()
    return bool(clause) and clause[0].lower() in _ASKING


def _fact(kind: str, match: re.Match[str]) -> UserFact | None:
    if kind.endswith("name"):
        name = _name(match["value"], capitalised=kind == "capitalised name")
        return UserFact("name", f"their name is {name}") if name else None
    if kind == "age":
        value = match["value"]
        years = int(value) if value.isdigit() else parse_number(value)
        if years is None or not 0 < years < 125:
            return None
        return UserFact("age", f"they are {int(years)} years old")
    value = _phrase(match["value"])
    if not value:
        return None
    if kind == "home":
        return UserFact("home", f"they live in {value}")
    if kind == "origin":
        return UserFact("origin", f"they are from {value}")
    if kind == "job":
        return UserFact("job", f"they work as {value}")
    if kind == "workplace":
        return UserFact("workplace", f"they work {match['prep'].lower()} {value}")
    thing = match["thing"].lower()
    return UserFact(f"favourite {thing}", f"their {match['spelling'].lower()} {thing} is {value}")


def _name(value: str, capitalised: bool) -> str:
    """The name at the start of ``value``: its first word, and the capitalised ones after it."""
    words = value.split()
    first = words[0]
    if first.lower() in _NOT_A_NAME or capitalised and not first[0].isupper():
        return ""
    name = [first]
    for word in words[1:]:
        if not word[0].isupper() or word.lower() in _NOT_A_NAME:
            break
        name.append(word)
    return " ".join(w[0].upper() + w[1:] for w in name)


def _phrase(value: str) -> str:
    """``value``, or "" when it says the user did not tell ("not red", "a secret")."""
    words = value.split()
    return "" if words[0].lower() in _NOT_A_VALUE else " ".join(words)
