"""A virtual full-duplex sound card that plays a recording into the pipeline.

Each tick it does what a real duplex callback does: hand one block of "microphone" audio to
the pipeline and pull one block of speaker audio from the output buffer. The speaker block
pulled at tick k plays during block k+1 (one block of device latency, as on real hardware).
Both go into the conversation recording on one timeline.

The block playing during a microphone block is handed over with it as the echo canceller's
reference. With an ``EchoPathConfig`` the device also simulates the room: what plays is
delayed, attenuated (and reverberated) and added to the microphone block, clipped to int16,
before the pipeline sees it, so the conversation's left channel is what the microphone
picked up: the user plus the assistant's echo.

Paced mode ticks at audio rate on the wall clock, like a microphone. Fast mode ticks as soon
as the pipeline has settled (every queued frame processed), so a test replays a minute of
audio in the time the engines need, with the same turns and content.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np

from .audio_file import float_to_int16, iter_audio
from .echo_path import EchoPath, EchoPathConfig, mix_into
from .playback import OutputBuffer
from .recording import ConversationRecorder

logger = logging.getLogger(__name__)

InputHandler = Callable[[np.ndarray, float, "np.ndarray | None"], None]
"""Called with an int16 mono block, the timeline seconds where it starts, and the speaker
audio that played during it (the echo canceller's reference; same length and rate)."""


class ReplayDevice:
    def __init__(
        self,
        path: Path,
        output: OutputBuffer,
        recorder: ConversationRecorder | None = None,
        *,
        paced: bool = True,
        block_ms: int = 20,
        max_tail_s: float = 120.0,
        echo: EchoPathConfig | None = None,
    ) -> None:
        self.path = Path(path)
        self.output = output
        self.recorder = recorder
        self.paced = paced
        self.sample_rate = output.sample_rate
        self.block = self.sample_rate * block_ms // 1000
        self.max_tail_s = max_tail_s
        self.echo = EchoPath(echo, self.sample_rate) if echo is not None else None
        """The simulated room between the speaker and the microphone (None: no echo)."""
        self.input_exhausted = False
        self.ticks = 0
        self._stopped = False

    def stop(self) -> None:
        """End at the next tick, as if the recording had been unplugged."""
        self._stopped = True

    def _blocks(self) -> Iterator[np.ndarray]:
        pending = np.zeros(0, dtype=np.int16)
        for chunk in iter_audio(self.path, target_rate=self.sample_rate):
            pending = np.concatenate([pending, float_to_int16(chunk)])
            while len(pending) >= self.block:
                yield pending[: self.block]
                pending = pending[self.block :]
        if len(pending):
            yield np.concatenate([pending, np.zeros(self.block - len(pending), dtype=np.int16)])

    async def run(
        self,
        on_input: InputHandler,
        settle: Callable[[], Awaitable[None]] | None,
        finished: Callable[[], bool],
    ) -> None:
        """Tick until the input is exhausted and ``finished()`` says the pipeline is done."""
        loop = asyncio.get_running_loop()
        block_s = self.block / self.sample_rate
        silence = np.zeros(self.block, dtype=np.int16)
        speaker = silence
        blocks = self._blocks()
        t0 = loop.time()
        tail_ticks = 0
        k = 0
        while True:
            if self.paced:
                await asyncio.sleep(max(0.0, t0 + (k + 1) * block_s - loop.time()))
            elif settle is not None:
                await settle()
            if self._stopped:
                break
            mic = None if self.input_exhausted else next(blocks, None)
            if mic is None:
                self.input_exhausted = True
                if finished():
                    break
                tail_ticks += 1
                if tail_ticks * block_s > self.max_tail_s:
                    logger.warning("replay: pipeline still busy %.0f s after the input ended; stopping", self.max_tail_s)
                    break
                mic = silence
            if self.echo is not None:
                mic = mix_into(mic, self.echo.process(speaker))
            if self.recorder is not None:
                self.recorder.write(mic, speaker)
            playing = speaker
            speaker = self.output.read(self.block, at_s=(k + 1) * block_s)
            on_input(mic, k * block_s, playing)
            k += 1
            self.ticks = k
        if self.recorder is not None and speaker.any():
            self.recorder.write(silence, speaker)
