"""Talking over the assistant through the real sound server, with its echo in the microphone.

The rig of ``test_live_echo``: the virtual speaker's monitor looped into the virtual microphone
(60 ms late, -6 dB), as laptop speakers next to the microphone. A spoken request for a long
story; while the story plays, a question played into the microphone over its echo. The story
must stop and be logged as interrupted with only what was played of it, and the question
must be heard and answered. How fast it stops is measured on the simulated clock by
``scripts/barge_in_bench.py``; here the devices' own latency comes on top, and what is checked
is the behaviour.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pulse_rig
import pytest
import soundfile as sf
from pulse_rig import DATA, STOP_WITHIN_S, TURN_TIMEOUT_S, Chat, PulseServer

STORY = "Tell me a long story about a brave little dragon who wanted to fly over the mountains."
INTERRUPTION = DATA / "what_time_is_it.wav"
"""Answered by a command: quick, and its answer shares no word with the story."""
INTERRUPT_AFTER_S = 2.0
"""From the reply starting to play to the interrupting question (its recording opens on
0.5 s of room): past the first reply's settling (AEC3 and the double-talk detector learn the
echo over its first second)."""
ECHO_LATENCY_MS = 60
ECHO_GAIN_DB = -6.0

launch = pulse_rig.launch
pulse = pulse_rig.pulse


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The request for a story, spoken by the bundled Piper voice."""
    from voxloop.models.piper_tts import PiperTTS
    from voxloop.models.registry import resolve_voice

    tts = PiperTTS(resolve_voice(None))
    path = tmp_path_factory.mktemp("story") / "story.wav"
    sf.write(path, np.concatenate(list(tts.synthesize(STORY))), tts.sample_rate, subtype="PCM_16")
    return path


@pytest.fixture
def late_question(tmp_path: Path) -> Path:
    """The interrupting question after ``INTERRUPT_AFTER_S`` of silence: played as soon as the
    reply starts, it falls inside it."""
    audio, rate = sf.read(INTERRUPTION, dtype="int16")
    path = tmp_path / "late_question.wav"
    sf.write(path, np.concatenate([np.zeros(int(INTERRUPT_AFTER_S * rate), dtype=np.int16), audio]), rate, subtype="PCM_16")
    return path


def test_a_question_over_the_reply_stops_it_and_is_answered(
    pulse: PulseServer, launch: Callable[..., Chat], story: Path, late_question: Path, record_property: pytest.RecordProperty
) -> None:
    with pulse.speaker_heard_by_mic(ECHO_LATENCY_MS, ECHO_GAIN_DB):
        chat = launch("--input-device", "pulse", "--output-device", "pulse")
        chat.wait_ready()
        pulse.play(story)
        chat.wait_for(r" speaking$", TURN_TIMEOUT_S)
        pulse.play(late_question)
        chat.wait_for(r" turn \d+ vox .*\[interrupted\]", 60)  # (ids count the noises it let pass too)
        chat.wait_for(r" turn \d+ vox \(\d+ ms\)", TURN_TIMEOUT_S)
        code, took = chat.stop(signal.SIGINT)
    assert code == 0 and took <= STOP_WITHIN_S, f"exit code {code} after {took:.2f} s\n{chat.stderr()[-4000:]}"

    turns = [json.loads(line) for line in chat.transcript.read_text().splitlines()]
    record_property("turns", [(t["user_text"], t["interrupted"], t["pauses"]) for t in turns])
    got = [(t["user_text"], t["assistant_text"], t["interrupted"]) for t in turns]
    first = turns[0]
    assert "dragon" in first["user_text"].lower() and first["interrupted"], got
    # The history keeps what was played of the story: words, cut short of a whole story.
    played = re.findall(r"[a-z']+", first["assistant_text"].lower())
    assert 0 < len(played) < 60, got
    # The question is the next turn, and answered. (What the answer's own echo sets off after
    # it is test_live_echo's business: it is a known fault of reply starts.)
    second = turns[1] if len(turns) > 1 else {}
    assert "time" in second.get("user_text", "").lower() and second.get("assistant_text"), got
