"""Microphone audio in, whole user utterances out.

Runs the VAD and endpointer on 20 ms frames, tells the session when speech starts (the cue
for barge-in), and sends each finished utterance on as a new turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from voxloop.voice.vad import Endpointer, SpeechDiscarded, SpeechEnd, SpeechStart

from .frames import AudioFrame, Frame, UtteranceFrame
from .stage import Stage

logger = logging.getLogger(__name__)


class EndpointStage(Stage):
    name = "endpoint"

    def __init__(
        self,
        endpointer: Endpointer,
        next_turn_id: Callable[[], int],
        on_speech_start: Callable[[int, float], None] = lambda turn_id, at_s: None,
        on_discarded: Callable[[int], None] = lambda turn_id: None,
        on_utterance: Callable[[int], None] = lambda turn_id: None,
    ) -> None:
        super().__init__()
        self.endpointer = endpointer
        self.sample_rate = endpointer.vad.sample_rate
        self._next_turn_id = next_turn_id
        self._on_speech_start = on_speech_start
        self._on_discarded = on_discarded
        self._on_utterance = on_utterance
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start_s = 0.0
        self._turn_id = 0
        self.muted = False
        """Half-duplex: ignore the microphone (the assistant is talking)."""

    @property
    def in_speech(self) -> bool:
        return self.endpointer.in_speech

    async def process(self, frame: Frame) -> None:
        if not isinstance(frame, AudioFrame):
            await self.push(frame)
            return
        if frame.sample_rate != self.sample_rate:
            raise ValueError(f"endpointer needs {self.sample_rate} Hz audio, got {frame.sample_rate}")
        if self.muted:
            self._pending = np.zeros(0, dtype=np.int16)
            if self.endpointer.in_speech:
                self.endpointer.flush(frame.start_s)
            return
        if not len(self._pending):
            self._pending_start_s = frame.start_s
        self._pending = np.concatenate([self._pending, frame.samples])
        n = self.endpointer.frame_samples
        while len(self._pending) >= n:
            chunk, self._pending = self._pending[:n], self._pending[n:]
            at_s = self._pending_start_s
            self._pending_start_s += n / self.sample_rate
            for event in self.endpointer.push(chunk, at_s):
                await self._handle(event)

    async def _handle(self, event: SpeechStart | SpeechEnd | SpeechDiscarded) -> None:
        if isinstance(event, SpeechStart):
            if event.continued:
                return  # more of the same utterance: same turn
            self._turn_id = self._next_turn_id()
            self.ctx.log.get(self._turn_id).user_start_s = event.at_s
            self._on_speech_start(self._turn_id, event.at_s)
        elif isinstance(event, SpeechDiscarded):
            self.ctx.log.discard(self._turn_id)
            self._on_discarded(self._turn_id)
        else:
            if event.final:
                record = self.ctx.log.get(self._turn_id)
                if event.voiced_ms or record.user_end_s is None:
                    record.user_end_s = event.end_s
                self.ctx.log.stage(self._turn_id, "endpoint", event.endpoint_ms)
                self._on_utterance(self._turn_id)
            await self.push(
                UtteranceFrame(
                    turn_id=self._turn_id,
                    samples=event.samples,
                    sample_rate=self.sample_rate,
                    start_s=event.start_s,
                    end_s=event.end_s,
                    endpoint_ms=event.endpoint_ms,
                    final=event.final,
                    voiced_ms=event.voiced_ms,
                )
            )
