"""normalize_for_speech: numbers, symbols and abbreviations as the voice should say them."""

from __future__ import annotations

import random
import re
import time

import numpy as np
import pytest
from voxloop.pipeline.speech_text import clean_for_speech
from voxloop.pipeline.spoken_numbers import normalize_for_speech


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        # integers, decimals, signs
        ("1,234", "one thousand two hundred thirty-four"),
        ("42 apples", "forty-two apples"),
        ("0 errors", "zero errors"),
        ("1,000,000", "one million"),
        ("3.14", "three point one four"),
        ("0.5 and .5", "zero point five and point five"),
        ("-5", "minus five"),
        ("It was -3.5 today", "It was minus three point five today"),
        ("10 − 3", "ten minus three"),
        # ordinals
        ("1st", "first"),
        ("2nd and 3rd", "second and third"),
        ("the 23rd time", "the twenty-third time"),
        ("21st century", "twenty-first century"),
        # percentages
        ("45%", "forty-five percent"),
        ("3.5% growth", "three point five percent growth"),
        ("5-10%", "five to ten percent"),
        # currencies
        ("$5", "five dollars"),
        ("$5.50", "five dollars and fifty cents"),
        ("$1", "one dollar"),
        ("$0.99", "ninety-nine cents"),
        ("$1,234.05", "one thousand two hundred thirty-four dollars and five cents"),
        ("€20", "twenty euros"),
        ("£3", "three pounds"),
        ("£1.01", "one pound and one penny"),
        ("1,000,000 dollars", "one million dollars"),
        ("$2.5 million", "two point five million dollars"),
        ("$3bn", "three billion dollars"),
        ("$5-10", "five to ten dollars"),
        ("5 EUR", "five euros"),
        ("-$5", "minus five dollars"),
        # clock times
        ("10:30", "ten thirty"),
        ("9:05 am", "nine oh five AM"),
        ("12:00", "twelve o'clock"),
        ("23:48", "twenty-three forty-eight"),
        ("at 7pm", "at seven PM"),
        ("at 9 a.m. Then", "at nine AM. Then"),
        ("at 9 a.m. sharp", "at nine AM sharp"),
        ("1:05:30", "one oh five and thirty seconds"),
        ("25:99", "twenty-five:ninety-nine"),
        # dates
        ("2024-03-15", "March fifteenth, twenty twenty-four"),
        ("3/15/2024", "March fifteenth, twenty twenty-four"),
        ("15/3/2024", "March fifteenth, twenty twenty-four"),
        ("March 15", "March fifteenth"),
        ("Mar. 3rd", "March third"),
        ("March 15, 2024", "March fifteenth, twenty twenty-four"),
        ("July 2024", "July twenty twenty-four"),
        ("5 May 1990", "the fifth of May, nineteen ninety"),
        ("on the 4th of July", "on the fourth of July"),
        # years
        ("in 1999", "in nineteen ninety-nine"),
        ("Since 2010", "Since twenty ten"),
        ("in 2005", "in two thousand five"),
        ("2005", "two thousand five"),
        ("from 1999 to 2005", "from nineteen ninety-nine to two thousand five"),
        ("between 1990 and 2000", "between nineteen ninety and two thousand"),
        ("1939-1945", "nineteen thirty-nine to nineteen forty-five"),
        ("the 2023-24 season", "the twenty twenty-three to twenty-four season"),
        ("the 1990s", "the nineteen nineties"),
        ("the '80s", "the eighties"),
        # ranges
        ("5-10", "five to ten"),
        ("5–10 minutes", "five to ten minutes"),
        ("pages 150-1200", "pages one hundred fifty to one thousand two hundred"),
        ("won 3-2", "won three-two"),
        # phone numbers and long digit strings: digit by digit
        ("555-123-4567", "five five five, one two three, four five six seven"),
        ("(555) 123-4567", "five five five, one two three, four five six seven"),
        ("+1 555 123 4567", "plus one, five five five, one two three, four five six seven"),
        ("555-1234", "five five five, one two three four"),
        ("code 12345678", "code one two three four five six seven eight"),
        ("agent 007", "agent zero zero seven"),
        ("10000000", "ten million"),
        # temperatures and units
        ("20°C", "twenty degrees Celsius"),
        ("-5 °C", "minus five degrees Celsius"),
        ("68°F", "sixty-eight degrees Fahrenheit"),
        ("1°", "one degree"),
        ("20-25°C", "twenty to twenty-five degrees Celsius"),
        ("5 km", "five kilometers"),
        ("1 kg", "one kilogram"),
        ("2.5kg", "two point five kilograms"),
        ("60 mph", "sixty miles per hour"),
        ("100 km/h", "one hundred kilometers per hour"),
        ("16 GB", "sixteen gigabytes"),
        ("5-10 km", "five to ten kilometers"),
        # abbreviations
        ("Dr. Smith", "Doctor Smith"),
        ("Mr. and Mrs. Jones", "Mister and Missus Jones"),
        ("fruit, e.g. apples", "fruit, for example apples"),
        ("E.g. apples", "For example apples"),
        ("one thing, i.e. this", "one thing, that is this"),
        ("apples, pears, etc.", "apples, pears, et cetera."),
        ("apples, etc. and pears", "apples, et cetera and pears"),
        ("cats vs. dogs", "cats versus dogs"),
        ("St. Louis", "St. Louis"),
        ("No. 5 and #1", "number five and number one"),
        # symbols and "x" between numbers
        ("R&D", "R and D"),
        ("salt & pepper", "salt and pepper"),
        ("C++", "C plus plus"),
        ("2+2=4", "two plus two equals four"),
        ("x = 5", "x equals five"),
        ("±2", "plus or minus two"),
        ("a 3x4 grid", "a three by four grid"),
        ("1920×1080", "one thousand nine hundred twenty by one thousand eighty"),
        ("2x faster", "two times faster"),
        # fractions, versions, digits inside words
        ("1/2 cup", "one half cup"),
        ("3/4 full", "three quarters full"),
        ("open 24/7", "open twenty-four seven"),
        ("Python 3.11.7", "Python three dot eleven dot seven"),
        ("MP3 and 4K", "MP three and four K"),
        ("COVID-19", "COVID-nineteen"),
        # huge numbers are read digit by digit
        ("10" + "0" * 40, "one " + "zero " * 40 + "zero"),
        # text without numbers is left alone
        ("Hello there, how are you?", "Hello there, how are you?"),
        ("", ""),
    ],
)
def test_normalize_for_speech(written: str, spoken: str) -> None:
    assert normalize_for_speech(written) == spoken


def test_a_number_heavy_sentence() -> None:
    assert normalize_for_speech(
        "Dr. Lee paid $1,234.56 on 2024-03-15 at 9:05 am, about 45% more than in 1999."
    ) == (
        "Doctor Lee paid one thousand two hundred thirty-four dollars and fifty-six cents on "
        "March fifteenth, twenty twenty-four at nine oh five AM, about forty-five percent more "
        "than in nineteen ninety-nine."
    )


def test_languages() -> None:
    assert normalize_for_speech("5 km", lang="en_US") == "five kilometers"
    assert normalize_for_speech("5 km", lang="en-gb") == "five kilometers"
    assert normalize_for_speech("5 km", lang="xx") == "5 km"  # unsupported: left to the phonemizer


def test_clean_for_speech_normalizes_last() -> None:
    assert clean_for_speech("**Total:** $5.50 (about 10%) 🎉") == "Total: five dollars and fifty cents (about ten percent)"
    assert clean_for_speech("1. Mix 2 cups\n2. Bake at 180°C", lang="en_US") == (
        "Mix two cups. Bake at one hundred eighty degrees Celsius."
    )


def test_a_long_reply_is_fast() -> None:
    sentence = (
        "On 2024-03-15 at 9:05 am, Dr. Smith paid $1,234.56 (about 45%) for 3 items at 20°C, "
        "drove 5-10 km, called 555-123-4567, e.g. in 1999 we came 2nd; 3.14 & 2+2=4. "
    )
    reply = (sentence * (10_000 // len(sentence) + 1))[:10_000]
    normalize_for_speech(reply)  # warm the caches and compiled patterns
    started = time.perf_counter()
    spoken = normalize_for_speech(reply)
    assert time.perf_counter() - started < 0.2
    assert not re.search(r"\d", spoken)


_PIECES = [
    "0", "1", "7", "12", "2024", "1,234", "3.14", "007", "9" * 60, "10" * 30, "-", "−", "$", "€", "£",
    "%", "°", "°C", ":", "/", ".", ",", " ", "x", "st", "th", "am", "p.m.", "March", "May ", "Dr.",
    "e.g.", "etc.", "&", "+", "=", "(", ")", "#", "No. ", "in ", "s", "'", "km", "M", "bn",
    " million", "\n", "a", "Z", "é", "٣", "²", "🎉", "*", "_", "---",
]  # fmt: skip


def test_fuzz_never_raises_and_never_loses_the_words() -> None:
    rng = random.Random(1234)
    for _ in range(3000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 25)))
        spoken = normalize_for_speech(text)
        if any(ch.isalnum() for ch in text):
            assert spoken.strip(), repr(text)
        assert not re.search(r"[0-9]", spoken), (text, spoken)
    for _ in range(300):
        text = "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 40)))
        spoken = normalize_for_speech(text)
        assert isinstance(spoken, str)
        if any(ch.isalnum() for ch in text):
            assert spoken.strip(), repr(text)


@pytest.mark.parametrize(
    "text",
    ["9" * 100_000, "1," + "234," * 10_000, "1." * 20_000, "1-" * 20_000, "$" + "1" * 50_000 + ".5", str(10**40)],
)
def test_pathological_input_stays_linear(text: str) -> None:
    started = time.perf_counter()
    spoken = normalize_for_speech(text)
    assert time.perf_counter() - started < 2.0
    assert spoken and not re.search(r"\d", spoken)


@pytest.mark.models
def test_the_real_voice_speaks_the_normalized_text() -> None:
    from voxloop.models.piper_tts import PiperTTS
    from voxloop.models.registry import resolve_voice

    text = normalize_for_speech("On 3/15/2024 at 9:05 am it cost $1,234.56, 45% more than in 1999, at -5°C.")
    assert not re.search(r"\d", text)
    tts = PiperTTS(resolve_voice(None))
    chunks = list(tts.synthesize(text))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    assert audio.dtype == np.int16
    assert len(audio) > tts.sample_rate  # several seconds of speech, far more than one second
    assert np.abs(audio).max() > 1000
