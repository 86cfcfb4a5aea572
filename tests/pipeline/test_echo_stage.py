"""The echo stage on blocks of any length: whole 10 ms frames out, on one timeline."""

from __future__ import annotations

import asyncio

import numpy as np

from voxloop.pipeline.echo_stage import EchoCancelStage
from voxloop.pipeline.frames import NO_TURN, AudioFrame
from voxloop.pipeline.stage import run_stage
from voxloop.voice.echo_canceller import EchoCanceller

RATE = 16000


def test_blocks_of_odd_length_come_out_as_whole_frames_without_a_gap() -> None:
    # A 44.1 kHz microphone resampled to 16 kHz delivers blocks of varying, odd lengths.
    rng = np.random.default_rng(0)
    lengths = [317, 322, 320, 301, 339]
    frames, at = [], 0
    for n in lengths:
        frames.append(AudioFrame(NO_TURN, (rng.standard_normal(n) * 1000).astype(np.int16), RATE, at / RATE))
        at += n
    out = asyncio.run(run_stage(EchoCancelStage(EchoCanceller()), frames))
    audio = [f for f in out if isinstance(f, AudioFrame)]
    assert all(len(f.samples) % 160 == 0 for f in audio)
    assert sum(len(f.samples) for f in audio) == sum(lengths) // 160 * 160
    ends = [f.start_s + f.duration_s for f in audio]
    assert [f.start_s for f in audio[1:]] == ends[:-1]
    assert audio[0].start_s == 0.0


def test_at_a_voice_over_the_playback_the_microphone_goes_on_and_what_was_held_down_goes_again() -> None:
    # 2 s of "assistant" (a recording) playing with no echo, then a user's voice over it: the
    # canceller holds that voice down; from the onset the stage sends the double-talk
    # detector's echo-reduced microphone (here, with no echo, the microphone itself, 10 ms
    # late), and first the last 400 ms already sent, the same way.
    from conftest import recording

    from voxloop.pipeline.frames import RestoredAudioFrame
    from voxloop.voice.audio_file import float_to_int16, iter_audio

    played = float_to_int16(np.concatenate(list(iter_audio(recording("arctic_a0024.wav").path, target_rate=RATE))) * 4)
    user = float_to_int16(np.concatenate(list(iter_audio(recording("spk2_snt1.wav").path, target_rate=RATE))) * 4)
    mic = np.zeros(len(played), dtype=np.int16)
    at = 2 * RATE
    mic[at : at + len(user)] = user[: len(mic) - at]
    frames = [
        AudioFrame(NO_TURN, mic[i : i + 320], RATE, i / RATE, reference=played[i : i + 320]) for i in range(0, len(mic) - 320, 320)
    ]
    stage = EchoCancelStage(EchoCanceller())
    onsets: list[float] = []
    stage.on_double_talk = lambda started, at_s: onsets.append(at_s) if started else None
    out = asyncio.run(run_stage(stage, frames))

    assert onsets and 2.0 <= onsets[0] <= 2.1
    def is_the_microphone(f: AudioFrame) -> bool:
        start = int(f.start_s * RATE) - 160  # one frame late
        expected = mic[start : start + len(f.samples)].astype(int)
        return bool(np.abs(f.samples.astype(int) - expected).max() <= 2)

    restored = next(f for f in out if isinstance(f, RestoredAudioFrame))
    assert restored.start_s >= onsets[0] - 0.45 and is_the_microphone(restored)
    after = [f for f in out if type(f) is AudioFrame and f.start_s >= onsets[0]][:5]
    assert after and all(is_the_microphone(f) for f in after)


def test_the_cancellers_output_is_capped_at_what_the_detector_finds_is_not_echo() -> None:
    from voxloop.pipeline.echo_stage import cap

    rng = np.random.default_rng(1)
    mic = (rng.standard_normal(480) * 3000).astype(np.int16)
    leak = (rng.standard_normal(480) * 1000).astype(np.int16)  # what AEC3 let through
    # Frame 1 all echo (kept 1 %), frame 2 half, frame 3 a voice (all kept).
    out = cap(leak, mic, np.array([0.01, 0.5, 1.0]), 160)
    power = (out.reshape(3, 160).astype(np.float64) ** 2).mean(axis=1)
    mic_power = (mic.reshape(3, 160).astype(np.float64) ** 2).mean(axis=1)
    assert power[0] <= 0.011 * mic_power[0]
    assert power[1] <= 0.51 * mic_power[1]
    assert np.array_equal(out[320:], leak[320:])  # under the cap: untouched
