"""Turn-taking, history, barge-in and recovery: the session's own logic, with fake engines.

The microphone side is real recorded speech placed at known times, so the real VAD and
endpointer decide where turns are; the engines are fakes so each test controls what is said.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA

from voxloop.models.fakes import FakeASR, FakeLLM, FakeTTS
from voxloop.pipeline.assistant.commands import Commands
from voxloop.pipeline.dialog import Dialog
from voxloop.pipeline.reply_stage import APOLOGY
from voxloop.pipeline.session import SessionConfig, VoiceSession
from voxloop.pipeline.turn_log import TurnLog, TurnRecord
from voxloop.voice.playback import OutputBuffer
from voxloop.voice.recording import ConversationRecorder
from voxloop.voice.replay_device import ReplayDevice
from voxloop.voice.vad import EndpointerConfig

RATE = 16000
LONG_REPLY = "This is the first sentence of a long answer. " + "And here is a second sentence that goes on and on for quite a while."


def speech(name: str) -> np.ndarray:
    audio, sr = sf.read(DATA / name, dtype="int16")
    assert sr == RATE
    return audio


def make_input(tmp_path: Path, parts: list[tuple[float, str]], total_s: float) -> Path:
    """Recorded utterances placed at the given start times in silence."""
    audio = np.zeros(int(total_s * RATE), dtype=np.int16)
    for start_s, name in parts:
        s = speech(name)
        i = int(start_s * RATE)
        audio[i : i + len(s)] = s
    path = tmp_path / "input.wav"
    sf.write(path, audio, RATE, subtype="PCM_16")
    return path


class Run:
    def __init__(self, session: VoiceSession, log: TurnLog, assistant: np.ndarray) -> None:
        self.session = session
        self.turns: list[TurnRecord] = log.finished
        self.assistant = assistant


def run_session(
    tmp_path: Path, input_path: Path, asr: FakeASR, llm: FakeLLM, tts: FakeTTS, commands: Commands | None = None, **config: object
) -> Run:
    log = TurnLog(tmp_path / "turns.jsonl")
    output = OutputBuffer(RATE)
    # One recognizer call per utterance, as these tests script them: no head start unless asked.
    config.setdefault("endpointer", EndpointerConfig(speculate_ms=0))
    session = VoiceSession(asr, llm, tts, output, log, Dialog(), SessionConfig(**config), commands)  # type: ignore[arg-type]
    recorder = ConversationRecorder(tmp_path / "conversation.wav", RATE)
    device = ReplayDevice(input_path, output, recorder, paced=False)

    async def main() -> None:
        await asyncio.wait_for(session.run(device, fast=True), timeout=60)

    try:
        asyncio.run(main())
    finally:
        recorder.close()
        log.close()
    audio, _ = sf.read(tmp_path / "conversation.wav", dtype="int16")
    return Run(session, log, audio[:, 1])


def loud(x: np.ndarray) -> bool:
    return bool(len(x)) and float(np.abs(x.astype(np.int32)).max()) > 1000


def test_each_turn_is_answered_and_the_next_prompt_carries_the_history(tmp_path: Path) -> None:
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (8.0, "spk2_snt1.wav")], 14.0)
    llm = FakeLLM(["A small dog.", "One war."])
    run = run_session(tmp_path, path, FakeASR(["first question", "second question"]), llm, FakeTTS())

    assert [t.user_text for t in run.turns] == ["first question", "second question"]
    assert [t.assistant_text for t in run.turns] == ["A small dog.", "One war."]
    assert not any(t.interrupted for t in run.turns)
    assert [m["content"] for m in llm.prompts[1][1:]] == ["first question", "A small dog.", "second question"]


def test_speaking_over_the_reply_stops_it_and_keeps_only_what_was_heard(tmp_path: Path) -> None:
    # The reply to the first question lasts ~7 s; the second question starts ~3 s into it.
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (6.5, "spk2_snt1.wav")], 16.0)
    llm = FakeLLM([LONG_REPLY, "Short answer."])
    tts = FakeTTS(seconds_per_word=0.25)
    run = run_session(tmp_path, path, FakeASR(["tell me something long", "wait, another thing"]), llm, tts)

    first, second = run.turns
    assert first.interrupted and not second.interrupted
    # Heard: the first sentence (3 s of audio at most) and part of the second, not all of it.
    assert first.assistant_text
    assert LONG_REPLY.startswith(first.assistant_text)
    assert len(first.assistant_text) < len(LONG_REPLY)
    assert second.assistant_text == "Short answer."

    # The assistant's audio stops soon after the user starts speaking over it.
    assert first.reply_start_s is not None and second.user_start_s is not None
    onset = second.user_start_s
    assert loud(run.assistant[int((onset - 0.5) * RATE) : int(onset * RATE)])
    stop = int((onset + 0.25) * RATE)
    assert second.reply_start_s is not None
    assert not loud(run.assistant[stop : int(second.reply_start_s * RATE)])

    # The model is told what it actually said, and that it was cut off.
    exchange = run.session.dialog.exchanges[0]
    assert exchange.interrupted and exchange.reply == first.assistant_text
    assert llm.prompts[1][2] == {"role": "assistant", "content": first.assistant_text + "..."}


def test_half_duplex_does_not_listen_while_speaking(tmp_path: Path) -> None:
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (6.5, "spk2_snt1.wav")], 16.0)
    asr = FakeASR(["tell me something long", "this should not be heard"])
    run = run_session(tmp_path, path, asr, FakeLLM([LONG_REPLY]), FakeTTS(), barge_in=False)

    [turn] = run.turns
    assert not turn.interrupted
    assert turn.assistant_text == LONG_REPLY
    assert len(asr.calls) == 1


def test_a_pause_mid_sentence_is_answered_as_one_question(tmp_path: Path) -> None:
    # The second utterance starts 1 s after the first ends: the user was not done.
    first = speech("spk1_snt1.wav")
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (0.5 + len(first) / RATE + 1.0, "spk2_snt1.wav")], 14.0)
    llm = FakeLLM(["Cut short by the user.", "The whole answer."])
    run = run_session(tmp_path, path, FakeASR(["what is", "the capital of France"]), llm, FakeTTS())

    answered = [t for t in run.turns if not t.interrupted]
    assert [t.user_text for t in answered] == ["what is the capital of France"]
    assert answered[0].assistant_text == "The whole answer."
    # The cut exchange is gone from the history: the model sees one question.
    assert [m["role"] for m in llm.prompts[-1]] == ["system", "user"]
    assert llm.prompts[-1][1]["content"] == "what is the capital of France"


def test_a_failing_model_apologises_and_the_next_turn_works(tmp_path: Path) -> None:
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (9.0, "spk2_snt1.wav")], 16.0)
    llm = FakeLLM(["This will fail halfway.", "Working again."], fail_on=[0])
    tts = FakeTTS()
    run = run_session(tmp_path, path, FakeASR(["first", "second"]), llm, tts)

    first, second = run.turns
    assert first.error is not None and "llm" in first.error
    assert first.assistant_text == APOLOGY
    assert APOLOGY in tts.texts
    assert second.assistant_text == "Working again." and second.error is None


def test_noise_that_holds_no_words_makes_no_turn(tmp_path: Path) -> None:
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav")], 6.0)
    llm = FakeLLM(["never asked"])
    run = run_session(tmp_path, path, FakeASR([""]), llm, FakeTTS())

    assert run.turns == []
    assert llm.prompts == []
    assert not loud(run.assistant)
    assert (tmp_path / "turns.jsonl").read_text() == ""


class FailingASR(FakeASR):
    def transcribe(self, audio: np.ndarray):  # type: ignore[no-untyped-def]
        if not self.calls:
            self.calls.append(len(audio))
            raise RuntimeError("fake ASR failure")
        return super().transcribe(audio)


def test_a_failing_recognizer_says_it_did_not_catch_that_and_the_next_turn_works(tmp_path: Path) -> None:
    from voxloop.pipeline.asr_stage import NOT_HEARD

    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (9.0, "spk2_snt1.wav")], 16.0)
    llm = FakeLLM(["Working again."])
    tts = FakeTTS()
    run = run_session(tmp_path, path, FailingASR(["second"]), llm, tts)

    first, second = run.turns
    assert first.error is not None and first.error.startswith("asr")
    assert first.assistant_text == NOT_HEARD and NOT_HEARD in " ".join(tts.texts)
    assert first.reply_start_s is not None
    assert second.user_text == "second" and second.assistant_text == "Working again."
    assert len(llm.prompts) == 1  # nothing was asked of the model for the lost turn


def test_history_is_trimmed_to_fit_the_context_window_oldest_first() -> None:
    from voxloop.pipeline.dialog import Dialog

    dialog = Dialog("system", max_history_chars=10_000)
    for n in range(6):
        exchange = dialog.begin(n, f"question {n} " + "word " * 50)
        exchange.reply = f"answer {n}"
    dialog.begin(6, "the newest question")

    def fits(messages: list[dict[str, str]]) -> bool:
        return sum(len(m["content"]) for m in messages) <= 800

    messages = dialog.messages(fits)
    assert fits(messages)
    assert messages[0] == {"role": "system", "content": "system"}
    assert messages[-1] == {"role": "user", "content": "the newest question"}
    kept = [m["content"].split()[1] for m in messages[1:-1] if m["role"] == "user"]
    assert kept and kept == sorted(kept) and kept[-1] == "5"  # the newest history survives
    assert "0" not in kept

    # One question longer than the whole window keeps its end: what was said last.
    alone = Dialog("system")
    alone.begin(0, "start " + "filler " * 400 + "the actual question at the end")
    messages = alone.messages(fits)
    assert fits(messages) and messages[-1]["content"].endswith("the actual question at the end")


class FailingTTS(FakeTTS):
    """Fails on the first sentence it is given, then works."""

    def synthesize(self, text: str):  # type: ignore[no-untyped-def]
        if not self.texts:
            self.texts.append(text)
            raise RuntimeError("fake TTS failure")
        return super().synthesize(text)


def test_a_failing_synthesizer_loses_one_sentence_not_the_turn(tmp_path: Path) -> None:
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (12.0, "spk2_snt1.wav")], 20.0)
    llm = FakeLLM(["This first sentence is lost. The second one is spoken.", "Fine again."])
    run = run_session(tmp_path, path, FakeASR(["first", "second"]), llm, FailingTTS())

    first, second = run.turns
    assert first.error is not None and first.error.startswith("tts")
    assert first.reply_start_s is not None  # the rest of the reply was heard
    assert loud(run.assistant[int(first.reply_start_s * RATE) : int((first.reply_start_s + 0.5) * RATE)])
    assert second.assistant_text == "Fine again." and second.error is None


def _by_length(audio: np.ndarray) -> str:
    """A recognizer stand-in whose text says how much speech it was given."""
    return f"utterance of {round(len(audio) / RATE, 1)} seconds"


def test_a_head_start_is_taken_at_the_first_pause_and_plays_at_the_endpoint(tmp_path: Path) -> None:
    path = make_input(tmp_path, [(0.5, "what_time_is_it.wav")], 8.0)
    llm = FakeLLM(["It is noon."])
    endpointer = EndpointerConfig(speculate_ms=100, hangover_ms=500)
    run = run_session(tmp_path, path, FakeASR(by_audio=_by_length), llm, FakeTTS(), endpointer=endpointer, adaptive_hangover=False)

    [turn] = run.turns
    assert turn.stages.get("head_start") == 1.0
    assert len(llm.prompts) == 1
    # Everything was ready before the endpoint: the reply starts within a block of it.
    assert turn.latency_ms is not None
    assert turn.latency_ms <= turn.stages["endpoint"] + 2 * 20 + 1


def test_speech_after_the_pause_throws_the_head_start_away(tmp_path: Path) -> None:
    first = speech("spk1_snt1.wav")
    # A 300 ms gap: longer than the 100 ms head-start pause, shorter than the 500 ms hangover.
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (0.5 + len(first) / RATE + 0.3, "spk2_snt1.wav")], 12.0)
    llm = FakeLLM(["Speculative answer.", "Speculative again.", "Final answer.", "More."])
    tts = FakeTTS()
    endpointer = EndpointerConfig(speculate_ms=100, hangover_ms=500)
    run = run_session(tmp_path, path, FakeASR(by_audio=_by_length), llm, tts, endpointer=endpointer, adaptive_hangover=False)

    [turn] = run.turns
    assert run.session.endpoint.retractions >= 1
    assert len(llm.prompts) >= 2  # the model was asked early, then again for the whole utterance
    # Only the reply to the whole utterance was heard and kept.
    whole = llm.prompts[-1][-1]["content"]
    assert turn.user_text == whole
    assert [e.user for e in run.session.dialog.exchanges] == [whole]
    assert turn.assistant_text == run.session.dialog.exchanges[0].reply
    seconds = float(whole.split()[2])
    assert seconds > len(first) / RATE + 1.0  # it covers both parts


def test_the_words_at_the_pause_set_the_hangover(tmp_path: Path) -> None:
    path = make_input(tmp_path, [(0.5, "what_time_is_it.wav")], 8.0)
    endpointer = EndpointerConfig(speculate_ms=100, hangover_ms=500)
    asked = run_session(tmp_path, path, FakeASR(by_audio=lambda a: "What time is it?"), FakeLLM(["Noon."]), FakeTTS(), endpointer=endpointer)
    trailing = run_session(tmp_path, path, FakeASR(by_audio=lambda a: "What time is it and"), FakeLLM(["Noon."]), FakeTTS(), endpointer=endpointer)

    assert asked.turns[0].stages["endpoint"] == pytest.approx(260)  # 250 ms after a question, on 20 ms frames
    assert trailing.turns[0].stages["endpoint"] == pytest.approx(900)  # longer after a trailing "and"


def test_a_wordless_head_start_then_speech_keeps_the_start_of_the_turn(tmp_path: Path) -> None:
    # A noise burst, a short gap, then the question: the head start taken at the gap hears no
    # words, the user goes on, and the turn must still say where the user started.
    rng = np.random.default_rng(4)
    question = speech("what_time_is_it.wav")
    loud = np.flatnonzero(np.abs(question.astype(np.int32)) > 1000)
    question = question[loud[0] : loud[-1]]  # the words alone, without the file's own silence
    audio = np.zeros(8 * RATE, dtype=np.int16)
    audio[RATE : RATE + int(0.4 * RATE)] = (rng.normal(0, 0.1, int(0.4 * RATE)) * 32767).astype(np.int16)
    start = RATE + int(0.56 * RATE)
    audio[start : start + len(question)] = question
    path = tmp_path / "input.wav"
    sf.write(path, audio, RATE, subtype="PCM_16")
    asr = FakeASR(by_audio=lambda a: "" if len(a) < 0.9 * RATE else "What time is it?")
    endpointer = EndpointerConfig(speculate_ms=100, hangover_ms=500)
    run = run_session(tmp_path, path, asr, FakeLLM(["Noon."]), FakeTTS(), endpointer=endpointer, adaptive_hangover=False)

    [turn] = run.turns
    assert run.session.endpoint.retractions >= 1
    assert turn.user_text == "What time is it?" and turn.assistant_text == "Noon."
    assert turn.user_start_s is not None and turn.user_start_s < 1.5


def test_a_failed_head_start_that_is_retracted_leaves_no_error_on_the_turn(tmp_path: Path) -> None:
    first = speech("spk1_snt1.wav")
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (0.5 + len(first) / RATE + 0.3, "spk2_snt1.wav")], 12.0)
    llm = FakeLLM(["Fails at once.", "Fine.", "Fine.", "Fine."], fail_on=[0])
    endpointer = EndpointerConfig(speculate_ms=100, hangover_ms=500)
    run = run_session(tmp_path, path, FakeASR(by_audio=_by_length), llm, FakeTTS(), endpointer=endpointer, adaptive_hangover=False)

    [turn] = run.turns
    assert run.session.endpoint.retractions >= 1
    assert turn.error is None and turn.assistant_text == "Fine."


def test_history_is_trimmed_in_steps_so_the_cached_prompt_prefix_stays_put() -> None:
    from voxloop.pipeline.dialog import Dialog

    dialog = Dialog("system", max_history_chars=3000)
    firsts = []
    for n in range(60):
        dialog.begin(n, f"question {n} " + "word " * 40)
        firsts.append(dialog.messages()[1]["content"])
        dialog.exchanges[-1].reply = "answer " * 40
    changes = sum(a != b for a, b in zip(firsts, firsts[1:]))
    # Each exchange is ~500 characters: one-by-one trimming would change the prefix on each of
    # the last ~54 turns; trimming to half the budget changes it about every third turn.
    assert 3 <= changes <= 20
    history = sum(len(m["content"]) for m in dialog.messages()[1:])
    assert history <= 3000
