"""Read audio files as a stream of 16 kHz float32 mono blocks.

``probe`` checks a file before anything else runs (so a bad replay input fails up front with
the path and what to do), its header included: a rate above 384 kHz or below 1 kHz, more than
32 channels, or more frames than the file's bytes can hold is a damaged or hostile header, and
is refused before a buffer is sized from it. ``iter_audio`` then streams it block by block through libsndfile
(wav in any PCM/float/µ-law/A-law encoding, flac, ogg/vorbis, mp3, aiff, ...), mixes it to
mono and resamples it with soxr, so a multi-hour file keeps memory flat.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from soundfile import (  # cffi handles, private but stable since 0.8: see _read_block
    _ffi,
    _snd,
)
from voxloop.voice.errors import AudioFileError

logger = logging.getLogger(__name__)

_CONVERT_HINT = "Convert it with ffmpeg -i IN -ar 16000 OUT.wav"
_READABLE = "wav, flac, ogg, mp3, aiff"

# libsndfile reports SF_COUNT_MAX (or thereabouts) when it cannot know the length.
_UNKNOWN_FRAMES_ABOVE = 2**62

MAX_SAMPLE_RATE = 384_000
"""Hertz: the fastest rate audio interfaces record at (DXD is 352.8 kHz)."""
MIN_SAMPLE_RATE = 1_000
"""Hertz: nothing slower holds speech (telephone audio is 8 kHz)."""
MAX_CHANNELS = 32
"""More than a recording interface or a surround mix has."""

_BYTES_PER_SAMPLE = {
    "PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
    "FLOAT": 4, "DOUBLE": 8, "IMA_ADPCM": 0.5, "MS_ADPCM": 0.5, "VOX_ADPCM": 0.5,
    "G721_32": 0.5, "G723_24": 0.375, "G723_40": 0.625, "NMS_ADPCM_16": 0.25,
    "NMS_ADPCM_24": 0.375, "NMS_ADPCM_32": 0.5,
}  # fmt: skip
"""Bytes each sample takes at the least, for the encodings whose size follows from the length."""
_COMPRESSED_CONTAINERS = ("FLAC", "OGG", "MPEG")
"""Their subtype names a sample width (FLAC's "PCM_16") that the stored bytes do not have."""
_MAX_SAMPLES_PER_BYTE = 65536
"""For the rest (FLAC, Vorbis, Opus, MP3...): no codec libsndfile reads packs more (FLAC, the
tightest, needs some ten bytes for a block of at most 65535 samples of silence)."""

# soxr 'HQ' is 20-bit precision with a flat passband to ~91% of Nyquist: far below what
# 16-bit audio or an ASR can resolve. 'VHQ' (28-bit) only costs CPU on a small board.
_RESAMPLE_QUALITY = "HQ"


@dataclass(frozen=True)
class AudioFileInfo:
    path: Path
    sample_rate: int
    """Hertz, as stored in the file."""
    channels: int
    frames: int
    """Samples per channel; approximate for mp3 (from its header), -1 when unknown."""
    duration_s: float
    """Seconds; -1.0 when ``frames`` is unknown."""
    format: str
    """libsndfile's container name: ``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``, ``"AIFF"``..."""
    subtype: str
    """libsndfile's encoding name: ``"PCM_16"``, ``"FLOAT"``, ``"ULAW"``, ``"VORBIS"``..."""


def probe(path: Path | str) -> AudioFileInfo:
    """Check that ``path`` is a decodable file that holds audio, or raise AudioFileError."""
    p = Path(path)
    _check_path(p)
    # libmpg123 prints "Illegal Audio-MPEG-Header" notes straight to fd 2 while libsndfile
    # tries a non-audio file as MP3; the user gets our one line instead.
    with _c_stderr_silenced(), _open(p) as f:
        frames = f.frames
        if frames >= _UNKNOWN_FRAMES_ABOVE or frames < 0:
            frames = -1
        _check_header(p, f, frames)
        if frames <= 0:
            # A zero or unknown length is only trusted after trying to read something.
            if not _try_read(p, f):
                raise AudioFileError(p, "the file holds no audio", "Record or export it again")
            frames = -1
        return AudioFileInfo(
            path=p,
            sample_rate=f.samplerate,
            channels=f.channels,
            frames=frames,
            duration_s=frames / f.samplerate if frames >= 0 else -1.0,
            format=f.format,
            subtype=f.subtype,
        )


def iter_audio(
    path: Path | str, target_rate: int = 16000, block_s: float = 0.5
) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks in [-1, 1] at ``target_rate`` Hz, about ``block_s`` long.

    The file is probed here, before the first block is asked for, so a bad file raises
    AudioFileError at the call. A file cut short decodes up to the damage (one warning).
    """
    if target_rate <= 0:
        raise ValueError(f"target_rate must be positive Hz, got {target_rate}")
    if block_s <= 0:
        raise ValueError(f"block_s must be positive seconds, got {block_s}")
    info = probe(path)
    return _stream(info, target_rate, block_s)


def float_to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] to int16; out-of-range values clip instead of wrapping around."""
    scaled = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0) * 32767.0
    return np.rint(scaled).astype(np.int16)


def int16_to_float(x: np.ndarray) -> np.ndarray:
    """int16 (or wider ints holding int16 values) to float32 in [-1, 1]; wider values clip."""
    clipped = np.clip(np.asarray(x), -32768, 32767)
    return clipped.astype(np.float32) / np.float32(32768.0)


def _stream(info: AudioFileInfo, target_rate: int, block_s: float) -> Iterator[np.ndarray]:
    p = info.path
    with _open(p) as f:
        block = max(1, round(block_s * f.samplerate))
        buf = np.empty((block, f.channels), dtype=np.float32)
        resampler = (
            None
            if f.samplerate == target_rate
            else soxr.ResampleStream(
                f.samplerate, target_rate, 1, dtype="float32", quality=_RESAMPLE_QUALITY
            )
        )
        done = 0
        while True:
            n, damaged = _read_block(f, buf)
            done += n
            if n:
                mono = buf[:n].mean(axis=1, dtype=np.float32)
                out = mono if resampler is None else resampler.resample_chunk(mono)
                if out.size:
                    # Float files may exceed full scale and resampling overshoots on clips.
                    yield np.clip(out, -1.0, 1.0)
            if damaged is not None:
                logger.warning(
                    "%s: decoding stopped at %.2f s (%s); the rest of the file is damaged "
                    "or missing, using what was read",
                    p,
                    done / f.samplerate,
                    damaged,
                )
            if n < block or damaged is not None:
                break
        if resampler is not None:
            # Flush the filter's delay line, or the last few milliseconds are lost.
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                yield np.clip(tail, -1.0, 1.0)


def _read_block(f: sf.SoundFile, buf: np.ndarray) -> tuple[int, str | None]:
    """Fill ``buf`` straight from libsndfile; return the frames read and, if decoding failed
    part-way (e.g. "flac decoder lost sync" on a cut file), why.

    Not ``SoundFile.read``: it seeks to "start + n" after every block and stops at the header's
    frame count. For mp3 both go wrong: libsndfile re-seeks through mpg123, which lands off by
    whole frames on files with an inexact Xing header (chunks of silence in mp3s that libsndfile
    itself writes), and the header count is only an estimate. Reading on needs no seek at all.
    """
    ptr = _ffi.cast("float *", buf.ctypes.data)
    n = max(0, int(_snd.sf_readf_float(f._file, ptr, len(buf))))
    code = int(_snd.sf_error(f._file))
    if code == 0:
        return n, None
    return n, _libsndfile_reason(sf.LibsndfileError(code))


def _try_read(p: Path, f: sf.SoundFile) -> bool:
    n, damaged = _read_block(f, np.empty((1, f.channels), dtype=np.float32))
    if damaged is not None and n == 0:
        raise AudioFileError(p, f"cannot decode: {damaged}", _CONVERT_HINT)
    return n > 0


def _check_header(p: Path, f: sf.SoundFile, frames: int) -> None:
    """Refuse a header that cannot be true: buffers and the resampler are sized from it."""
    hint = "Record or export it again; its header is damaged or was not written by an audio program"
    if not MIN_SAMPLE_RATE <= f.samplerate <= MAX_SAMPLE_RATE:
        raise AudioFileError(p, f"the header says {f.samplerate} Hz, outside {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz", hint)
    if not 1 <= f.channels <= MAX_CHANNELS:
        raise AudioFileError(p, f"the header says {f.channels} channels, more than {MAX_CHANNELS}", hint)
    if frames <= 0:
        return
    size = p.stat().st_size
    width = _BYTES_PER_SAMPLE.get(f.subtype)
    if width is not None and f.format not in _COMPRESSED_CONTAINERS:
        fits = frames * f.channels * width <= size
    else:
        fits = frames <= size * _MAX_SAMPLES_PER_BYTE
    if not fits:
        raise AudioFileError(p, f"the header says {frames} frames of {f.channels} channel(s), more than its {size} bytes can hold", hint)


def _check_path(p: Path) -> None:
    if not p.exists():
        raise AudioFileError(p, "no such file", "Check the path and spelling")
    if p.is_dir():
        raise AudioFileError(p, "is a directory, not an audio file", "Name a file inside it")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise AudioFileError(p, f"cannot read: {e.strerror}", "Check its permissions") from e
    if size == 0:
        raise AudioFileError(
            p, "the file is empty (0 bytes)", "Record or copy it again; the copy may have failed"
        )


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open(p: Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(p)
    except OSError as e:  # permission denied, vanished since the check, ...
        raise AudioFileError(p, f"cannot read: {e.strerror}", "Check its permissions") from e
    except RuntimeError as e:  # soundfile.LibsndfileError: libsndfile cannot open it
        raise AudioFileError(p, f"cannot decode: {_undecodable_reason(p, e)}", _CONVERT_HINT) from e


def _undecodable_reason(p: Path, e: RuntimeError) -> str:
    try:
        with p.open("rb") as fh:
            head = fh.read(12)
    except OSError:
        head = b""
    kind = _sniff(head)
    if kind is None:
        return f"not an audio file soundfile understands ({_READABLE})"
    detail = _libsndfile_reason(e)
    # libsndfile says this when a codec (e.g. mpg123) rejects the stream: misleading here.
    if detail.startswith("File does not exist"):
        return kind
    return f"{kind} ({detail})"


def _sniff(head: bytes) -> str | None:
    """Say what the file really is from its first bytes, for the error message only."""
    mpeg_sync = len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    if mpeg_sync and head[1] & 0x06 == 0:  # "layer 0": ADTS, i.e. AAC
        return "raw AAC (ADTS), which libsndfile does not read"
    if mpeg_sync or head.startswith(b"ID3"):
        return "an MP3 stream that libsndfile could not decode"
    if head[4:8] == b"ftyp":
        return "an MP4/M4A (AAC) file, which libsndfile does not read"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "a WebM/Matroska file, which libsndfile does not read"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "a WAV file with a damaged header or an encoding libsndfile lacks"
    if head.startswith(b"OggS"):
        return "an Ogg file that is damaged or in a codec libsndfile lacks"
    if head.startswith(b"fLaC"):
        return "a damaged FLAC file"
    if head.startswith(b"FORM"):
        return "a damaged AIFF file"
    return None


def _libsndfile_reason(e: BaseException) -> str:
    # LibsndfileError.error_string is libsndfile's own text, without soundfile's file prefix.
    text = str(getattr(e, "error_string", "") or e).strip().rstrip(".")
    text = text.removeprefix("Error :").strip()
    return text or "libsndfile gave no reason"
