"""The sound system misbehaving under a live ``voxloop chat``: the conversation survives.

Two ways a microphone goes away, on a real PulseAudio server:

* the virtual microphone is unloaded and loaded back (a headset unplugged and plugged in).
  PulseAudio 16 does not end the recording stream: it moves it to another source (here the
  speaker's monitor) and back when the microphone returns, with a pause of about 1.5 s on
  the way. voxloop must keep going: same process, same conversation, the next question answered,
  the pauses counted as input gaps, and at most one "device lost" notice for it.
* the sound server itself restarts. Every stream dies: voxloop must say so once, re-initialise
  PortAudio, reopen the devices when the server is back, and answer the next question as the
  next turn of the same conversation.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pulse_rig
import pytest
import soundfile as sf
from pulse_rig import DATA, STOP_WITHIN_S, TURN_TIMEOUT_S, Chat, PulseServer, stats_from

launch = pulse_rig.launch
pulse = pulse_rig.pulse  # the fixtures, shared with the other live test modules


@pytest.fixture(scope="module")
def questions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two questions, each after 2 s of silence: a stream that has just been moved or reopened
    may miss its first second or so, and the silence is what it misses."""
    out = tmp_path_factory.mktemp("questions")
    made = []
    for name in ("what_time_is_it.wav", "whats_the_date_today.wav"):
        audio, rate = sf.read(DATA / name, dtype="float32")
        path = out / name
        sf.write(path, np.concatenate([np.zeros(2 * rate, dtype=np.float32), audio]), rate, subtype="PCM_16")
        made.append(path)
    return made[0], made[1]


def ask(chat: Chat, pulse: PulseServer, question: Path) -> str:
    """Play ``question``; the line with the answer, once it has been played out. (Turn ids are
    not consecutive: a head start the user talked through uses one up.)"""
    pulse.play(question)
    said = chat.wait_for(r" turn \d+ vox \(\d+ ms\): ", TURN_TIMEOUT_S)
    chat.wait_for(r" listening$", 30)
    return said


def finish(chat: Chat) -> dict[str, int]:
    code, took = chat.stop(signal.SIGINT)
    assert code == 0, chat.stderr()
    assert took <= STOP_WITHIN_S, f"took {took:.2f} s to stop"
    return stats_from(chat.lines)


def test_unplugging_and_replugging_the_microphone_keeps_the_conversation(
    pulse: PulseServer, launch: Callable[..., Chat], questions: tuple[Path, Path], tmp_path: Path
) -> None:
    chat = launch()
    chat.wait_ready()
    ask(chat, pulse, questions[0])
    pid = chat.proc.pid

    pulse.unplug_mic()
    pulse.plug_mic()
    said = ask(chat, pulse, questions[1])

    assert chat.proc.pid == pid and chat.proc.poll() is None
    stats = finish(chat)
    lost = [line for line in chat.lines if " device lost: " in line]
    back = [line for line in chat.lines if " device back: " in line]
    assert len(lost) <= 1, "\n".join(lost)
    assert len(back) == len(lost)
    # PulseAudio through ALSA raises no overflow flag; the pause is found by the clock.
    assert stats["input_by_clock"] >= 1, stats
    assert said.split("): ", 1)[1], said
    turns = [json.loads(line) for line in chat.transcript.read_text().splitlines()]
    assert len(turns) == 2 and turns[0]["turn"] < turns[1]["turn"]


def test_a_sound_server_restart_is_noticed_once_and_the_devices_reopen(
    pulse: PulseServer, launch: Callable[..., Chat], questions: tuple[Path, Path], tmp_path: Path
) -> None:
    chat = launch()
    chat.wait_ready()
    ask(chat, pulse, questions[0])

    pulse.restart()
    chat.wait_for(r" device lost: ", 15)
    chat.wait_for(r" device back: ", 30)
    ask(chat, pulse, questions[1])

    stats = finish(chat)
    assert sum(" device lost: " in line for line in chat.lines) == 1, "\n".join(chat.lines)
    assert stats["reopens"] >= 1 and stats["device_stalls"] == 1, stats
    assert chat.stderr().count("stopped delivering audio") == 1
    turns = [json.loads(line) for line in chat.transcript.read_text().splitlines()]
    assert len(turns) == 2 and turns[0]["turn"] < turns[1]["turn"] and all(t["assistant_text"] for t in turns)
