"""The command stage with fakes: commands become spoken replies for the same turn, effects wait
for the turn to stand, and timers speak up on the session's timeline."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from test_session import make_input, run_session

from voxloop.models.fakes import FakeASR, FakeLLM, FakeTTS
from voxloop.pipeline.assistant.commands import CommandContext, Commands
from voxloop.pipeline.assistant.notes import NotesStore
from voxloop.pipeline.assistant.timers import Timers
from voxloop.pipeline.command_stage import CommandStage
from voxloop.pipeline.dialog import Dialog
from voxloop.pipeline.frames import SentenceFrame, SpeakFrame, TranscriptFrame
from voxloop.pipeline.stage import run_stage
from voxloop.pipeline.tts_stage import TTSStage, scale

NOW = dt.datetime(2024, 3, 1, 15, 5, tzinfo=ZoneInfo("UTC"))


def make_commands(tmp_path: Path) -> Commands:
    return Commands(CommandContext(NotesStore(tmp_path / "notes.db"), Timers(lambda: 0.0, lambda: NOW)))


def test_a_command_is_spoken_for_its_turn_and_a_question_passes_on(tmp_path: Path) -> None:
    dialog = Dialog()
    stage = CommandStage(make_commands(tmp_path), dialog)
    question = TranscriptFrame(2, "What is the capital of France?", 3.0, 50.0)
    out = asyncio.run(run_stage(stage, [TranscriptFrame(1, "What time is it?", 1.0, 50.0), question]))
    assert out == [SpeakFrame(1, "It's 3:05 PM."), question]
    assert [(e.turn_id, e.user, e.reply) for e in dialog.exchanges] == [(1, "What time is it?", "It's 3:05 PM.")]


def test_a_provisional_commands_effect_waits_for_the_turn_and_is_dropped_if_taken_back(tmp_path: Path) -> None:
    commands = make_commands(tmp_path)
    stage = CommandStage(commands, Dialog())
    notes = commands.context.notes
    asyncio.run(run_stage(stage, [TranscriptFrame(1, "take a note buy milk", 1.0, 50.0, provisional=True)]))
    assert notes.list() == []
    stage.retract(1)  # the user went on: "take a note buy milk and eggs"
    stage.confirm(1)
    assert notes.list() == []

    asyncio.run(run_stage(stage, [TranscriptFrame(2, "take a note buy milk and eggs", 2.0, 50.0, provisional=True)]))
    stage.confirm(2)
    assert [n.text for n in notes.list()] == ["buy milk and eggs"]

    stage.confirm(3)  # confirmed before its transcript arrives: runs as it arrives
    asyncio.run(run_stage(stage, [TranscriptFrame(3, "take a note call mum", 3.0, 50.0, provisional=True)]))
    assert [n.text for n in notes.list()] == ["buy milk and eggs", "call mum"]


def test_speak_slower_is_said_slower_and_louder_is_louder(tmp_path: Path) -> None:
    commands = make_commands(tmp_path)
    stage = CommandStage(commands, Dialog())
    asyncio.run(run_stage(stage, [TranscriptFrame(1, "speak slower", 1.0, 50.0, provisional=True)]))
    tts = FakeTTS()
    tts_stage = TTSStage(tts, stage.voice_for)
    asyncio.run(run_stage(tts_stage, [SentenceFrame(1, "Okay, I'll speak slower.", 0)]))
    assert tts.rates[-1] < 1.0  # the reply itself, before the turn is even confirmed
    assert commands.context.voice.rate == 1.0
    stage.confirm(1)
    assert commands.context.voice.rate < 1.0
    tts_stage.close()

    loud = scale(np.array([20000, -20000, 100], dtype=np.int16), 2.0)
    assert loud.tolist() == [32767, -32768, 200]  # clipped, not wrapped around


def test_a_timer_goes_off_mid_conversation_on_the_simulated_clock(tmp_path: Path) -> None:
    # Turn 1 (0.5-3.4 s) sets a 5 s timer; the timer speaks at ~9 s, between two questions.
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (12.0, "spk2_snt1.wav")], 22.0)
    commands = make_commands(tmp_path)
    llm = FakeLLM(["Paris."])
    run = run_session(
        tmp_path, path, FakeASR(["Set a timer for five seconds.", "What is the capital of France?"]), llm, FakeTTS(),
        commands=commands,
    )  # fmt: skip
    by_kind = {t.command or "llm": t for t in run.turns}
    assert set(by_kind) == {"timer_set", "announcement", "llm"}
    timer_turn, announcement = by_kind["timer_set"], by_kind["announcement"]
    assert timer_turn.assistant_text == "Okay, timer for 5 seconds, starting now."
    assert announcement.assistant_text in {"The 5 second timer is done.", "The five second timer is done."}
    assert timer_turn.user_end_s is not None and announcement.reply_start_s is not None
    # Set when the turn stood (its endpoint), then 5 s on the timeline.
    assert 5.0 <= announcement.reply_start_s - timer_turn.user_end_s <= 6.5
    assert not announcement.interrupted
    assert len(llm.prompts) == 1  # only the open question reached the LLM
    assert [m["content"] for m in llm.prompts[0][1:3]] == ["Set a timer for five seconds.", "Okay, timer for 5 seconds, starting now."]


@pytest.mark.parametrize("timezone", ["Mars/Olympus"])
def test_a_bad_time_zone_is_one_clear_line(timezone: str) -> None:
    from voxloop.pipeline.command_stage import commands_from_config
    from voxloop.pipeline.config import AssistantConfig, ConfigError

    with pytest.raises(ConfigError, match="timezone: unknown time zone 'Mars/Olympus'"):
        commands_from_config(AssistantConfig(timezone=timezone))


def test_words_said_over_the_question_never_confirm_it(tmp_path: Path) -> None:
    # "Delete note 1" (0.5 s) makes the assistant ask (a ~2.5 s question with FakeTTS); "yes,
    # delete it" comes over the question (so it may be the assistant's own echo): it cuts the
    # question but confirms nothing. Only the plain "yes" said after that does.
    commands = make_commands(tmp_path)
    commands.context.notes.add("the meeting is at three")
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (6.0, "spk2_snt2.wav"), (11.0, "spk2_snt1.wav")], 17.0)
    asr = FakeASR(["Delete note 1.", "Yes, delete it now.", "Yes."])
    run = run_session(tmp_path, path, asr, FakeLLM(["Hm."]), FakeTTS(), commands=commands)

    asked, over, answered = run.turns
    assert asked.command == "note_delete" and asked.interrupted
    assert over.user_text == "Yes, delete it now." and over.command != "confirm"
    # Still pending after it: the user's own "yes", said after the question, settles it.
    assert answered.command == "confirm" and commands.context.notes.list() == []
