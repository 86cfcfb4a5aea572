"""Turn-taking, history, barge-in and recovery: the session's own logic, with fake engines.

The microphone side is real recorded speech placed at known times, so the real VAD and
endpointer decide where turns are; the engines are fakes so each test controls what is said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA

from voxloop.models.fakes import FakeASR, FakeLLM, FakeTTS
from voxloop.pipeline.assistant.commands import Commands
from voxloop.pipeline.assistant.session_store import SessionRecorder, SessionStore
from voxloop.pipeline.dialog import Dialog, Exchange
from voxloop.pipeline.reply_stage import APOLOGY
from voxloop.pipeline.session import SessionConfig, VoiceSession
from voxloop.pipeline.turn_end import hangover_for
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
    tmp_path: Path,
    input_path: Path,
    asr: FakeASR,
    llm: FakeLLM,
    tts: FakeTTS,
    on_exchange: Callable[[Exchange], None] | None = None,
    commands: Commands | None = None,
    **config: object,
) -> Run:
    log = TurnLog(tmp_path / "turns.jsonl")
    output = OutputBuffer(RATE)
    # One recognizer call per utterance, as these tests script them: no head start unless asked.
    config.setdefault("endpointer", EndpointerConfig(speculate_ms=0))
    # No echo here, and the fake TTS plays a pure tone: a reference an echo canceller cannot
    # model, under which it suppresses the whole microphone. The canceller has its own tests.
    config.setdefault("echo_cancel", False)
    session = VoiceSession(asr, llm, tts, output, log, Dialog(), SessionConfig(**config), commands)  # type: ignore[arg-type]
    session.on_exchange = on_exchange
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


def test_each_exchange_is_saved_as_it_ends_with_only_what_was_heard(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions.db")
    recorder = SessionRecorder(store)
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (6.5, "spk2_snt1.wav")], 16.0)
    llm = FakeLLM([LONG_REPLY, "Short answer."])
    run = run_session(tmp_path, path, FakeASR(["tell me something long", "wait, another thing"]), llm, FakeTTS(), recorder)

    assert recorder.session_id is not None
    saved = [(s.user, s.reply, s.interrupted) for s in store.load(recorder.session_id)]
    assert saved == [
        ("tell me something long", run.turns[0].assistant_text, True),
        ("wait, another thing", "Short answer.", False),
    ]
    assert LONG_REPLY.startswith(saved[0][1]) and len(saved[0][1]) < len(LONG_REPLY)


def test_a_pause_mid_sentence_is_answered_as_one_question(tmp_path: Path) -> None:
    # The second utterance starts 1 s after the first ends: the user was not done.
    first = speech("spk1_snt1.wav")
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (0.5 + len(first) / RATE + 1.0, "spk2_snt1.wav")], 14.0)
    llm = FakeLLM(["Cut short by the user.", "The whole answer."])
    saved: list[Exchange] = []
    run = run_session(tmp_path, path, FakeASR(["what is", "the capital of France"]), llm, FakeTTS(), saved.append)

    answered = [t for t in run.turns if not t.interrupted]
    assert [t.user_text for t in answered] == ["what is the capital of France"]
    assert answered[0].assistant_text == "The whole answer."
    # The cut exchange is gone from the history: the model sees one question.
    assert [m["role"] for m in llm.prompts[-1]] == ["system", "user"]
    assert llm.prompts[-1][1]["content"] == "what is the capital of France"
    assert [(e.user, e.reply) for e in saved] == [("what is the capital of France", "The whole answer.")]


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


# --- talking over the reply: what stops it and what does not ---------------------------------

REPLY_WORDS = len(LONG_REPLY.split())


def speech_onset_s(name: str) -> float:
    """Seconds into a recording of its first clearly voiced sample."""
    s = speech(name).astype(np.int32)
    return float(np.flatnonzero(np.abs(s) > 1500)[0]) / RATE


def overlapping_input(
    tmp_path: Path, second: np.ndarray, at_s: float = 6.0, total_s: float = 16.0, question_gain: float = 1.0
) -> Path:
    """A question at 0.5 s, then ``second`` at ``at_s``, inside the ~6 s reply (FakeTTS)."""
    audio = np.zeros(int(total_s * RATE), dtype=np.int16)
    first = (speech("spk1_snt1.wav") * question_gain).astype(np.int16)
    audio[int(0.5 * RATE) : int(0.5 * RATE) + len(first)] = first
    audio[int(at_s * RATE) : int(at_s * RATE) + len(second)] = second
    path = tmp_path / "input.wav"
    sf.write(path, audio, RATE, subtype="PCM_16")
    return path


def tone_s(assistant: np.ndarray) -> float:
    """Seconds of assistant audio that were loud (played)."""
    frames = assistant[: len(assistant) // 160 * 160].reshape(-1, 160).astype(np.int32)
    return float((np.abs(frames).max(axis=1) > 1000).sum()) * 0.01


def test_speech_over_the_reply_stops_the_sound_within_100_ms_of_its_onset(tmp_path: Path) -> None:
    second = speech("spk2_snt1.wav")
    path = overlapping_input(tmp_path, second, at_s=6.0)
    run = run_session(tmp_path, path, FakeASR(["tell me something long", "what about cats"]), FakeLLM([LONG_REPLY, "Cats."]), FakeTTS())

    onset = 6.0 + speech_onset_s("spk2_snt1.wav")
    assert loud(run.assistant[int((onset - 0.2) * RATE) : int(onset * RATE)])  # it was talking
    after = run.assistant[int(onset * RATE) : int((onset + 1.5) * RATE)].astype(np.int32)
    last_loud = np.flatnonzero(np.abs(after) > 1000)
    stopped_ms = (last_loud[-1] + 1) / RATE * 1000 if len(last_loud) else 0.0
    assert stopped_ms <= 100
    first, answer = run.turns
    assert first.interrupted and answer.user_text == "what about cats" and answer.assistant_text == "Cats."


@pytest.mark.parametrize("heard", ["mm-hmm", "Yeah.", "Right, right.", "oh okay"])
def test_a_backchannel_over_the_reply_lets_it_go_on(tmp_path: Path, heard: str) -> None:
    nod = speech("spk2_snt1.wav")[: int(0.9 * RATE)]
    path = overlapping_input(tmp_path, nod, at_s=5.0)
    llm = FakeLLM([LONG_REPLY])
    run = run_session(tmp_path, path, FakeASR(["tell me something long", heard]), llm, FakeTTS())

    [turn] = run.turns
    assert not turn.interrupted
    assert turn.assistant_text == LONG_REPLY
    assert len(llm.prompts) == 1  # the nod was never a question
    # Paused while the words were judged, then the rest was played: none of it was lost.
    assert abs(tone_s(run.assistant) - REPLY_WORDS * 0.25) < 0.15
    assert run.session.let_pass["backchannel"] == 1


@pytest.mark.parametrize("heard", ["Stop.", "wait", "No, no.", "Okay, stop."])
def test_stop_over_the_reply_cuts_it_and_answers_nothing(tmp_path: Path, heard: str) -> None:
    nod = speech("spk2_snt1.wav")[: int(0.9 * RATE)]
    path = overlapping_input(tmp_path, nod, at_s=5.0)
    llm = FakeLLM([LONG_REPLY, "Should not be said."])
    run = run_session(tmp_path, path, FakeASR(["tell me something long", heard]), llm, FakeTTS())

    [turn] = run.turns
    assert turn.interrupted and LONG_REPLY.startswith(turn.assistant_text)
    assert len(llm.prompts) == 1
    assert tone_s(run.assistant) < REPLY_WORDS * 0.25 - 1.0
    assert run.session.dialog.exchanges[0].interrupted


def test_a_cough_over_the_reply_does_not_cut_it(tmp_path: Path) -> None:
    # 120 ms of broadband noise: loud enough for the VAD's first frames, too short for a turn.
    cough = (np.random.default_rng(3).normal(0, 6000, int(0.12 * RATE))).astype(np.int16)
    path = overlapping_input(tmp_path, cough, at_s=5.0)
    asr = FakeASR(["tell me something long", "should not be transcribed"])
    run = run_session(tmp_path, path, asr, FakeLLM([LONG_REPLY]), FakeTTS())

    [turn] = run.turns
    assert not turn.interrupted and turn.assistant_text == LONG_REPLY
    assert abs(tone_s(run.assistant) - REPLY_WORDS * 0.25) < 0.3


def test_the_assistants_own_words_coming_back_never_make_a_turn(tmp_path: Path) -> None:
    # What the microphone picked up is recognised as words of the reply being played.
    heard = "here is a second sentence that goes on"
    nod = speech("spk2_snt1.wav")
    path = overlapping_input(tmp_path, nod, at_s=5.0)
    llm = FakeLLM([LONG_REPLY])
    run = run_session(tmp_path, path, FakeASR(["tell me something long", heard]), llm, FakeTTS())

    assert [t.user_text for t in run.turns] == ["tell me something long"]
    assert not run.turns[0].interrupted and run.turns[0].assistant_text == LONG_REPLY
    assert len(llm.prompts) == 1
    assert run.session.let_pass["echo"] == 1


def test_a_backchannel_that_goes_on_into_a_question_takes_the_floor(tmp_path: Path) -> None:
    # "Yeah" (judged at the first pause: the reply resumes), then more words: a real question.
    onset = int(speech_onset_s("spk2_snt1.wav") * RATE)
    nod = speech("spk2_snt1.wav")[max(0, onset - 800) : onset + int(0.5 * RATE)]
    rest = speech("spk1_snt2.wav")
    second = np.concatenate([nod, np.zeros(int(0.3 * RATE), dtype=np.int16), rest])
    # Later than ``continuation_s`` after the question, so not merged with it.
    path = overlapping_input(tmp_path, second, at_s=6.0, total_s=18.0, question_gain=0.3)
    llm = FakeLLM([])
    # Head starts may ask the model more than once per turn: answer by what was asked.
    llm.stream = lambda messages, max_tokens: iter([LONG_REPLY if "long" in messages[-1]["content"] else "Sure."])  # type: ignore[method-assign]

    def by_audio(audio: np.ndarray) -> str:
        if np.abs(audio).max() < 0.06:  # the question was said quietly (float audio)
            return "tell me something long"
        return "yeah" if len(audio) < 1.5 * RATE else "yeah but what about dogs"

    run = run_session(
        tmp_path, path, FakeASR(by_audio=by_audio), llm, FakeTTS(), endpointer=EndpointerConfig(speculate_ms=100)
    )
    first, second_turn = run.turns
    assert first.interrupted
    assert second_turn.user_text == "yeah but what about dogs" and second_turn.assistant_text == "Sure."


def test_half_duplex_listens_again_once_the_reply_has_played(tmp_path: Path) -> None:
    # The reply (~1 s of tone) ends around 4.4 s; the next question starts at 5.5 s.
    path = make_input(tmp_path, [(0.5, "spk1_snt1.wav"), (5.5, "spk2_snt1.wav")], 12.0)
    asr = FakeASR(["first question", "second question"])
    run = run_session(tmp_path, path, asr, FakeLLM(["Short one.", "Two."]), FakeTTS(), barge_in=False)

    first, second = run.turns
    assert first.reply_end_s is not None and first.reply_end_s < 5.5
    assert second.user_text == "second question" and second.assistant_text == "Two."
    assert not first.interrupted


def test_a_word_let_pass_that_goes_on_into_the_rest_of_the_question_is_answered_with_it(tmp_path: Path) -> None:
    # The speaker pauses after the question, says one word over the reply (too little to take
    # the floor: it plays on), pauses again and finishes the thought: one question, all of it.
    onset = int(speech_onset_s("spk2_snt1.wav") * RATE)
    word = speech("spk2_snt1.wav")[max(0, onset - 800) : onset + int(0.5 * RATE)]
    rest = speech("spk1_snt2.wav")
    second = np.concatenate([word, np.zeros(int(0.3 * RATE), dtype=np.int16), rest])
    question_end = 0.5 + len(speech("spk1_snt1.wav")) / RATE
    path = overlapping_input(tmp_path, second, at_s=question_end + 1.2, total_s=18.0, question_gain=0.3)
    llm = FakeLLM([])
    llm.stream = lambda messages, max_tokens: iter([LONG_REPLY if messages[-1]["content"] == "tell me something long" else "Sure."])  # type: ignore[method-assign]

    def by_audio(audio: np.ndarray) -> str:
        if np.abs(audio).max() < 0.06:
            return "tell me something long"
        return "ask" if len(audio) < 1.5 * RATE else "ask what you can do"

    run = run_session(
        tmp_path, path, FakeASR(by_audio=by_audio), llm, FakeTTS(), endpointer=EndpointerConfig(speculate_ms=100)
    )
    *cut, last = run.turns
    assert cut and all(t.interrupted for t in cut)
    assert last.user_text == "tell me something long ask what you can do" and last.assistant_text == "Sure."


def test_a_reply_paused_for_a_sound_that_came_to_nothing_waits_a_moment_before_it_resumes(tmp_path: Path) -> None:
    # A short sound over the reply, then quiet: the reply resumes, ``resume_hold_ms`` after
    # the sound is thrown away rather than at once (the rest of a sentence may be coming).
    onset = int(speech_onset_s("spk2_snt1.wav") * RATE)
    blip = speech("spk2_snt1.wav")[onset : onset + int(0.12 * RATE)]

    def silent_ms(hold_ms: int) -> float:
        work = tmp_path / str(hold_ms)
        work.mkdir()
        path = overlapping_input(work, blip, at_s=6.0, total_s=16.0)
        run = run_session(work, path, FakeASR(["tell me something long"]), FakeLLM([LONG_REPLY]), FakeTTS(), resume_hold_ms=hold_ms)
        [turn] = run.turns
        assert not turn.interrupted and turn.pauses >= 1
        frames = run.assistant[: len(run.assistant) // 160 * 160].reshape(-1, 160).astype(np.int32)
        after = (np.abs(frames).max(axis=1) > 1000)[600:]  # from 6 s
        paused = int(np.argmin(after))
        return float(np.argmax(after[paused:])) * 10  # ms until it plays again

    assert silent_ms(250) - silent_ms(0) >= 240


def test_a_reply_paused_by_sounds_with_no_words_always_plays_to_its_end(tmp_path: Path) -> None:
    # Three short sounds over the reply (a voice counting, heard as nothing): each pauses the
    # reply and comes to nothing; whatever order the detectors report in, it plays out.
    onset = int(speech_onset_s("spk2_snt1.wav") * RATE)
    s = speech("spk2_snt1.wav")
    gap = np.zeros(int(0.25 * RATE), dtype=np.int16)
    blips = np.concatenate([s[onset : onset + 2400], gap, s[onset + 4800 : onset + 7200], gap, s[onset + 9600 : onset + 12000]])
    path = overlapping_input(tmp_path, blips, at_s=6.0, total_s=16.0, question_gain=0.3)
    llm = FakeLLM([])
    llm.stream = lambda messages, max_tokens: iter([LONG_REPLY])  # type: ignore[method-assign]

    def by_audio(audio: np.ndarray) -> str:
        return "tell me something long" if np.abs(audio).max() < 0.06 else ""

    run = run_session(tmp_path, path, FakeASR(by_audio=by_audio), llm, FakeTTS(), endpointer=EndpointerConfig(speculate_ms=100))
    [turn] = run.turns
    assert turn.pauses >= 1 and not turn.interrupted
    assert turn.reply_end_s is not None, "the reply stayed paused"


@pytest.mark.parametrize("on", [True, False])
def test_the_double_talk_detectors_echo_predictor_follows_the_config(tmp_path: Path, on: bool) -> None:
    log = TurnLog(tmp_path / "turns.jsonl")
    session = VoiceSession(FakeASR(), FakeLLM([]), FakeTTS(), OutputBuffer(RATE), log, Dialog(), SessionConfig(echo_predictor=on), None)  # type: ignore[arg-type]
    log.close()
    assert session.echo is not None and session.echo.detector.config.predictor is on


@pytest.mark.parametrize(
    "heard, hangover_ms",
    [
        ("Who wrote Romeo and Juliet", 250),  # a question without its question mark
        ("What should I cook for dinner tonight", 250),
        ("Who wrote Romeo and", 900),  # still trailing off
        ("What is the", 900),
        ("She had your dark suit in greasy wash water all year", 500),  # no mark: the default
        ("Why not", 500),  # too short to tell
        ("Turn on the lamp.", 350),
    ],
)
def test_the_hangover_follows_the_words(heard: str, hangover_ms: int) -> None:
    assert hangover_for(heard, 500) == hangover_ms
