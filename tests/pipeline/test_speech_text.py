"""clean_for_speech: what the voice would say for a given piece of model output."""

from __future__ import annotations

import pytest
from voxloop.pipeline.speech_text import (
    CODE_BLOCK_PHRASE,
    clean_for_speech,
    is_speakable,
)


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        # plain text and the punctuation the phonemizer needs stay; numbers are read as words
        ("Hello there.", "Hello there."),
        (
            'It\'s 3.14, 1,000 or 10:30 - fine; "sure": ok?',
            'It\'s three point one four, one thousand or ten thirty - fine; "sure": ok?',
        ),
        ("Wait — really… yes!", "Wait — really… yes!"),
        # headers, emphasis, inline code
        ("# Overview\nThe tower is tall.", "Overview. The tower is tall."),
        ("## Steps to take ##", "Steps to take."),
        ("The **Eiffel Tower** is *very* __tall__ and _old_.", "The Eiffel Tower is very tall and old."),
        ("***Really*** ~~not~~ sure.", "Really not sure."),
        ("Run `pip install voxloop` first.", "Run pip install voxloop first."),
        # fenced code is replaced by a short spoken note
        ("Try this:\n```python\nprint('hi')\n```\nThen run it.", f"Try this: {CODE_BLOCK_PHRASE} Then run it."),
        ("Inline ```x = 1``` code", f"Inline. {CODE_BLOCK_PHRASE} code"),
        ("Unfinished:\n```bash\nrm -rf build", f"Unfinished: {CODE_BLOCK_PHRASE}"),
        # lists
        ("- eggs\n- milk\n* bread\n+ jam", "eggs. milk. bread. jam."),
        ("1. Preheat the oven\n2) Bake for 30 minutes.", "Preheat the oven. Bake for thirty minutes."),
        ("You need:\n• flour\n• sugar", "You need: flour. sugar."),
        ("- [x] done\n- [ ] to do", "done. to do."),
        # links, URLs, e-mail addresses
        ("See [the docs](https://docs.python.org/3/) now.", "See the docs now."),
        ("![a cat](cat.png) sleeps.", "a cat sleeps."),
        ("Visit https://www.example.com/path/a.b?x=1. Thanks!", "Visit example dot com. Thanks!"),
        ("Go to <https://example.org/x>.", "Go to example dot org."),
        ("see example.com/a.b for more", "see example dot com for more"),
        ("Try www.python.org, it helps.", "Try python dot org, it helps."),
        ("Mail john.doe@example.co.uk, please.", "Mail john dot doe at example dot co dot uk, please."),
        ("Write to mailto:help@example.com today.", "Write to help at example dot com today."),
        ("Open file.py and README.md.", "Open file.py and README.md."),
        # emoji and pictographs
        ("Great job! 🎉🚀 👍🏽 Done ✅.", "Great job! Done."),
        ("I ❤️ Paris 🇫🇷", "I Paris"),
        # HTML
        ("<b>Bold</b> text<br>and &amp; more", "Bold text and and more"),
        ("<p>One</p><p>Two</p>", "One. Two"),
        ("Keep a <!-- hidden --> secret", "Keep a secret"),
        # tables, blockquotes, rules, stray symbols
        ("| Name | Age |\n|---|---|\n| Bob | 42 |", "Name, Age. Bob, forty-two."),
        ("> To be or not to be.", "To be or not to be."),
        ("Above\n\n---\n\nBelow", "Above. Below"),
        ("C# and *stray* * ~ ^ \\ {symbols}", "C and stray symbols"),
        ("Our #1 pick takes ~5 minutes.", "Our number one pick takes about five minutes."),
        ("3 * 4 is 12 and x > 5", "three times four is twelve and x greater than five"),
        ("Settings → Privacy", "Settings, Privacy"),
        ("snake_case names", "snake case names"),
        # whitespace and paragraph breaks
        ("  lots   of\tspace \n here ", "lots of space here"),
        ("First paragraph\n\nSecond paragraph", "First paragraph. Second paragraph"),
        ("Done. \n\n- next 🎉 \n", "Done. next."),
        # nothing speakable left
        ("", ""),
        ("   \n\t", ""),
        ("...", ""),
        ("***", ""),
        ("🎉🎉", ""),
        ("---\n| |", ""),
    ],
)
def test_clean_for_speech(markdown: str, spoken: str) -> None:
    assert clean_for_speech(markdown) == spoken


def test_a_whole_markdown_reply_reads_as_plain_sentences() -> None:
    reply = (
        "## Quick answer 🚀\n\n"
        "**Yes!** You can do it in Python:\n\n"
        "```python\nimport os\nprint(os.getcwd())\n```\n\n"
        "1. Open a terminal.\n"
        "2. Run `python main.py`.\n\n"
        "More at [the guide](https://docs.python.org/3/tutorial/) or https://realpython.com/x."
    )
    spoken = clean_for_speech(reply)
    assert spoken == (
        f"Quick answer. Yes! You can do it in Python: {CODE_BLOCK_PHRASE} Open a terminal. "
        "Run python main.py. More at the guide or realpython dot com."
    )
    for symbol in "*#`[]()|>~_":
        assert symbol not in spoken
    assert "import" not in spoken and "http" not in spoken


@pytest.mark.parametrize(
    ("text", "speakable"),
    [("a", True), ("42", True), ("Hé!", True), ("", False), ("  ", False), ("?!...", False), ("🎉 — *", False)],
)
def test_is_speakable(text: str, speakable: bool) -> None:
    assert is_speakable(text) is speakable
