"""Reading the question ahead: the utterance so far is recognised while the user speaks, and
its words (less the last) go into the language model's cache; nothing is answered from them.

Real recorded speech decides where the voice is; the engines are fakes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import DATA

from voxloop.models.fakes import FakeASR, FakeLLM, FakeTTS
from voxloop.pipeline.asr_stage import ASRStage
from voxloop.pipeline.dialog import Dialog
from voxloop.pipeline.endpoint_stage import EndpointStage
from voxloop.pipeline.frames import (
    AudioFrame,
    PartialTranscriptFrame,
    PartialUtteranceFrame,
    SentenceFrame,
    TranscriptFrame,
    UtteranceFrame,
)
from voxloop.pipeline.reply_stage import ReplyStage
from voxloop.pipeline.session import SessionConfig, VoiceSession
from voxloop.pipeline.stage import StageContext, TurnState, run_stage
from voxloop.pipeline.turn_log import TurnLog
from voxloop.voice.playback import OutputBuffer
from voxloop.voice.recording import ConversationRecorder
from voxloop.voice.replay_device import ReplayDevice
from voxloop.voice.vad import Endpointer, EndpointerConfig, WebRtcVad

RATE = 16000
BLOCK = 320  # 20 ms


def speech_then_silence(name: str = "arctic_a0024.wav", before_s: float = 0.5, after_s: float = 1.5) -> np.ndarray:
    audio, sr = sf.read(DATA / name, dtype="int16")
    assert sr == RATE
    return np.concatenate([np.zeros(int(before_s * RATE), np.int16), audio, np.zeros(int(after_s * RATE), np.int16)])


def endpoint_frames(audio: np.ndarray, every_ms: int, wanted: bool = True) -> list[object]:
    turns = iter(range(1, 100))
    stage = EndpointStage(
        Endpointer(WebRtcVad(), EndpointerConfig()),
        next_turn_id=lambda: next(turns),
        partial_every_ms=every_ms,
        partials_wanted=lambda: wanted,
    )
    blocks = [AudioFrame(0, audio[i : i + BLOCK], RATE, i / RATE) for i in range(0, len(audio) - BLOCK + 1, BLOCK)]
    return asyncio.run(run_stage(stage, blocks))  # type: ignore[arg-type]


def test_the_utterance_so_far_goes_on_while_the_user_speaks_and_grows() -> None:
    frames = endpoint_frames(speech_then_silence(), every_ms=500)

    partials = [f for f in frames if isinstance(f, PartialUtteranceFrame)]
    utterances = [f for f in frames if isinstance(f, UtteranceFrame)]
    assert len(partials) >= 3  # a 3.5 s sentence, every 0.5 s
    assert [len(p.samples) for p in partials] == sorted(len(p.samples) for p in partials)
    assert all(p.turn_id == utterances[0].turn_id for p in partials[:1])
    # None once the voice has stopped: the head start and the final utterance take over.
    last_partial = max(i for i, f in enumerate(frames) if isinstance(f, PartialUtteranceFrame))
    first_utterance = min(i for i, f in enumerate(frames) if isinstance(f, UtteranceFrame))
    assert last_partial < first_utterance


def test_no_partial_is_sent_when_off_or_not_wanted() -> None:
    audio = speech_then_silence()
    for frames in (endpoint_frames(audio, every_ms=0), endpoint_frames(audio, every_ms=500, wanted=False)):
        assert not [f for f in frames if isinstance(f, PartialUtteranceFrame)]
        assert [f for f in frames if isinstance(f, UtteranceFrame)]


def test_a_partial_is_recognised_without_its_last_word_and_never_answered() -> None:
    asr = FakeASR(["What is the capi", ""])
    stage = ASRStage(asr, prefix_for=lambda turn_id, default: "About Paris." if turn_id == 2 else default)
    samples = np.zeros(RATE, np.int16)

    frames = asyncio.run(run_stage(stage, [PartialUtteranceFrame(2, samples, RATE), PartialUtteranceFrame(2, samples, RATE)]))

    assert frames == [PartialTranscriptFrame(2, "About Paris. What is the")]  # nothing for no words


def test_a_stale_partial_is_not_passed_on() -> None:
    turns = TurnState()
    turns.current = 3
    frames = asyncio.run(
        run_stage(ASRStage(FakeASR(["What is the capital"])), [PartialUtteranceFrame(2, np.zeros(RATE, np.int16), RATE)], StageContext(turns, TurnLog(None)))
    )
    assert frames == []


def test_the_model_reads_the_history_and_the_words_so_far_then_answers_the_whole_question() -> None:
    llm = FakeLLM(["Paris."])
    dialog = Dialog()
    dialog.begin(1, "Hello.").reply = "Hi there."
    stage = ReplyStage(llm, dialog)

    async def run() -> list[object]:
        frames = await run_stage(stage, [PartialTranscriptFrame(2, "What is the capital")])
        return frames + await run_stage(stage, [TranscriptFrame(2, "What is the capital of France?", 0.0, 0.0)])

    frames = asyncio.run(run())

    [prefilled] = llm.prefilled
    assert [m["role"] for m in prefilled] == ["system", "user", "assistant", "user"]
    assert prefilled[-1]["content"] == "What is the capital"
    [prompt] = llm.prompts
    assert prompt[:-1] == prefilled[:-1]  # the same start: the cache is reused
    assert prompt[-1] == {"role": "user", "content": "What is the capital of France?"}
    assert [f.text for f in frames if isinstance(f, SentenceFrame)] == ["Paris."]
    assert [e.user for e in dialog.exchanges] == ["Hello.", "What is the capital of France?"]  # the partial left no trace


def test_a_partial_of_a_turn_already_interrupted_is_not_read() -> None:
    llm = FakeLLM([])
    stage = ReplyStage(llm, Dialog())
    turns = TurnState()
    turns.current = 5

    async def run() -> None:
        await run_stage(stage, [PartialTranscriptFrame(4, "Tell me")], StageContext(turns, TurnLog(None)))
        await stage.prefiller.wait()

    asyncio.run(run())
    assert llm.prefilled == []


def test_in_a_session_the_question_is_read_ahead_and_answered_once(tmp_path: Path) -> None:
    audio = speech_then_silence("arctic_a0024.wav", 0.5, 4.0)
    path = tmp_path / "input.wav"
    sf.write(path, audio, RATE, subtype="PCM_16")
    heard = "It was my reports from the north which chiefly induced people to buy."
    words = heard.split()

    spoken = len(audio) - int(4.5 * RATE)

    def by_audio(samples: np.ndarray) -> str:
        # The words so far, in proportion to the audio heard (the whole at the end).
        return " ".join(words[: max(1, round(len(words) * min(1.0, len(samples) / spoken)))])

    llm = FakeLLM(["I see."])
    log = TurnLog(tmp_path / "turns.jsonl")
    output = OutputBuffer(RATE)
    config = SessionConfig(endpointer=EndpointerConfig(speculate_ms=0), echo_cancel=False, partial_asr_ms=500)
    session = VoiceSession(FakeASR(by_audio=by_audio), llm, FakeTTS(), output, log, Dialog(), config)
    recorder = ConversationRecorder(tmp_path / "conversation.wav", RATE)
    device = ReplayDevice(path, output, recorder, paced=False)
    try:
        asyncio.run(session.run(device, fast=True))
    finally:
        recorder.close()
        log.close()

    [turn] = log.finished
    assert turn.user_text == heard
    assert turn.assistant_text == "I see."
    assert session.endpoint.partials >= 3
    assert llm.prefilled, "the question was read ahead"
    read = [p[-1]["content"] for p in llm.prefilled]
    assert all(heard.startswith(r) and r != heard for r in read)  # only words said so far, never the last
    assert [p[-1]["content"] for p in llm.prompts] == [heard]  # answered once, whole
