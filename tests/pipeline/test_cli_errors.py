"""``voxloop replay`` on bad input: one clear line on stderr, exit code 2, no traceback, no folder.

Each case runs the real command in a subprocess, in an empty working folder, with ``HOME``
pointed there so no user config is read. The line must say what is wrong, name the file, and
say what to do; nothing may be created in the output folder (the default ``<stem>.voxloop``
in the working folder, or the ``--out-dir`` given).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

DATA = Path(__file__).parents[1] / "data"
SPEECH = DATA / "what_time_is_it.wav"
TIMEOUT_S = 60


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["HOME"] = str(cwd)
    env.pop("XDG_CONFIG_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "voxloop.pipeline.cli", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TIMEOUT_S,
    )


@dataclass(frozen=True)
class BadCase:
    make: Callable[[Path], list[str]]
    """Builds the files in the working folder; returns the arguments after ``replay``."""
    offending: str
    """The file name the error line must contain."""
    what: str
    """A phrase saying what is wrong."""
    todo: str
    """A phrase saying what to do."""


# --- bad replay inputs --------------------------------------------------------------------


def _missing(tmp: Path) -> list[str]:
    return [str(tmp / "missing.wav")]


def _directory(tmp: Path) -> list[str]:
    (tmp / "recordings").mkdir()
    return [str(tmp / "recordings")]


def _empty(tmp: Path) -> list[str]:
    (tmp / "empty.wav").write_bytes(b"")
    return [str(tmp / "empty.wav")]


def _random_bytes(tmp: Path) -> list[str]:
    (tmp / "x.wav").write_bytes(
        np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    )
    return [str(tmp / "x.wav")]


def _zero_samples(tmp: Path) -> list[str]:
    sf.write(tmp / "silent.wav", np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    assert (tmp / "silent.wav").stat().st_size > 0  # a real header, just no samples
    return [str(tmp / "silent.wav")]


def _absurd_header(tmp: Path) -> list[str]:
    """200 KB whose header claims 2 GHz and 1024 channels (it used to end in a MemoryError)."""
    import struct

    rate, channels, payload = 2_000_000_000, 1024, 200_000
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2 & 0xFFFFFFFF, channels * 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", payload) + bytes(payload)
    (tmp / "huge.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return [str(tmp / "huge.wav")]


def _text_as_mp3(tmp: Path) -> list[str]:
    (tmp / "x.mp3").write_text(
        "This is not an mp3, just some notes.\n" * 20, encoding="utf-8"
    )
    return [str(tmp / "x.mp3")]


# --- bad models and configs (the input itself is fine) -------------------------------------


def _asr_missing(tmp: Path) -> list[str]:
    return [
        str(SPEECH),
        "--out-dir",
        str(tmp / "out"),
        "--asr-model",
        str(tmp / "no-such-whisper"),
    ]


def _llm_text_gguf(tmp: Path) -> list[str]:
    (tmp / "bad.gguf").write_text("not a model\n" * 100, encoding="utf-8")
    return [
        str(SPEECH),
        "--out-dir",
        str(tmp / "out"),
        "--llm-model",
        str(tmp / "bad.gguf"),
    ]


def _llm_missing(tmp: Path) -> list[str]:
    return [
        str(SPEECH),
        "--out-dir",
        str(tmp / "out"),
        "--llm-model",
        str(tmp / "no-such-model.gguf"),
    ]


def _voice_without_json(tmp: Path) -> list[str]:
    (tmp / "lonely.onnx").write_bytes(
        np.random.default_rng(3).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    )
    return [
        str(SPEECH),
        "--out-dir",
        str(tmp / "out"),
        "--voice",
        str(tmp / "lonely.onnx"),
    ]


def _config_bad_toml(tmp: Path) -> list[str]:
    (tmp / "broken.toml").write_text('[models\nasr = "tiny.en\n', encoding="utf-8")
    return [str(SPEECH), "--config", str(tmp / "broken.toml")]


def _config_unknown_section(tmp: Path) -> list[str]:
    (tmp / "extra.toml").write_text(
        '[models]\nasr = "tiny.en"\n\n[speakers]\nvolume = 3\n', encoding="utf-8"
    )
    return [
        str(SPEECH),
        "--out-dir",
        str(tmp / "out"),
        "--config",
        str(tmp / "extra.toml"),
    ]


def _config_missing(tmp: Path) -> list[str]:
    return [str(SPEECH), "--config", str(tmp / "nowhere.toml")]


BAD_CASES = {
    # replay input
    "input-missing": BadCase(_missing, "missing.wav", "no such file", "Check the path"),
    "input-directory": BadCase(
        _directory, "recordings", "directory", "Name a file inside it"
    ),
    "input-empty": BadCase(_empty, "empty.wav", "empty", "again"),
    "input-random-bytes-wav": BadCase(
        _random_bytes, "x.wav", "cannot decode", "ffmpeg"
    ),
    "input-wav-zero-samples": BadCase(_zero_samples, "silent.wav", "no audio", "again"),
    "input-text-as-mp3": BadCase(_text_as_mp3, "x.mp3", "cannot decode", "ffmpeg"),
    "input-absurd-header": BadCase(_absurd_header, "huge.wav", "the header says 2000000000 Hz", "Record or export it again"),
    # models and config
    "asr-model-missing": BadCase(
        _asr_missing,
        "no-such-whisper",
        "no such speech recognition model",
        "--asr-model",
    ),
    "llm-model-text-gguf": BadCase(
        _llm_text_gguf, "bad.gguf", "not a GGUF file", "--llm-model"
    ),
    "llm-model-missing": BadCase(
        _llm_missing, "no-such-model.gguf", "no such language model", "--llm-model"
    ),
    "voice-without-json": BadCase(
        _voice_without_json, "lonely.onnx", ".onnx.json", "--voice"
    ),
    "config-bad-toml": BadCase(
        _config_bad_toml, "broken.toml", "not valid TOML", "--config"
    ),
    "config-unknown-section": BadCase(
        _config_unknown_section, "extra.toml", "unknown section", "known:"
    ),
    "config-missing": BadCase(
        _config_missing, "nowhere.toml", "no such config file", "--config"
    ),
}

def _params() -> list[object]:
    return [
        pytest.param(case, id=name) for name, case in BAD_CASES.items()
    ]


def _output_folders(cwd: Path) -> list[Path]:
    return sorted(cwd.glob("*.voxloop*"))


@pytest.mark.parametrize("case", _params())
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    case: BadCase, tmp_path: Path
) -> None:
    args = case.make(tmp_path)
    before = set(tmp_path.iterdir())

    proc = run_cli(["replay", *args], tmp_path)

    report = f"exit {proc.returncode}\n--- stderr ---\n{proc.stderr}--- stdout ---\n{proc.stdout}"
    assert proc.returncode == 2, report
    assert "Traceback" not in proc.stderr, report
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), report
    line = lines[0]
    assert line.startswith("voxloop: "), report
    assert case.offending in line, report
    assert case.what in line, report
    assert case.todo in line, report
    assert proc.stdout == "", report
    # nothing half-written: no default folder, no --out-dir, nothing new at all
    assert _output_folders(tmp_path) == [], report
    assert not (tmp_path / "out").exists(), report
    assert set(tmp_path.iterdir()) == before, report


# --- a cut-short WAV is usable, not an error ------------------------------------------------


@pytest.mark.models
def test_truncated_wav_replays_what_is_there(tmp_path: Path) -> None:
    rate = 16000
    t = np.arange(2 * rate) / rate
    wav = tmp_path / "cut.wav"
    sf.write(
        wav,
        (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        rate,
        subtype="PCM_16",
    )
    size = wav.stat().st_size
    with open(wav, "r+b") as f:
        f.truncate(size // 2)
    head = wav.read_bytes()
    data_at = head.index(b"data") + 8
    claimed = int.from_bytes(head[data_at - 4 : data_at], "little")
    assert (
        claimed == 2 * rate * 2 > len(head) - data_at
    )  # the header still claims two seconds
    out = tmp_path / "OUT"

    proc = run_cli(["replay", str(wav), "--fast", "--out-dir", str(out)], tmp_path)

    report = f"exit {proc.returncode}\n--- stderr ---\n{proc.stderr}--- stdout ---\n{proc.stdout}"
    assert proc.returncode == 0, report
    assert "Traceback" not in proc.stderr, report
    assert (out / "conversation.wav").is_file(), report
    assert (out / "turns.jsonl").is_file(), report


# --- help ----------------------------------------------------------------------------------


VOXLOOP = Path(sys.executable).with_name("voxloop")
"""The installed console script (``voxloop.pipeline.cli:main``)."""

@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--help"], id="voxloop"),
        pytest.param(["replay", "--help"], id="replay"),
    ],
)
def test_help_mentions_the_main_flags(args: list[str], tmp_path: Path) -> None:
    env = dict(os.environ, HOME=str(tmp_path))
    proc = subprocess.run(
        [str(VOXLOOP), *args],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for flag in ("--fast", "--out-dir", "--llm-url"):
        assert flag in proc.stdout, (
            f"{flag} missing from `voxloop {' '.join(args)}`:\n{proc.stdout}"
        )


def test_chat_without_any_audio_device_says_so_in_one_line(tmp_path: Path) -> None:
    sd = pytest.importorskip("sounddevice")
    if len(sd.query_devices()):
        pytest.skip("this machine has audio devices; the no-device message cannot be exercised")
    done = subprocess.run(
        [sys.executable, "-m", "voxloop.pipeline.cli", "chat"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no audio devices" in lines[0] and "Traceback" not in done.stderr


def _corrupt_asr(tmp: Path) -> list[str]:
    from voxloop.models.registry import resolve_asr

    folder = tmp / "asr"
    folder.mkdir()
    for f in resolve_asr(None).iterdir():
        if f.name != "model.bin":
            (folder / f.name).write_bytes(f.read_bytes())
    (folder / "model.bin").write_bytes(np.random.default_rng(1).bytes(2_000_000))
    return ["--asr-model", str(folder)]


def _corrupt_gguf(tmp: Path) -> list[str]:
    path = tmp / "garbage.gguf"
    path.write_bytes(b"GGUF" + np.random.default_rng(2).bytes(3_000_000))
    return ["--llm-model", str(path)]


def _corrupt_voice(tmp: Path) -> list[str]:
    from voxloop.models.registry import resolve_voice

    model = tmp / "voice.onnx"
    model.write_bytes(np.random.default_rng(3).bytes(300_000))
    (tmp / "voice.onnx.json").write_bytes(resolve_voice(None).config.read_bytes())
    return ["--voice", str(model)]


@pytest.mark.parametrize("corrupt", [_corrupt_asr, _corrupt_gguf, _corrupt_voice], ids=["model.bin", "gguf", "onnx"])
def test_a_corrupt_model_that_passes_the_quick_checks_fails_at_load_in_one_line(
    tmp_path: Path, corrupt: Callable[[Path], list[str]]
) -> None:
    flags = corrupt(tmp_path)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "voxloop.pipeline.cli", "replay", str(SPEECH), "--fast", "--out-dir", str(out), *flags],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert flags[1] in lines[0] and "cannot load it" in lines[0] and "force-reinstall" in lines[0]
    assert "Traceback" not in done.stderr
    assert not out.exists()
