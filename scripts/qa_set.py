"""The spoken QA set of ``scripts/bench.py --qa``: general-knowledge questions a person might
ask a voice assistant, each with the answers accepted for it, and multi-turn memory checks.

Data, as Python rather than a TSV: answers are lists (some of them patterns) and a memory
check is a little conversation, both of which a TSV would have to encode in strings; here they
are plain literals that the benchmark and its tests import, and that a type checker reads.

Rules for an entry:

- short, as said aloud, with one answer that does not change over time (no "current", no
  "latest", nothing about prices or office holders);
- no accepted answer appears in the question itself (``tests/test_qa_bench.py`` checks), so
  a reply that just repeats the question never counts as right;
- answers are matched as whole words on the normalised reply (lowercase, punctuation gone,
  number words read as digits: "eight" and "8" are the same answer, a trailing plural "s" is
  allowed); an answer written ``re:...`` is a regular expression on the normalised reply.

``voice`` says who speaks the question: ``piper`` (the bundled voice) or ``espeak``
(espeak-ng, another synthesizer: a different accent and timing for the recognizer); half each,
alternating within every topic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QA:
    id: str
    question: str
    answers: tuple[str, ...]
    topic: str
    voice: str
    """piper or espeak."""


@dataclass(frozen=True)
class MemoryCheck:
    id: str
    turns: tuple[str, ...]
    """Said one after another in one conversation; the last asks for what the first told."""
    answers: tuple[str, ...]
    """Accepted in the reply to the last turn."""
    voice: str


def _qa(rows: list[tuple[str, str, tuple[str, ...]]], first_voice: str) -> list[QA]:
    voices = ("piper", "espeak") if first_voice == "piper" else ("espeak", "piper")
    return [QA(f"{topic}-{i + 1:02d}", q, a, topic, voices[i % 2]) for i, (topic, q, a) in enumerate(rows)]


_GEOGRAPHY = [
    ("geography", "What is the largest ocean on Earth?", ("pacific",)),
    ("geography", "What is the capital of Japan?", ("tokyo",)),
    ("geography", "What is the capital of Italy?", ("rome",)),
    ("geography", "In which country is the Eiffel Tower?", ("france", "paris")),
    ("geography", "What is the longest river in Africa?", ("nile",)),
    ("geography", "On which continent is Egypt?", ("africa",)),
    ("geography", "What is the capital of Canada?", ("ottawa",)),
    ("geography", "What is the tallest mountain in the world?", ("everest",)),
    ("geography", "What is the capital of Spain?", ("madrid",)),
]
_SCIENCE = [
    ("science", "Which planet is closest to the sun?", ("mercury",)),
    ("science", "What is the chemical symbol for gold?", ("au", "a u")),
    ("science", "What gas do plants take in from the air?", ("carbon dioxide", "co2", "co 2")),
    ("science", "At what temperature in Celsius does water boil?", ("100",)),
    ("science", "How many planets are in our solar system?", ("8",)),
    ("science", "What is the largest planet in our solar system?", ("jupiter",)),
    ("science", "Which planet is known as the red planet?", ("mars",)),
    ("science", "What force pulls things down to the ground?", ("gravity", "gravitational", "gravitation")),
    ("science", "What is the hardest natural substance?", ("diamond",)),
    ("science", "Which organ pumps blood around the body?", ("heart",)),
    ("science", "How many bones are in the adult human body?", ("206",)),
]
_HISTORY = [
    ("history", "Who was the first president of the United States?", ("washington",)),
    ("history", "In which year did the Second World War end?", ("1945", "19 45")),
    ("history", "Who was the first person to walk on the moon?", ("armstrong",)),
    ("history", "Who painted the Mona Lisa?", ("leonardo", "da vinci")),
    ("history", "Who discovered penicillin?", ("fleming",)),
    ("history", "Who developed the theory of relativity?", ("einstein",)),
    ("history", "Which ship sank in 1912 after hitting an iceberg?", ("titanic",)),
]
_LITERATURE = [
    ("literature", "Who wrote Romeo and Juliet?", ("shakespeare",)),
    ("literature", "Who wrote Pride and Prejudice?", ("austen",)),
    ("literature", "Who wrote the Harry Potter books?", ("rowling",)),
    ("literature", "Who wrote the novel Nineteen Eighty-Four?", ("orwell",)),
    ("literature", "Who wrote The Adventures of Tom Sawyer?", ("twain", "clemens")),
]
_ANIMALS = [
    ("animals", "How many legs does a spider have?", ("8",)),
    ("animals", "What is the largest mammal?", ("whale",)),
    ("animals", "What is the fastest land animal?", ("cheetah",)),
    ("animals", "What do you call a baby cat?", ("kitten", "kitty")),
    ("animals", "How many legs does an insect have?", ("6",)),
    ("animals", "Which animal is called the king of the jungle?", ("lion",)),
    ("animals", "What do pandas mostly eat?", ("bamboo",)),
    ("animals", "What is a baby dog called?", ("puppy", "puppies", "pup")),
]
_UNITS = [
    ("units", "How many centimeters are in a meter?", ("100",)),
    ("units", "How many minutes are in an hour?", ("60",)),
    ("units", "How many days are in a leap year?", ("366",)),
    ("units", "How many grams are in a kilogram?", ("1000",)),
    ("units", "How many sides does a hexagon have?", ("6",)),
    ("units", "How many hours are in a day?", ("24",)),
]
_EVERYDAY = [
    ("everyday", "What color do you get when you mix blue and yellow?", ("green",)),
    ("everyday", "Which month has the fewest days?", ("february",)),
    ("everyday", "What is the opposite of hot?", ("cold", "cool")),
    ("everyday", "How many strings does a standard guitar have?", ("6",)),
    ("everyday", "What color is a ripe banana?", ("yellow",)),
    ("everyday", "What is frozen water called?", ("ice",)),
]

QUESTIONS: list[QA] = (
    _qa(_GEOGRAPHY, "piper")
    + _qa(_SCIENCE, "espeak")
    + _qa(_HISTORY, "espeak")
    + _qa(_LITERATURE, "piper")
    + _qa(_ANIMALS, "espeak")
    + _qa(_UNITS, "piper")
    + _qa(_EVERYDAY, "espeak")
)
"""52 questions, 26 spoken by each voice."""

MEMORY_CHECKS: list[MemoryCheck] = [
    MemoryCheck(
        "name",
        (
            "My name is Daniel.",
            "What is the tallest animal in the world?",
            "Why do leaves change color in the fall?",
            "What is my name?",
        ),
        ("daniel", "dan", "danny"),
        "piper",
    ),
    MemoryCheck(
        "city",
        (
            "I live in Lisbon.",
            "How far away is the moon?",
            "What is a good way to fall asleep quickly?",
            "Which city do I live in?",
        ),
        ("lisbon",),
        "espeak",
    ),
    MemoryCheck(
        "dog",
        (
            "My dog is called Biscuit.",
            "Why is the sea salty?",
            "What is the boiling point of water?",
            "What is my dog called?",
        ),
        ("biscuit",),
        # "dog's" in espeak-ng's voice is heard as "dark": the check is of memory, not hearing.
        "espeak",
    ),
    MemoryCheck(
        "fruit",
        (
            "My favorite fruit is mango.",
            "How many continents are there?",
            "What makes a rainbow?",
            "What is my favorite fruit?",
        ),
        ("mango",),
        "piper",
    ),
]

QUICK_QUESTIONS = ["geography-01", "science-01", "animals-01", "units-01"]
"""``--quick``: two questions per voice."""
QUICK_MEMORY = "name"
"""``--quick``: this check, its first filler question left out."""
