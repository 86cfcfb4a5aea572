"""Spoken arithmetic: "what is 17 times 23", "square root of 2", "15 percent of 80".

No ``eval``: the words become tokens (numbers and operators) and a small precedence parser
computes the value::

    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/" | "%of") unary)*
    unary   := "-" unary | "sqrt" unary | power
    power   := number ("squared" | "cubed" | "^" unary)*

``evaluate_spoken(text)`` answers None when the text is not arithmetic (some word is neither a
number nor an operator: "what is the capital of France"), so the caller can pass it on; it
answers with a spoken error for arithmetic it cannot compute (division by zero, "5 plus").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .number_words import format_number, words_to_digits

# Operator phrases, longest first, as the recognizer writes them.
_PHRASES: list[tuple[tuple[str, ...], str]] = sorted(
    [
        (("plus",), "+"), (("+",), "+"), (("add",), "+"),
        (("minus",), "-"), (("-",), "-"), (("−",), "-"), (("take", "away"), "-"),
        (("times",), "*"), (("x",), "*"), (("*",), "*"), (("×",), "*"), (("multiplied", "by"), "*"),
        (("divided", "by"), "/"), (("over",), "/"), (("/",), "/"), (("÷",), "/"),
        (("percent", "of"), "%of"), (("%", "of"), "%of"), (("percent",), "%"), (("%",), "%"),
        (("squared",), "squared"), (("cubed",), "cubed"),
        (("square", "root", "of"), "sqrt"), (("the", "square", "root", "of"), "sqrt"), (("square", "root"), "sqrt"),
        (("to", "the", "power", "of"), "^"), (("^",), "^"),
    ],
    key=lambda p: -len(p[0]),
)  # fmt: skip
_OPERATORS = {op for _, op in _PHRASES}
_FILLER = {"what", "is", "what's", "whats", "how", "much", "calculate", "compute", "equals", "equal", "equal?", "?", "=", "the", "answer", "to", "of", "a"}
"""Words around an expression that say nothing about it ("what is ... equal to"; "what a 17
times 23" is how the recognizer sometimes hears "what is")."""

MAX_MAGNITUDE = 1e15
"""Results past this are refused: they would take a minute to say."""


class SumError(Exception):
    """Arithmetic that cannot be computed; the message is what the user hears."""


@dataclass(frozen=True)
class Answer:
    expression: str
    """The expression as it will be read back ("17 times 23")."""
    value: float | None
    """None when it could not be computed."""
    reply: str


def tokenize(text: str) -> list[str] | None:
    """Numbers and operators, or None if any word is neither (then it is not arithmetic)."""
    words = [w for w in words_to_digits(text) if w not in {",", ".", "!"}]
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w[0].isdigit() or w[0] == ".":
            out.append(w)
            i += 1
            continue
        for phrase, op in _PHRASES:
            if tuple(words[i : i + len(phrase)]) == phrase:
                out.append(op)
                i += len(phrase)
                break
        else:
            if w in _FILLER:
                i += 1
                continue
            return None
    return out


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise SumError("Sorry, that sum seems to be missing a number.")
        self.i += 1
        return token

    def parse(self) -> float:
        value = self.sum()
        if self.peek() is not None:
            raise SumError("Sorry, I couldn't follow that sum.")
        return value

    def sum(self) -> float:
        value = self.product()
        while self.peek() in {"+", "-"}:
            op = self.take()
            right = self.product()
            value = value + right if op == "+" else value - right
        return value

    def product(self) -> float:
        value = self.unary()
        while self.peek() in {"*", "/", "%of"}:
            op = self.take()
            right = self.unary()
            if op == "*":
                value *= right
            elif op == "%of":
                value = value / 100 * right
            elif right == 0:
                raise SumError("You can't divide by zero.")
            else:
                value /= right
        return value

    def unary(self) -> float:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "sqrt":
            self.take()
            value = self.unary()
            if value < 0:
                raise SumError("A negative number has no real square root.")
            return math.sqrt(value)
        return self.power()

    def power(self) -> float:
        token = self.take()
        if token in _OPERATORS:
            raise SumError("Sorry, I couldn't follow that sum.")
        value = float(token)
        while self.peek() in {"squared", "cubed", "^", "%"}:
            op = self.take()
            if op == "%":
                value /= 100
                continue
            exponent = 2.0 if op == "squared" else 3.0 if op == "cubed" else self.unary()
            if abs(exponent) > 100:
                raise SumError("That number is too big for me to say.")
            try:
                value = value**exponent
            except (OverflowError, ZeroDivisionError):
                raise SumError("That number is too big for me to say.") from None
            if isinstance(value, complex):
                raise SumError("That has no real answer.")
        return value


def _read_back(tokens: list[str]) -> str:
    words = {"+": "plus", "-": "minus", "*": "times", "/": "divided by", "%of": "percent of", "%": "percent",
             "sqrt": "the square root of", "^": "to the power of"}  # fmt: skip
    return " ".join(words.get(t, t) for t in tokens)


def evaluate_spoken(text: str) -> Answer | None:
    """The answer to a spoken sum, or None when ``text`` is not arithmetic."""
    found = tokenize(text)
    if not found or not any(t in _OPERATORS for t in found) or not any(t[0].isdigit() or t[0] == "." for t in found):
        return None
    expression = _read_back(found)
    try:
        value = _Parser(found).parse()
        if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise SumError("That number is too big for me to say.")
    except SumError as e:
        return Answer(expression, None, str(e))
    reply = f"{expression} is {format_number(value)}."
    return Answer(expression, value, reply[0].upper() + reply[1:])
