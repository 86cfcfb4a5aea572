"""``voxloop devices``, ``voxloop doctor`` and device choice on a real PulseAudio server; and
what every command does when the PortAudio library is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pulse_rig
import pytest
from pulse_rig import DATA, PulseServer

TIMEOUT_S = 120

pulse = pulse_rig.pulse  # the fixtures, shared with the other live test modules


def voxloop(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxloop.pipeline.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S, check=False,
    )  # fmt: skip


def test_devices_lists_the_servers_devices_and_marks_the_defaults(pulse: PulseServer, tmp_path: Path) -> None:
    done = voxloop("devices", env=pulse.env(home=tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert rows[0].split() == ["index", "name", "host", "API", "in", "out", "default", "rate"]
    names = {row.split()[1]: row for row in rows[1:]}
    assert {"pulse", "vmic", "vspk", "default"} <= set(names)
    assert "default input" in names["default"] and "default output" in names["default"]
    assert "ALSA" in names["vmic"] and " Hz" in names["vmic"]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--input-device", "v"], ["ambiguous", "vmic", "vspk"]),
        (["--output-device", "no-such-speaker"], ["'no-such-speaker'", "no speaker", "vspk"]),
        (["--input-device", "99"], ["no device with that index"]),
    ],
)
def test_a_bad_device_choice_is_one_line_listing_the_candidates(
    pulse: PulseServer, tmp_path: Path, flags: list[str], says: list[str]
) -> None:
    done = voxloop("chat", "--plain", *flags, env=pulse.env(home=tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert all(s in line for s in says), line
    assert done.stdout == ""


def test_doctor_checks_everything_with_a_named_device(pulse: PulseServer, tmp_path: Path) -> None:
    done = voxloop("doctor", "--input-device", "VMIC", "--output-device", "vspk", env=pulse.env(home=tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    by_name = {line.split(":")[0].split(None, 1)[1]: line for line in lines[:-1]}
    assert set(by_name) == {"PortAudio", "microphone", "speaker", "model files", "language model", "models load", "memory", "cpu"}
    # the suite's models folder is empty: auto says it takes the bundled model, and why
    assert "smollm2-135m (auto: the largest installed model; needs ~0.6 GB" in by_name["language model"]
    assert "[1] vmic (ALSA) at 44100 Hz (resampled to 16000 Hz)" in by_name["microphone"]
    assert "vspk" in by_name["speaker"]
    assert "threads: asr 2, llm 2, tts 1" in by_name["cpu"]
    assert all(line.startswith(("ok", "warn")) for line in lines[:-1]), done.stdout
    assert lines[-1].startswith("8/8 checks passed")


# --- no PortAudio ----------------------------------------------------------------------------


@pytest.fixture
def no_portaudio(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``import sounddevice`` fails as it does without libportaudio2."""
    fake = tmp_path / "no_portaudio"
    fake.mkdir()
    (fake / "sounddevice.py").write_text('raise OSError("PortAudio library not found")\n')
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")]))}
    return env


@pytest.mark.parametrize("command", [["devices"], ["chat"], ["chat", "--plain"]])
def test_without_portaudio_one_line_names_the_package(no_portaudio: dict[str, str], tmp_path: Path, command: list[str]) -> None:
    done = voxloop(*command, env=no_portaudio, cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "PortAudio library not found" in line and "libportaudio2" in line and "apt-get install" in line


def test_doctor_without_portaudio_says_what_to_install(no_portaudio: dict[str, str], tmp_path: Path) -> None:
    done = voxloop("doctor", env=no_portaudio, cwd=tmp_path)
    assert done.returncode == 1
    [portaudio] = [line for line in done.stdout.splitlines() if "PortAudio:" in line]
    assert portaudio.startswith("FAIL") and "sudo apt-get install libportaudio2" in portaudio
    assert "Traceback" not in done.stderr


def test_replay_works_without_portaudio(no_portaudio: dict[str, str], tmp_path: Path) -> None:
    done = voxloop("replay", str(DATA / "what_time_is_it.wav"), "--fast", "--out-dir", str(tmp_path / "out"), env=no_portaudio, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "conversation.wav").exists()
    assert "vox" in done.stdout
