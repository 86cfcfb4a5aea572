"""Choosing devices, rates and channels, and counting xruns by the clock: pure functions."""

from __future__ import annotations

import pytest
from voxloop.voice.devices import (
    ClockXrunCounter,
    DeviceError,
    DeviceInfo,
    choose_channels,
    choose_rate,
    format_device_table,
    parse_device_spec,
    select_device,
)

LAPTOP = [
    DeviceInfo(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", "ALSA", 2, 2, 48000.0),
    DeviceInfo(1, "USB Audio Headset: - (hw:1,0)", "ALSA", 1, 2, 44100.0),
    DeviceInfo(2, "USB Audio Webcam: - (hw:2,0)", "ALSA", 4, 0, 16000.0),
    DeviceInfo(3, "HDMI 0 (hw:0,3)", "ALSA", 0, 8, 48000.0),
    DeviceInfo(4, "pulse", "ALSA", 32, 32, 44100.0),
    DeviceInfo(5, "pulse monitor", "ALSA", 32, 0, 44100.0),
    DeviceInfo(6, "default", "ALSA", 32, 32, 44100.0, default_input=True, default_output=True),
]


def test_no_choice_is_the_default_device() -> None:
    assert select_device(LAPTOP, None, "input").name == "default"
    assert select_device(LAPTOP, None, "output").name == "default"


def test_without_a_marked_default_the_first_usable_device() -> None:
    devices = [d for d in LAPTOP if d.name != "default"]
    assert select_device(devices, None, "input").index == 0
    assert select_device(devices[3:], None, "output").index == 3


@pytest.mark.parametrize(("spec", "kind", "index"), [
    (1, "input", 1), ("1", "output", 1), ("headset", "input", 1), ("HEADSET", "output", 1),
    ("webcam", "input", 2), ("hdmi", "output", 3),
    ("usb audio", "output", 1),  # two USB devices, but only the headset plays
    ("pulse", "input", 4),  # exact name beats "pulse monitor"
    ("monitor", "input", 5),
])  # fmt: skip
def test_an_index_or_a_case_insensitive_part_of_the_name(spec: str | int, kind: str, index: int) -> None:
    assert select_device(LAPTOP, parse_device_spec(spec), kind).index == index  # type: ignore[arg-type]


def test_an_ambiguous_name_lists_the_candidates() -> None:
    with pytest.raises(DeviceError) as e:
        select_device(LAPTOP, "usb audio", "input")
    message = str(e.value)
    assert "ambiguous" in message and "--input-device" in message
    assert "[1] USB Audio Headset" in message and "[2] USB Audio Webcam" in message
    assert "HDA" not in message and "\n" not in message


def test_an_unknown_name_lists_the_devices_of_that_kind() -> None:
    with pytest.raises(DeviceError) as e:
        select_device(LAPTOP, "bluetooth", "output")
    message = str(e.value)
    assert "'bluetooth'" in message and "no speaker" in message and "--output-device" in message
    assert "[3] HDMI 0" in message and "Webcam" not in message  # the webcam has no output


@pytest.mark.parametrize(("spec", "says"), [(9, "no device with that index"), (2, "has no output channels")])
def test_a_bad_index_says_why(spec: int, says: str) -> None:
    with pytest.raises(DeviceError, match=says):
        select_device(LAPTOP, spec, "output")


def test_no_device_of_a_kind() -> None:
    with pytest.raises(DeviceError, match="no microphone found"):
        select_device([LAPTOP[3]], None, "input")


def test_the_listing_marks_the_defaults() -> None:
    table = format_device_table(LAPTOP).splitlines()
    assert table[0].split()[:5] == ["index", "name", "host", "API", "in"]
    [default] = [row for row in table if "default input" in row]
    assert default.lstrip().startswith("6  default") and "default output" in default
    assert "48000 Hz" in table[1] and "ALSA" in table[1]


def test_the_default_rate_first_then_the_usual_ones() -> None:
    assert choose_rate(44100, lambda r: True) == 44100
    # A microphone that claims 16 kHz but only opens at 48 or 44.1 kHz.
    assert choose_rate(16000, lambda r: r in (44100, 48000)) == 48000
    with pytest.raises(DeviceError, match="none of"):
        choose_rate(48000, lambda r: False)


def test_mono_if_allowed_else_stereo_else_all_channels() -> None:
    assert choose_channels(32, lambda n: True) == 1
    assert choose_channels(2, lambda n: n == 2) == 2
    assert choose_channels(4, lambda n: n == 4) == 4
    with pytest.raises(DeviceError):
        choose_channels(2, lambda n: False)


RATE = 48000


def run_clock(counter: ClockXrunCounter, events: list[tuple[float, int]], tick_s: float = 0.25) -> int:
    """Feed (callback time, frames) events; ``update`` at ``tick_s`` with the latest callback."""
    frames = 0
    next_tick = tick_s
    last_t = 0.0
    for t, n in events:
        while t >= next_tick:
            counter.update(frames, last_t)
            next_tick += tick_s
        frames += n
        last_t = t
    counter.update(frames, last_t)
    counter.update(frames, last_t)
    return counter.count


def steady(seconds: float, block_s: float = 0.02, start: float = 0.0, jitter: float = 0.0, rate: int = RATE) -> list[tuple[float, int]]:
    import random

    rng = random.Random(1)
    n = int(seconds / block_s)
    return [(start + (i + 1) * block_s + rng.uniform(0, jitter), int(block_s * rate)) for i in range(n)]


def test_steady_callbacks_with_jitter_are_no_xrun() -> None:
    assert run_clock(ClockXrunCounter(RATE), steady(60, jitter=0.03)) == 0


def test_bursty_callbacks_are_no_xrun() -> None:
    # PulseAudio through ALSA often calls back two or three blocks at once.
    events = []
    for t, n in steady(30, block_s=0.06):
        events += [(t, n // 3)] * 3
    assert run_clock(ClockXrunCounter(RATE), events) == 0


def test_a_gap_of_lost_frames_is_one_xrun_each() -> None:
    events = steady(10) + steady(10, start=10.5) + steady(10, start=21.0)  # two 0.5 s holes
    assert run_clock(ClockXrunCounter(RATE), events) == 2


def test_a_late_burst_that_catches_up_is_no_xrun() -> None:
    # 150 ms without callbacks, then all the frames at once: nothing was lost.
    events = [e for e in steady(10) if not 5.0 < e[0] < 5.15] + [(5.15, int(0.15 * RATE))] + steady(5, start=10.0)
    events.sort()
    assert run_clock(ClockXrunCounter(RATE), events) == 0


def test_a_sound_card_clock_slightly_slow_is_no_xrun() -> None:
    # 300 ppm slow, for an hour: 1 s behind the wall clock by the end.
    assert run_clock(ClockXrunCounter(RATE), steady(3600, block_s=0.02 * 1.0003)) == 0
