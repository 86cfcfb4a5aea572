"""Ctrl-C or SIGTERM in every state of a live chat: exit code 0 within 2 s, transcript whole."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pulse_rig
import pytest
from pulse_rig import DATA, STOP_WITHIN_S, TURN_TIMEOUT_S, Chat, PulseServer

QUESTION = DATA / "turn_on_the_lamp.wav"  # not an instant command: the model is asked

launch = pulse_rig.launch
pulse = pulse_rig.pulse  # the fixtures, shared with the other live test modules

STATES = {
    "listening": None,
    "hearing you": r" hearing you$",
    "thinking": r" thinking$",
    "speaking": r" speaking$",
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("state", list(STATES))
def test_a_signal_in_any_state_stops_cleanly_in_time(
    pulse: PulseServer, launch: Callable[..., Chat], state: str, signum: int
) -> None:
    # "thinking" is the wait between the end of the turn and the first audio: with the head
    # start a quick reply is often ready before the usual hangover ends, and then there is none.
    # The shortest hangover ends the turn before any reply can be, so the state is always seen.
    chat = launch(*(["--hangover-ms", "100"] if state == "thinking" else []))
    chat.wait_ready()
    player = None
    try:
        if STATES[state] is not None:
            player = subprocess.Popen(["paplay", "--device=vmic", str(QUESTION)], env=pulse.env())
            chat.wait_for(STATES[state], TURN_TIMEOUT_S)
        code, took = chat.stop(signum)
    finally:
        if player is not None:
            player.wait(timeout=30)

    assert code == 0, chat.stderr()
    assert took <= STOP_WITHIN_S, f"took {took:.2f} s to stop while {state}"
    assert any(" stopped: " in line for line in chat.lines), chat.lines
    turns = [json.loads(line) for line in _lines(chat.transcript)]
    if state == "speaking":
        [turn] = turns
        assert turn["interrupted"] and turn["user_text"]
    if state == "listening":
        assert turns == []


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_ctrl_c_while_the_models_load_exits_at_once(pulse: PulseServer, launch: Callable[..., Chat]) -> None:
    chat = launch()
    chat.wait_for_stderr("loading the models", 60)
    code, took = chat.stop(signal.SIGINT)
    assert code == 0, chat.stderr()
    assert took <= STOP_WITHIN_S
    assert not any(" ready: " in line for line in chat.lines)
