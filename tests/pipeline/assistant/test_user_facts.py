"""What the user says about themselves is picked from their own words, precisely."""

from __future__ import annotations

import pytest
from voxloop.pipeline.assistant.user_facts import describe, facts_in, known_facts


def phrases(text: str) -> list[str]:
    return [fact.phrase for fact in facts_in(text)]


@pytest.mark.parametrize(
    ("said", "facts"),
    [
        ("My name is Priya.", ["their name is Priya"]),
        ("my name is priya", ["their name is Priya"]),
        ("My name's Anne Marie Dubois-Lee.", ["their name is Anne Marie Dubois-Lee"]),
        ("My name is Priya, what is yours?", ["their name is Priya"]),
        ("Hi, I'm Priya.", ["their name is Priya"]),
        ("Hello, I'm Priya and I need some help.", ["their name is Priya"]),
        ("Please call me Pri.", ["their name is Pri"]),
        ("I live in Lyon.", ["they live in Lyon"]),
        ("I live in the south of France with my wife.", ["they live in the south of France"]),
        ("I'm from New York.", ["they are from New York"]),
        ("I work as a nurse at the city hospital.", ["they work as a nurse"]),
        ("I work for the Bank of England.", ["they work for the Bank of England"]),
        ("I'm 34 years old.", ["they are 34 years old"]),
        ("I am thirty four years old", ["they are 34 years old"]),
        ("My favourite colour is blue and my favorite food is pizza.", ["their favourite colour is blue", "their favorite food is pizza"]),
        ("my name is priya and I live in lyon now", ["their name is Priya", "they live in lyon"]),
    ],
)
def test_what_the_user_says_about_themselves_is_taken(said: str, facts: list[str]) -> None:
    assert phrases(said) == facts


@pytest.mark.parametrize(
    "said",
    [
        "What is my name?",
        "Is my name Priya?",
        "Do you know that my name is Bob?",
        "My name is not important.",
        "My name is a secret.",
        "I'm tired.",
        "Hi, I'm tired.",
        "I'm Priya.",  # "I'm X" alone is as often a state as a name
        "You can call me later.",
        "Don't call me Bob.",
        "My son's name is Leo.",
        "My son is 5 years old.",
        "Where do I live?",
        "I used to live in Paris.",
        "I don't live in Paris.",
        "My favourite colour is not red.",
        "What is my favourite colour?",
        "Tell me about the weather in Lyon.",
    ],
)
def test_what_is_not_a_fact_about_the_user_is_left(said: str) -> None:
    assert phrases(said) == []


def test_a_later_fact_of_a_kind_replaces_the_earlier_in_its_place() -> None:
    facts = known_facts(["My name is Priya.", "I live in Lyon.", "What's the time?", "Actually, call me Pri."])
    assert describe(facts) == "What the user has told you about themselves: their name is Pri; they live in Lyon."
    assert describe([]) == ""
