"""Audio files in every format a user might hand to ``voxloop replay``: what comes out is
16 kHz float32 mono of the right length and pitch, and bad files fail with a one-line reason."""

from __future__ import annotations

import logging
import shutil
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from voxloop.voice import audio_file
from voxloop.voice.audio_file import (
    AudioFileInfo,
    float_to_int16,
    int16_to_float,
    iter_audio,
    probe,
)
from voxloop.voice.errors import AudioFileError

DATA = Path(__file__).resolve().parents[1] / "data"
TONE_HZ = 440.0


def _tone(rate: int, seconds: float = 1.0, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    x = (amp * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def _decode(path: Path, target_rate: int = 16000, block_s: float = 0.5) -> np.ndarray:
    blocks = list(iter_audio(path, target_rate=target_rate, block_s=block_s))
    for b in blocks:
        assert b.dtype == np.float32 and b.ndim == 1
    return np.concatenate(blocks)


def _dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


# (container, subtype, extension, sample rate, channels)
FORMATS = [
    ("WAV", "PCM_U8", "wav", 8000, 1),
    ("WAV", "PCM_16", "wav", 16000, 1),
    ("WAV", "PCM_24", "wav", 44100, 1),
    ("WAV", "PCM_32", "wav", 48000, 2),
    ("WAV", "FLOAT", "wav", 22050, 1),
    ("WAV", "DOUBLE", "wav", 16000, 1),
    ("WAV", "ULAW", "wav", 8000, 1),
    ("WAV", "ALAW", "wav", 8000, 1),
    ("WAV", "PCM_16", "wav", 48000, 6),
    ("FLAC", "PCM_16", "flac", 44100, 2),
    ("FLAC", "PCM_24", "flac", 48000, 1),
    ("OGG", "VORBIS", "ogg", 44100, 2),
    ("MP3", "MPEG_LAYER_III", "mp3", 44100, 1),
    ("MP3", "MPEG_LAYER_III", "mp3", 16000, 1),
    ("AIFF", "PCM_16", "aiff", 44100, 1),
]


@pytest.mark.parametrize(("fmt", "subtype", "ext", "rate", "channels"), FORMATS)
def test_every_format_decodes_to_16k_mono_with_length_and_pitch(
    tmp_path: Path, fmt: str, subtype: str, ext: str, rate: int, channels: int
) -> None:
    path = tmp_path / f"tone_{rate}.{ext}"
    sf.write(path, _tone(rate, channels=channels), rate, format=fmt, subtype=subtype)

    info = probe(path)
    assert (info.format, info.subtype, info.sample_rate, info.channels) == (
        fmt, subtype, rate, channels,
    )
    assert info.duration_s == pytest.approx(1.0, abs=0.02)

    out = _decode(path)
    assert len(out) / 16000 == pytest.approx(1.0, abs=0.02)
    assert _dominant_hz(out, 16000) == pytest.approx(TONE_HZ, abs=2.0)
    assert np.abs(out).max() <= 1.0
    # Middle of the tone (away from codec edges) keeps its level: 0.5 peak -> 0.354 rms.
    mid = out[4000:12000]
    assert np.sqrt(np.mean(mid**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_stereo_mixes_down_by_mean(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = _tone(16000)
    right = np.full_like(left, 0.25)
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")

    out = _decode(path)

    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-6)


def test_opposite_channels_cancel(tmp_path: Path) -> None:
    path = tmp_path / "antiphase.wav"
    left = _tone(48000)
    sf.write(path, np.stack([left, -left], axis=1), 48000, subtype="FLOAT")

    assert np.abs(_decode(path)).max() < 1e-6


def test_six_channels_mix_down_by_mean_through_the_resampler(tmp_path: Path) -> None:
    path = tmp_path / "surround.wav"
    levels = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], dtype=np.float32)
    sf.write(path, np.tile(levels, (48000, 1)), 48000, subtype="FLOAT")

    out = _decode(path)

    assert len(out) == pytest.approx(16000, abs=16)
    np.testing.assert_allclose(out[1000:-1000], levels.mean(), atol=1e-3)


def test_matching_rate_is_passed_through_unchanged() -> None:
    path = DATA / "what_time_is_it.wav"
    reference, rate = sf.read(path, dtype="float32")
    assert rate == 16000

    np.testing.assert_array_equal(_decode(path), reference)


def test_real_recording_at_44k1_keeps_its_length_and_content(tmp_path: Path) -> None:
    # The checked-in recording is 16 kHz; a 44.1 kHz copy is what a desktop recorder writes.
    reference, _ = sf.read(DATA / "what_time_is_it.wav", dtype="float32")
    path = tmp_path / "what_time_is_it_44k1.wav"
    sf.write(path, soxr.resample(reference, 16000, 44100), 44100, subtype="PCM_16")

    out = _decode(path)

    assert len(out) / 16000 == pytest.approx(len(reference) / 16000, abs=0.02)
    n = min(len(out), len(reference))
    assert np.corrcoef(out[:n], reference[:n])[0, 1] > 0.99


def test_resampler_tail_is_flushed(tmp_path: Path) -> None:
    # A click in the last 5 ms must survive: it only comes out of the flush.
    x = np.zeros(44100, dtype=np.float32)
    x[-100] = 0.9
    path = tmp_path / "click_at_end.wav"
    sf.write(path, x, 44100, subtype="FLOAT")

    out = _decode(path)

    assert len(out) == 16000
    assert np.abs(out[-200:]).max() > 0.1


def test_other_target_rate_and_out_of_range_floats_clip(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    sf.write(path, _tone(16000, amp=2.0), 16000, subtype="FLOAT")

    out = _decode(path, target_rate=8000)

    assert len(out) == 8000
    assert np.abs(out).max() == pytest.approx(1.0)


def test_mp3_named_wav_still_decodes(tmp_path: Path) -> None:
    real = tmp_path / "real.mp3"
    sf.write(real, _tone(16000), 16000, format="MP3", subtype="MPEG_LAYER_III")
    disguised = tmp_path / "disguised.wav"
    shutil.copy(real, disguised)

    assert probe(disguised).format == "MP3"
    assert len(_decode(disguised)) / 16000 == pytest.approx(1.0, abs=0.02)


def test_mp3_blocks_match_a_whole_read(tmp_path: Path) -> None:
    # Regression: soundfile's read() seeks after every block, and libsndfile's mp3 seek lands
    # off by whole frames on the files its own encoder writes (chunks of silence).
    path = tmp_path / "tone.mp3"
    sf.write(path, _tone(16000, seconds=3.0), 16000, format="MP3", subtype="MPEG_LAYER_III")
    whole, _ = sf.read(path, dtype="float32")

    # mpg123 rounds a hair differently by output buffer; a slipped frame is off by ~0.5.
    np.testing.assert_allclose(_decode(path, block_s=0.1), np.clip(whole, -1, 1), atol=1e-5)


def test_truncated_wav_decodes_the_part_present(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, _tone(16000, seconds=2.0), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + 16000 * 2 + 1])  # header + 1 s + half a sample

    assert probe(path).duration_s == pytest.approx(1.0, abs=0.02)
    out = _decode(path)
    assert len(out) / 16000 == pytest.approx(1.0, abs=0.02)
    assert _dominant_hz(out, 16000) == pytest.approx(TONE_HZ, abs=2.0)


def test_truncated_flac_keeps_what_decoded_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # libsndfile raises part-way through a cut flac ("decoder lost sync").
    path = tmp_path / "cut.flac"
    tone = _tone(16000, seconds=4.0)
    sf.write(path, tone, 16000, format="FLAC", subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with caplog.at_level(logging.WARNING, logger="voxloop.voice.audio_file"):
        out = _decode(path)

    assert 1.5 < len(out) / 16000 <= 2.1
    np.testing.assert_allclose(out, tone[: len(out)], atol=1e-3)  # no garbage at the cut
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()


def wav_claiming(rate: int, channels: int, payload: int = 200_000, bits: int = 16) -> bytes:
    """A PCM WAV whose header says ``rate`` and ``channels`` over ``payload`` zero bytes."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block & 0xFFFFFFFF, block & 0xFFFF, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", payload) + bytes(payload)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def flac_claiming(frames: int) -> Callable[[Path], Path]:
    """A FLAC of 1 s of silence whose STREAMINFO says ``frames`` samples (36 bits)."""

    def make(tmp: Path) -> Path:
        path = tmp / "long.flac"
        sf.write(path, np.zeros(16000, dtype=np.float32), 16000, format="FLAC", subtype="PCM_16")
        data = bytearray(path.read_bytes())
        at = 8 + 10  # "fLaC", the block header, then min/max block and frame sizes
        packed = int.from_bytes(data[at : at + 8], "big") & ~((1 << 36) - 1) | frames
        data[at : at + 8] = packed.to_bytes(8, "big")
        path.write_bytes(bytes(data))
        return path

    return make


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return make


def _empty_wav(tmp: Path) -> Path:
    path = tmp / "silent.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)  # a valid header, 0 frames
    return path


# case -> (make the file in tmp_path, the reason the message must give)
BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (lambda tmp: tmp / "nope.wav", "no such file"),
    "directory": (lambda tmp: tmp, "is a directory"),
    "empty": (_write("empty.wav", b""), "the file is empty (0 bytes)"),
    # Fixed first bytes so the noise cannot pass for an MPEG sync word by chance.
    "random bytes": (
        _write("noise.wav", b"\x00\x01" + np.random.default_rng(0).bytes(4000)),
        "cannot decode: not an audio file soundfile understands (wav, flac, ogg, mp3, aiff)",
    ),
    "text": (
        _write("notes.wav", b"hello\n" * 50),
        "cannot decode: not an audio file soundfile understands (wav, flac, ogg, mp3, aiff)",
    ),
    "mp4 named wav": (
        _write("phone.wav", b"\x00\x00\x00\x20ftypM4A " + bytes(200)),
        "cannot decode: an MP4/M4A (AAC) file, which libsndfile does not read",
    ),
    "broken mp3 named wav": (
        _write("voice.wav", b"\xff\xfb\x90\x00" + bytes(3000)),
        "cannot decode: an MP3 stream that libsndfile could not decode",
    ),
    "no audio": (_empty_wav, "the file holds no audio"),
    # Headers that cannot be true are refused before a buffer is sized from them (the first
    # one used to end in a MemoryError: a 0.5 s block of 1024 channels at 2 GHz is 3.7 TiB).
    "200 KB at 2 GHz, 1024 channels": (
        _write("huge.wav", wav_claiming(2_000_000_000, 1024)),
        "the header says 2000000000 Hz, outside 1000 to 384000 Hz",
    ),
    "rate above 384 kHz": (_write("fast.wav", wav_claiming(768_000, 1)), "the header says 768000 Hz, outside"),
    "rate below 1 kHz": (_write("slow.wav", wav_claiming(100, 1)), "the header says 100 Hz, outside 1000 to 384000 Hz"),
    "33 channels": (_write("wide.wav", wav_claiming(16000, 33)), "the header says 33 channels, more than 32"),
    "flac claiming 2^36 frames": (
        flac_claiming((1 << 36) - 1),
        "the header says 68719476735 frames of 1 channel(s), more than its",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_raises_one_line_naming_file_and_reason(tmp_path: Path, case: str) -> None:
    make, reason = BAD_FILES[case]
    path = make(tmp_path)

    for call in (probe, iter_audio):
        with pytest.raises(AudioFileError) as caught:
            call(path)  # iter_audio checks at the call, not at the first block
        message = str(caught.value)
        assert message.startswith(f"{path}: ")
        assert reason in message and reason in caught.value.reason
        assert caught.value.path == path
        assert "\n" not in message
        assert caught.value.hint and message.endswith(caught.value.hint)  # what to do


@pytest.mark.parametrize(("rate", "channels"), [(384_000, 1), (8000, 32), (1000, 2)])
def test_the_limits_themselves_are_accepted(tmp_path: Path, rate: int, channels: int) -> None:
    path = tmp_path / "edge.wav"
    path.write_bytes(wav_claiming(rate, channels, payload=channels * 2 * 100))

    info = probe(path)

    assert (info.sample_rate, info.channels, info.frames) == (rate, channels, 100)


def test_uncompressed_frames_beyond_the_file_size_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # libsndfile clamps the PCM formats' counts to the file itself; this guards a reader that
    # would not (the check is on what libsndfile reports).
    path = tmp_path / "short.wav"
    sf.write(path, _tone(16000, seconds=0.1), 16000, subtype="PCM_24")
    size = path.stat().st_size

    class Claiming(sf.SoundFile):
        @property
        def frames(self) -> int:
            return size // 3 + 1

    monkeypatch.setattr(audio_file.sf, "SoundFile", Claiming)
    with pytest.raises(AudioFileError, match=rf"the header says {size // 3 + 1} frames of 1 channel\(s\), more than its {size} bytes can hold"):
        probe(path)
    monkeypatch.undo()
    assert probe(path).frames == 1600


def test_long_silence_in_flac_is_not_mistaken_for_a_false_header(tmp_path: Path) -> None:
    path = tmp_path / "quiet.flac"
    with sf.SoundFile(path, "w", 16000, 1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(60):
            f.write(np.zeros(16000 * 10, dtype=np.float32))  # ten minutes of digital silence

    assert probe(path).duration_s == pytest.approx(600.0)


def test_ten_minute_file_streams_in_bounded_blocks(tmp_path: Path) -> None:
    rate, minutes = 8000, 10
    path = tmp_path / "long.wav"
    chunk = float_to_int16(_tone(rate, seconds=60.0))
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        for _ in range(minutes):
            f.write(chunk)

    total, biggest = 0, 0
    tracemalloc.start()
    try:
        for block in iter_audio(path, target_rate=16000, block_s=0.5):
            total += len(block)
            biggest = max(biggest, len(block))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert total / 16000 == pytest.approx(minutes * 60, abs=0.02)
    assert biggest <= 1.1 * 8000  # 0.5 s at 16 kHz; soxr hands out its output a bit unevenly
    whole = minutes * 60 * 16000 * 4  # the decoded file as float32: 38 MB
    assert peak < whole / 20


def test_probe_reports_the_header() -> None:
    info = probe(DATA / "what_time_is_it.wav")

    assert info == AudioFileInfo(
        path=DATA / "what_time_is_it.wav",
        sample_rate=16000,
        channels=1,
        frames=32000,
        duration_s=2.0,
        format="WAV",
        subtype="PCM_16",
    )


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="target_rate"):
        iter_audio(DATA / "what_time_is_it.wav", target_rate=0)
    with pytest.raises(ValueError, match="block_s"):
        iter_audio(DATA / "what_time_is_it.wav", block_s=0)


def test_int16_conversions_clip_instead_of_wrapping() -> None:
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(
        float_to_int16(x), np.array([-32767, -32767, -16384, 0, 16384, 32767, 32767], np.int16)
    )
    assert float_to_int16(x).dtype == np.int16

    wide = np.array([-40000, -32768, 0, 16384, 32767, 40000], dtype=np.int32)
    y = int16_to_float(wide)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [-1.0, -1.0, 0.0, 0.5, 32767 / 32768, 32767 / 32768])

    tone = _tone(16000)
    np.testing.assert_allclose(int16_to_float(float_to_int16(tone)), tone, atol=1 / 32768 * 1.5)
