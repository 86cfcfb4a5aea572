"""ClauseChunker: a streamed reply comes out as early, whole, speakable chunks."""

from __future__ import annotations

import random

import pytest
from voxloop.pipeline.chunker import PHRASE_STARTS, ChunkerConfig, ClauseChunker
from voxloop.pipeline.speech_text import CODE_BLOCK_PHRASE, clean_for_speech

REPLY = (
    "Well, the Eiffel Tower, in Paris, is about 330 metres tall. "
    "It was finished in 1889 for the World's Fair. "
    "Dr. Smith says that roughly 6.9 million people visit each year, e.g. tourists and locals. "
    "It opens at 9:30 and closes at 23:45. "
    "See example.com/a.b for more!"
)
REPLY_CHUNKS = [
    "Well, the Eiffel Tower,",
    "in Paris, is about 330 metres tall.",
    "It was finished in 1889 for the World's Fair.",
    "Dr. Smith says that roughly 6.9 million people visit each year,",
    "e.g. tourists and locals.",
    "It opens at 9:30 and closes at 23:45.",
    "See example.com/a.b for more!",
]


def stream(text: str, seed: int = 0, chunker: ClauseChunker | None = None) -> list[str]:
    """Feed ``text`` the way an LLM would, in 1 to 3 character deltas, then flush."""
    chunker = chunker or ClauseChunker()
    rng = random.Random(seed)
    chunks: list[str] = []
    i = 0
    while i < len(text):
        n = rng.randint(1, 3)
        chunks += chunker.push(text[i : i + n])
        i += n
    return chunks + chunker.flush()


def squeeze(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("seed", range(5))
def test_a_streamed_reply_is_cut_into_clauses_and_sentences(seed: int) -> None:
    chunks = stream(REPLY, seed)
    assert chunks == REPLY_CHUNKS
    assert squeeze("".join(chunks)) == squeeze(REPLY)


def test_the_first_chunk_comes_out_as_soon_as_its_clause_is_confirmed() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Well, the") == []  # "Well," alone is too short to send
    assert chunker.push(" Eiffel Tower,") == []  # the comma may yet be part of "1,000"
    assert chunker.push(" in") == ["Well, the Eiffel Tower,"]


def test_a_short_first_sentence_is_sent_at_once() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Sure!") == []
    assert chunker.push(" Here") == ["Sure!"]
    assert chunker.flush() == ["Here"]


def test_later_clauses_wait_for_more_words() -> None:
    text = "Yes, it is. Then, later, we went out to eat dinner, and it was lovely."
    assert stream(text) == [
        "Yes, it is.",
        "Then, later, we went out to eat dinner,",
        "and it was lovely.",
    ]


def test_cuts_do_not_depend_on_how_the_text_was_split() -> None:
    whole = ClauseChunker()
    at_once = whole.push(REPLY) + whole.flush()
    by_char = ClauseChunker()
    one_by_one = [chunk for ch in REPLY for chunk in by_char.push(ch)] + by_char.flush()
    assert at_once == one_by_one == REPLY_CHUNKS


@pytest.mark.parametrize(
    ("text", "chunks"),
    [
        ("Pi is about 3.14 and e is 2.72 today.", ["Pi is about 3.14 and e is 2.72 today."]),
        ("We met at 10:30 near 1,000 trees.", ["We met at 10:30 near 1,000 trees."]),
        ("I asked Dr. Jones and Mrs. Smith about it.", ["I asked Dr. Jones and Mrs. Smith about it."]),
        ("Mr. Brown and Ms. Green, i.e. both.", ["Mr. Brown and Ms. Green, i.e. both."]),
        ("It was Red vs. Blue in the final.", ["It was Red vs. Blue in the final."]),
        ("J. R. R. Tolkien wrote it.", ["J. R. R. Tolkien wrote it."]),
        ("We bought apples, pears, etc. and more.", ["We bought apples, pears, etc. and more."]),
        ("We bought apples, etc. Then we left.", ["We bought apples, etc.", "Then we left."]),
        ("I live in the U.S. It is big.", ["I live in the U.S.", "It is big."]),
        ("Wait... maybe not today.", ["Wait... maybe not today."]),
        ("Hmm… I see. Fine.", ["Hmm…", "I see.", "Fine."]),
        ("See example.com/a.b for more.", ["See example.com/a.b for more."]),
        ("Go to https://docs.python.org/3.12/x.html?a=1. Then", ["Go to https://docs.python.org/3.12/x.html?a=1.", "Then"]),
        ("Mail me at jo.doe@mail.example.com today.", ["Mail me at jo.doe@mail.example.com today."]),
        (
            "Read [Dr. Who, the show. Really](https://a.b/c.d) now.",
            ["Read [Dr. Who, the show. Really](https://a.b/c.d) now."],
        ),
        ("Call `obj.run(a, b). then` now.", ["Call `obj.run(a, b). then` now."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("This is **very important.** Next one.", ["This is **very important.**", "Next one."]),
        ("Really?! Yes.", ["Really?!", "Yes."]),
    ],
)
def test_constructs_are_never_cut_inside(text: str, chunks: list[str]) -> None:
    # After a first sentence, so that the short first-chunk rule does not cut at commas.
    assert stream(f"Right. {text}") == ["Right.", *chunks]
    assert stream(f"Right. {text}", seed=7) == ["Right.", *chunks]


def test_newlines_end_paragraphs_and_list_items() -> None:
    text = "Here are the steps:\n1. Preheat the oven.\n2. Mix the flour\n\n- eggs\n- milk\n\nEnjoy"
    assert stream(text) == [
        "Here are the steps:",
        "1. Preheat the oven.",
        "2. Mix the flour",
        "- eggs",
        "- milk",
        "Enjoy",
    ]


def test_markup_alone_on_a_line_joins_the_next_chunk() -> None:
    assert stream("First part.\n\n---\n\nSecond part.") == ["First part.", "---\n\nSecond part."]
    assert stream("***") == ["***"]


def test_a_code_block_is_one_chunk_and_is_not_read() -> None:
    code = "\n".join(f"value_{i} = compute({i}, 3.14)  # step {i}. Then more." for i in range(20))
    text = f"Try this:\n```python\n{code}\n```\nThat is all, have fun."
    chunks = stream(text, max(1, len(text) % 7))
    assert chunks == ["Try this:", f"```python\n{code}\n```", "That is all, have fun."]
    assert len(chunks[1]) > ChunkerConfig().max_chars
    spoken = [clean_for_speech(chunk) for chunk in chunks]
    assert spoken == ["Try this:", CODE_BLOCK_PHRASE, "That is all, have fun."]


def test_the_words_before_a_fence_are_sent_before_the_code_arrives() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Run it ``") == []
    assert chunker.push("`py\nx = 1") == ["Run it"]
    assert chunker.push("\n") == []
    assert chunker.push("``") == []
    assert chunker.push("`\nOk.") == ["```py\nx = 1\n```"]
    assert chunker.flush() == ["Ok."]


def test_an_unclosed_code_block_comes_out_whole_at_the_end() -> None:
    chunks = stream("Here:\n```bash\nmake all. Then run.\n")
    assert chunks == ["Here:", "```bash\nmake all. Then run."]
    assert clean_for_speech(chunks[1]) == CODE_BLOCK_PHRASE


def test_a_long_reply_stays_under_the_cap() -> None:
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "delta", "3.14", "e.g.", "Dr.", "example.com/a.b"]
    pieces: list[str] = []
    while sum(map(len, pieces)) < 10_000:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(3, 90)))
        pieces.append(sentence + rng.choice([".", ",", "!", "", ";"]) + rng.choice([" ", " ", "\n"]))
    text = "".join(pieces)
    assert len(text) >= 10_000
    chunks = stream(text, seed=1)
    cap = ChunkerConfig().max_chars
    assert all(0 < len(chunk) <= cap for chunk in chunks)
    assert all(chunk == chunk.strip() for chunk in chunks)
    assert squeeze("".join(chunks)) == squeeze(text)
    assert len(chunks) > 10_000 // cap


def test_the_cap_cuts_at_whitespace_and_keeps_a_long_word_whole() -> None:
    chunker = ClauseChunker(ChunkerConfig(max_chars=20))
    url = "https://example.com/" + "x" * 40
    chunks = chunker.push(f"one two three four five six {url} seven") + chunker.flush()
    assert chunks == ["one two three four", "five six", url, "seven"]


def test_a_config_can_make_the_first_chunk_shorter() -> None:
    chunks = stream("Yes, that works, as far as I know.", chunker=ClauseChunker(ChunkerConfig(first_min_words=1)))
    assert chunks == ["Yes,", "that works, as far as I know."]


def test_flush_ends_the_reply_and_the_next_one_starts_fresh() -> None:
    chunker = ClauseChunker()
    assert chunker.flush() == []
    assert chunker.push("   \n ") == []
    assert chunker.push("It is 3.") == []
    assert chunker.flush() == ["It is 3."]
    # The next reply's first chunk again gets the short first-chunk rule.
    assert stream("Well, the next one, then, is here.", chunker=chunker) == ["Well, the next one,", "then, is here."]


def test_cleaned_chunks_of_a_markdown_reply_read_naturally() -> None:
    reply = (
        "## Quick answer 🚀\n\n"
        "**Yes!** You can, and it's easy. Read [the guide](https://docs.python.org/3/tutorial/index.html) "
        "or mail help@python.org.\n\n"
        "```python\nimport os\nprint(os.getcwd())\n```\n\n"
        "1. Open a terminal.\n2. Run `python main.py`."
    )
    spoken = [clean_for_speech(chunk) for chunk in stream(reply, seed=2)]
    assert spoken == [
        "Quick answer.",
        "Yes!",
        "You can, and it's easy.",
        "Read the guide or mail help at python dot org.",
        CODE_BLOCK_PHRASE,
        "Open a terminal.",
        "Run python main.py.",
    ]


REPLIES = ChunkerConfig(first_cut_before=PHRASE_STARTS)


@pytest.mark.parametrize(
    "text, first",
    [
        ("The sky is blue because of the way light scatters.", "The sky is blue"),
        ("It is small but it is very strong.", "It is small"),
        ("You could ask the man who sold it to you.", "You could ask the man who sold it to you."),  # not "who"
        ("The capital of France is Paris.", "The capital of France is Paris."),  # a verb: no cut
        ("William Shakespeare wrote Romeo and Juliet.", "William Shakespeare wrote Romeo and Juliet."),
        ("Because it rains, we stay.", "Because it rains,"),
        ("Please stay in until the butler comes.", "Please stay in"),
        ("Try the butterscotch until noon.", "Try the butterscotch"),  # "butter..." is not "but"
    ],
)
def test_a_replys_first_chunk_may_end_before_a_conjunction(text: str, first: str) -> None:
    for seed in range(3):
        chunks = stream(text, seed, ClauseChunker(REPLIES))
        assert squeeze("".join(chunks)) == squeeze(text)
        assert chunks[0] == first, chunks


def test_it_waits_for_the_next_word_to_be_whole_and_later_chunks_keep_the_usual_rules() -> None:
    chunker = ClauseChunker(REPLIES)
    assert chunker.push("The sky is blue b") == []
    assert chunker.push("ecause") == []  # "because", or "becausеway"?
    assert chunker.push(" of") == ["The sky is blue"]
    assert chunker.push(" light and air, and it is lovely. Then") == ["because of light and air, and it is lovely."]


def test_by_default_only_punctuation_ends_the_first_chunk() -> None:
    assert stream("The sky is blue because of the way light scatters.") == ["The sky is blue because of the way light scatters."]
