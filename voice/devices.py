"""The real microphone and speaker, through PortAudio (sounddevice).

The callbacks run on PortAudio's thread and only copy: the microphone block is handed to the
event loop with ``call_soon_threadsafe`` (resampling happens there), the speaker pulls from the
``OutputBuffer``. Each device opens at a rate it supports; the pipeline's 16 kHz is reached
with soxr.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import soxr

from .audio_file import float_to_int16
from .playback import OutputBuffer

logger = logging.getLogger(__name__)


class DeviceError(Exception):
    """No usable audio device, or PortAudio is missing. ``str()`` is one line with a fix."""


def import_sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as e:  # "PortAudio library not found"
        raise DeviceError(
            f"PortAudio is not installed ({e}). Install it: sudo apt-get install libportaudio2"
        ) from None
    return sounddevice


def default_output_rate(device: int | str | None = None) -> int:
    sd = import_sounddevice()
    try:
        info = sd.query_devices(device, kind="output")
    except (ValueError, sd.PortAudioError) as e:
        raise DeviceError(f"no usable output device ({e}). Plug in speakers or headphones, or pick one with --output-device") from None
    return int(info["default_samplerate"])


class SoundDeviceDuplex:
    """Default (or chosen) microphone and speaker, opened as two streams."""

    def __init__(
        self,
        output: OutputBuffer,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        sample_rate: int = 16000,
        block_ms: int = 20,
    ) -> None:
        self.output = output
        self.input_device = input_device
        self.output_device = output_device
        self.sample_rate = sample_rate
        self.block_ms = block_ms
        self.input_overflows = 0
        self.output_underflows = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(
        self,
        on_input: Callable[[np.ndarray, float], None],
        settle: Callable[[], Awaitable[None]] | None,
        finished: Callable[[], bool],
    ) -> None:
        sd = import_sounddevice()
        loop = asyncio.get_running_loop()
        try:
            in_info = sd.query_devices(self.input_device, kind="input")
        except (ValueError, sd.PortAudioError) as e:
            raise DeviceError(f"no usable microphone ({e}). Plug one in, or pick one with --input-device") from None
        in_rate = int(in_info["default_samplerate"])
        resampler = soxr.ResampleStream(in_rate, self.sample_rate, 1, dtype="float32") if in_rate != self.sample_rate else None
        position = 0  # samples at the pipeline rate: the session timeline

        def deliver(block: np.ndarray) -> None:
            nonlocal position
            mono = block.mean(axis=1) if block.ndim == 2 else block
            if resampler is not None:
                mono = resampler.resample_chunk(mono)
            samples = float_to_int16(mono)
            on_input(samples, position / self.sample_rate)
            position += len(samples)

        def input_callback(indata: np.ndarray, frames: int, time: Any, status: Any) -> None:
            if status.input_overflow:
                self.input_overflows += 1
            loop.call_soon_threadsafe(deliver, indata.copy())

        def output_callback(outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
            if status.output_underflow:
                self.output_underflows += 1
            outdata[:, 0] = self.output.read(frames, at_s=position / self.sample_rate)

        with (
            sd.InputStream(
                device=self.input_device,
                samplerate=in_rate,
                channels=1,
                dtype="float32",
                blocksize=in_rate * self.block_ms // 1000,
                callback=input_callback,
            ),
            sd.OutputStream(
                device=self.output_device,
                samplerate=self.output.sample_rate,
                channels=1,
                dtype="int16",
                blocksize=self.output.sample_rate * self.block_ms // 1000,
                callback=output_callback,
            ),
        ):
            logger.info("listening on %s at %d Hz", in_info["name"], in_rate)
            await self._stop.wait()
