"""The endpointer on real recordings: one utterance in, one turn out, in the right place.

Each input is built like a live session: silence, a recording, silence, fed as 20 ms frames
with their position on the timeline, the way the endpoint stage feeds the microphone.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest
from conftest import recordings
from voxloop.voice.audio_file import float_to_int16, iter_audio
from voxloop.voice.vad import (
    Endpointer,
    EndpointerConfig,
    SpeechDiscarded,
    SpeechEnd,
    SpeechPaused,
    SpeechResumed,
    SpeechStart,
    WebRtcVad,
)

RATE = 16000
FRAME_MS = 20
FRAME = RATE * FRAME_MS // 1000
FRAME_S = FRAME_MS / 1000
LEAD_S = 1.0
TAIL_S = 1.5
ONSET_TOLERANCE_S = 0.3

# Recordings that hold one utterance (no pause inside longer than the default hangover).
# one_two_three_44k.wav and jfk.flac have long pauses between words, so they are several turns.
SINGLE = [
    r.path.name for r in recordings() if r.path.name not in {"one_two_three_44k.wav", "jfk.flac"}
]


@cache
def speech(name: str) -> np.ndarray:
    """A recording from tests/data as 16 kHz int16 mono."""
    path = next(r.path for r in recordings() if r.path.name == name)
    return float_to_int16(np.concatenate(list(iter_audio(path))))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def timeline(*parts: np.ndarray) -> np.ndarray:
    """Concatenate, padded with silence to a whole number of frames."""
    x = np.concatenate(parts)
    return np.concatenate([x, np.zeros(-len(x) % FRAME, dtype=np.int16)])


def _frame_dbfs(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-9) / 32768)


def energy_onset_s(x: np.ndarray) -> float:
    """Start of the first 20 ms frame within 20 dB of the recording's loudest frame."""
    db = _frame_dbfs(x)
    return float(np.flatnonzero(db > db.max() - 20)[0]) * FRAME_S


def run(signal: np.ndarray, config: EndpointerConfig | None = None, flush: bool = False) -> list:
    endpointer = Endpointer(WebRtcVad(), config)
    assert endpointer.frame_samples == FRAME
    events: list = []
    for i in range(len(signal) // FRAME):
        events += endpointer.push(signal[i * FRAME : (i + 1) * FRAME], i * FRAME_S)
    if flush:
        events += endpointer.flush(len(signal) / RATE)
    return events


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def span(end: SpeechEnd) -> tuple[float, float]:
    """Timeline seconds [first sample, after last sample] of an utterance's audio."""
    stop = end.end_s + end.endpoint_ms / 1000
    return stop - len(end.samples) / RATE, stop


def at(signal: np.ndarray, seconds: float) -> int:
    return round(seconds * RATE)


# --- one utterance -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SINGLE)
def test_one_utterance_gives_one_start_and_one_end_in_the_right_place(name: str) -> None:
    x = speech(name)
    signal = timeline(silence(LEAD_S), x, silence(TAIL_S))
    events = run(signal)
    starts, ends = of(events, SpeechStart), of(events, SpeechEnd)
    assert len(starts) == 1 and len(ends) == 1, events
    assert of(events, SpeechDiscarded) == []
    assert events.index(starts[0]) < events.index(ends[0])

    onset = LEAD_S + energy_onset_s(x)
    assert abs(starts[0].at_s - onset) <= ONSET_TOLERANCE_S, (starts[0].at_s, onset)

    end = ends[0]
    assert end.start_s == starts[0].at_s
    speech_stop = LEAD_S + len(x) / RATE
    assert onset < end.end_s <= speech_stop + 2 * FRAME_S
    assert end.endpoint_ms == pytest.approx(EndpointerConfig().hangover_ms, abs=1e-6)
    assert 0 < end.voiced_ms <= (end.end_s - end.start_s) * 1000 + 1e-6
    assert end.voiced_ms >= EndpointerConfig().min_voiced_ms


@pytest.mark.parametrize("name", SINGLE)
def test_utterance_samples_are_the_input_audio_with_pre_roll(name: str) -> None:
    x = speech(name)
    signal = timeline(silence(LEAD_S), x, silence(TAIL_S))
    (end,) = of(run(signal), SpeechEnd)
    first, stop = span(end)
    assert end.samples.dtype == np.int16 and end.samples.ndim == 1
    # Exactly the timeline's audio: pre-roll + speech + the silence waited.
    np.testing.assert_array_equal(end.samples, signal[at(signal, first) : at(signal, stop)])
    # The pre-roll is there: the audio starts before the detected onset and before the
    # speech's energy onset, so the first word is whole.
    assert first < end.start_s
    assert first <= LEAD_S + energy_onset_s(x)


@pytest.mark.parametrize("name", ["spk1_snt1.wav", "arctic_a0024.wav"])
def test_pre_roll_before_start_is_pre_roll_ms(name: str) -> None:
    config = EndpointerConfig()
    signal = timeline(silence(LEAD_S), speech(name), silence(TAIL_S))
    (end,) = of(run(signal, config), SpeechEnd)
    first, _ = span(end)
    assert end.start_s - first == pytest.approx(config.pre_roll_ms / 1000, abs=FRAME_S + 1e-6)


def test_hangover_sets_the_endpoint_delay() -> None:
    config = EndpointerConfig(hangover_ms=800)
    signal = timeline(silence(LEAD_S), speech("spk2_snt1.wav"), silence(TAIL_S))
    (end,) = of(run(signal, config), SpeechEnd)
    assert end.endpoint_ms == pytest.approx(800, abs=1e-6)
    _, stop = span(end)
    assert stop == pytest.approx(end.end_s + 0.8)


# --- several utterances --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("what_time_is_it.wav", "turn_on_the_lamp.wav"),
        ("spk1_snt1.wav", "spk2_snt2.wav"),
        ("ldc93s1.wav", "goforward.wav"),
    ],
)
def test_two_utterances_separated_by_silence_are_two_turns(first: str, second: str) -> None:
    a, b = speech(first), speech(second)
    gap_s = 1.5
    signal = timeline(silence(LEAD_S), a, silence(gap_s), b, silence(TAIL_S))
    events = run(signal)
    starts, ends = of(events, SpeechStart), of(events, SpeechEnd)
    assert len(starts) == 2 and len(ends) == 2, events
    assert [type(e) for e in events if not isinstance(e, (SpeechPaused, SpeechResumed))] == [SpeechStart, SpeechEnd, SpeechStart, SpeechEnd]

    b_at = LEAD_S + len(a) / RATE + gap_s
    assert abs(starts[0].at_s - (LEAD_S + energy_onset_s(a))) <= ONSET_TOLERANCE_S
    assert abs(starts[1].at_s - (b_at + energy_onset_s(b))) <= ONSET_TOLERANCE_S
    assert ends[0].end_s <= b_at + FRAME_S  # the first turn ended before the second began
    assert ends[1].start_s > ends[0].end_s + ends[0].endpoint_ms / 1000
    # No audio is shared between turns.
    assert span(ends[0])[1] <= span(ends[1])[0] + 1e-9


# --- things that are not speech -------------------------------------------------------------


@pytest.mark.parametrize("burst_ms", [20, 40, 60, 100, 140])
def test_short_burst_is_not_a_turn(burst_ms: int) -> None:
    rng = np.random.default_rng(burst_ms)
    n = burst_ms * RATE // 1000
    burst = np.clip(rng.normal(0, 8000, n), -32768, 32767).astype(np.int16)  # ~ -12 dBFS
    signal = timeline(silence(LEAD_S), burst, silence(TAIL_S))
    events = run(signal, flush=True)
    assert of(events, SpeechEnd) == []
    # Either it never counted as an onset, or the onset was taken back.
    assert len(of(events, SpeechStart)) == len(of(events, SpeechDiscarded)) <= 1


def test_digital_silence_gives_no_events() -> None:
    assert run(silence(5.0), flush=True) == []


def test_quiet_hiss_gives_no_events() -> None:
    rng = np.random.default_rng(1)
    hiss = rng.normal(0, 32768 * 10 ** (-60 / 20), 5 * RATE).astype(np.int16)
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(hiss.astype(np.float64) ** 2)) / 32768)
    assert rms_dbfs == pytest.approx(-60, abs=1)
    assert run(hiss, flush=True) == []


def test_webrtcvad_calls_speech_speech_and_silence_silence() -> None:
    vad = WebRtcVad()
    x = speech("arctic_a0024.wav")
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    verdicts = [vad.is_speech(f) for f in frames]
    assert sum(verdicts) / len(verdicts) > 0.5
    assert not vad.is_speech(np.zeros(FRAME, dtype=np.int16))


# --- long speech and end of input -------------------------------------------------------------



@pytest.mark.parametrize(
    "name",
    [
        "arctic_a0024.wav",
        "ldc93s1.wav",
        "spk1_snt1.wav",
        "spk1_snt2.wav",
        "goforward.wav",
        "whats_the_date_today.wav",
        "what_time_is_it.wav",
        "turn_on_the_lamp.wav",
    ],
)
def test_speech_longer_than_max_is_cut_into_pieces_none_lost(name: str) -> None:
    signal = timeline(silence(LEAD_S), speech(name), silence(TAIL_S))
    (whole,) = of(run(signal), SpeechEnd)
    config = EndpointerConfig(max_utterance_s=1.0)
    events = run(signal, config)
    pieces = of(events, SpeechEnd)
    assert len(pieces) >= 2, events
    spans = [span(p) for p in pieces]
    for piece, (first, stop) in zip(pieces, spans, strict=True):
        assert len(piece.samples) <= config.max_utterance_s * RATE
        np.testing.assert_array_equal(piece.samples, signal[at(signal, first) : at(signal, stop)])
    for (_, stop), (first, _) in itertools.pairwise(spans):
        assert first == pytest.approx(stop), "the pieces must follow one another with no gap"
    assert of(events, SpeechDiscarded) == []
    # Together the pieces hold the voiced audio the uncut utterance had. (Two frames of slack at
    # the very end: a remainder that short after the last cut cannot confirm an onset.)
    assert spans[0][0] <= whole.start_s
    assert spans[-1][1] >= whole.end_s - 2 * FRAME_S - 1e-6
    total = sum(len(p.samples) for p in pieces)
    assert total == pytest.approx((spans[-1][1] - spans[0][0]) * RATE, abs=1)
    assert sum(p.voiced_ms for p in pieces) >= whole.voiced_ms - 2 * FRAME_MS


def test_flush_mid_speech_returns_the_open_utterance() -> None:
    x = speech("arctic_a0024.wav")
    cut_s = 2.5
    signal = timeline(silence(LEAD_S), x[: round(cut_s * RATE)])
    events = run(signal, flush=True)
    assert [type(e) for e in events if not isinstance(e, (SpeechPaused, SpeechResumed))] == [SpeechStart, SpeechEnd]
    start, end = events
    assert end.start_s == start.at_s
    first, stop = span(end)
    assert stop == pytest.approx(len(signal) / RATE)
    np.testing.assert_array_equal(end.samples, signal[at(signal, first) :])
    assert end.end_s > LEAD_S + cut_s - 0.2  # still talking when the input stopped
    assert end.voiced_ms >= 1000


def test_flush_without_open_utterance_is_empty() -> None:
    signal = timeline(silence(LEAD_S), speech("spk2_snt1.wav"), silence(TAIL_S))
    endpointer = Endpointer(WebRtcVad())
    for i in range(len(signal) // FRAME):
        endpointer.push(signal[i * FRAME : (i + 1) * FRAME], i * FRAME_S)
    assert endpointer.flush(len(signal) / RATE) == []



# --- head start ------------------------------------------------------------------------------


def _trim(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 32768 * 10 ** (-40 / 20))
    return x[loud[0] * FRAME : (loud[-1] + 1) * FRAME]


def test_a_pause_is_announced_early_and_speech_after_it_retracts_the_announcement() -> None:
    a, b = _trim(speech("what_time_is_it.wav")), _trim(speech("turn_on_the_lamp.wav"))
    config = EndpointerConfig(speculate_ms=100, hangover_ms=500)
    # 300 ms between the two: past the head-start pause, short of the hangover.
    signal = timeline(silence(LEAD_S), a, silence(0.3), b, silence(TAIL_S))
    events = run(signal, config)

    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStart and kinds[-1] is SpeechEnd
    assert SpeechResumed in kinds  # the first pause was not the end
    paused = of(events, SpeechPaused)
    assert paused and kinds.index(SpeechPaused) < kinds.index(SpeechResumed)
    assert len(of(events, SpeechEnd)) == 1
    # The final pause is announced speculate_ms after the last voiced frame, before the end.
    last = paused[-1]
    (end,) = of(events, SpeechEnd)
    assert last.end_s == pytest.approx(end.end_s)
    np.testing.assert_array_equal(last.samples, end.samples[: len(last.samples)])


def test_set_hangover_ends_the_current_utterance_sooner_then_resets() -> None:
    a = speech("what_time_is_it.wav")
    signal = timeline(silence(LEAD_S), a, silence(TAIL_S), a, silence(TAIL_S))
    endpointer = Endpointer(WebRtcVad(), EndpointerConfig(hangover_ms=600))
    ends = []
    for i in range(len(signal) // FRAME):
        for event in endpointer.push(signal[i * FRAME : (i + 1) * FRAME], i * FRAME_S):
            if isinstance(event, SpeechPaused) and not ends:
                endpointer.set_hangover(200)
            if isinstance(event, SpeechEnd):
                ends.append(event)
    assert len(ends) == 2
    assert ends[0].endpoint_ms == pytest.approx(200, abs=FRAME_MS)
    assert ends[1].endpoint_ms == pytest.approx(600, abs=FRAME_MS)


def test_the_audio_of_the_latest_frames_can_be_swapped_for_the_same_moments_from_elsewhere() -> None:
    from voxloop.voice.vad import Endpointer, WebRtcVad

    endpointer = Endpointer(WebRtcVad())
    quiet = [np.full(320, 1, dtype=np.int16) * k for k in range(5)]
    for k, frame in enumerate(quiet):
        endpointer.push(frame, k * 0.02)
    other = [np.full(320, 7, dtype=np.int16), np.full(320, 9, dtype=np.int16)]
    assert endpointer.replace_audio(other) == 2
    assert [int(f[0]) for f in endpointer._recent][-3:] == [2, 7, 9]
