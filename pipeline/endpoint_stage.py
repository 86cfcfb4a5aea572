"""Microphone audio in, user utterances out, with a head start.

Runs the VAD and endpointer on 20 ms frames and tells the session when speech starts (the cue
for barge-in). After a short pause (``speculate_ms``) it sends the utterance so far on as a
*provisional* turn: recognition, the language model and synthesis start during the hangover,
while the output stays gated. If the silence lasts, the turn is confirmed and its audio plays
at once; if the user goes on, the provisional work is retracted and the utterance continues
under a new turn id.

Earlier still, while the user speaks, the utterance so far goes on every ``partial_every_ms``
as a ``PartialUtteranceFrame``: its words are recognised and read into the language model's
cache, so that at the pause only the last words are left to read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from voxloop.voice.vad import (
    Endpointer,
    EndpointEvent,
    SpeechDiscarded,
    SpeechEnd,
    SpeechPaused,
    SpeechResumed,
    SpeechStart,
)

from .frames import AudioFrame, Frame, PartialUtteranceFrame, RestoredAudioFrame, UtteranceFrame
from .stage import Stage

logger = logging.getLogger(__name__)


def _ignore(*args: object) -> None:
    pass


class EndpointStage(Stage):
    name = "endpoint"

    def __init__(
        self,
        endpointer: Endpointer,
        next_turn_id: Callable[[], int],
        on_speech_start: Callable[[int, float], None] = _ignore,
        on_discarded: Callable[[int], None] = _ignore,
        on_utterance: Callable[[int], None] = _ignore,
        on_retract: Callable[[int, int], None] = _ignore,
        on_voice: Callable[[bool, float], None] = _ignore,
        voice_hint_ms: int = 40,
        partial_every_ms: int = 0,
        partials_wanted: Callable[[], bool] = lambda: True,
    ) -> None:
        """``on_utterance(turn)``: the turn is confirmed (its reply may play).
        ``on_retract(old, new)``: provisional work for ``old`` is void; the utterance is now ``new``.
        ``on_voice(True, at)``: ``voice_hint_ms`` of voice before any onset is confirmed (the
        cue to pause a reply); ``on_voice(False, at)``: that voice faded without becoming speech.
        ``partial_every_ms``: send the utterance so far on this often while the user speaks
        (0: never), when ``partials_wanted()`` (not while a reply is on its way)."""
        super().__init__()
        self.endpointer = endpointer
        self.sample_rate = endpointer.vad.sample_rate
        self._next_turn_id = next_turn_id
        self._on_speech_start = on_speech_start
        self._on_discarded = on_discarded
        self._on_utterance = on_utterance
        self._on_retract = on_retract
        self._on_voice = on_voice
        self._voice_hint_ms = voice_hint_ms
        self._voice_hinted = False
        self._hint_at_s = 0.0
        self._hint_spent = False
        """A hint timed out without becoming speech: no new hint until the voice fades."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start_s = 0.0
        self._turn_id = 0
        self._started_s = 0.0
        """Where the current utterance began (timeline seconds)."""
        self._provisional = False
        """The current utterance has been sent on provisionally and not retracted."""
        self._cut = False
        """The current utterance has been cut into pieces (no head start for those)."""
        self.muted = False
        """Half-duplex: ignore the microphone (the assistant is talking)."""
        self.muted_until_s = 0.0
        """Half-duplex: also ignore audio that starts before this point of the timeline."""
        self.retractions = 0
        self._partial_every_s = partial_every_ms / 1000
        self._partials_wanted = partials_wanted
        self._partial_due_s = 0.0
        self.partials = 0
        """Partial utterances sent on (for the benchmark)."""

    @property
    def in_speech(self) -> bool:
        return self.endpointer.in_speech

    @property
    def current_turn(self) -> int | None:
        """The turn of the utterance being heard, if any."""
        return self._turn_id if self.endpointer.in_speech else None

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, RestoredAudioFrame):
            self._replace(frame)
            return
        if not isinstance(frame, AudioFrame):
            await self.push(frame)
            return
        if frame.sample_rate != self.sample_rate:
            raise ValueError(f"endpointer needs {self.sample_rate} Hz audio, got {frame.sample_rate}")
        if (self.muted or frame.start_s < self.muted_until_s) and not self.endpointer.in_speech:
            self._pending = np.zeros(0, dtype=np.int16)
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
            self._hint_voice(at_s + n / self.sample_rate)
            await self._send_partial_if_due(at_s + n / self.sample_rate)

    def _replace(self, frame: RestoredAudioFrame) -> None:
        """The audio already heard since ``frame.start_s``, again as the double-talk detector's
        echo-reduced microphone has it (the canceller held the user's voice down there)."""
        n = self.endpointer.frame_samples
        end_s = self._pending_start_s  # where the frames pushed so far end
        frames = []
        k = 1
        while True:
            offset = round((end_s - k * n / self.sample_rate - frame.start_s) * self.sample_rate)
            if offset < 0 or offset + n > len(frame.samples):
                break
            frames.insert(0, frame.samples[offset : offset + n])
            k += 1
        replaced = self.endpointer.replace_audio(frames)
        logger.debug("double talk: %d ms of audio restored from before the echo canceller", replaced * n * 1000 // self.sample_rate)

    def _hint_voice(self, at_s: float) -> None:
        voiced = self.endpointer.onset_voiced_ms
        window_s = self.endpointer.config.start_window_ms / 1000
        if self.endpointer.in_speech:
            self._voice_hinted = self._hint_spent = False  # it became speech: onsets take over
        elif voiced == 0:
            self._hint_spent = False
            if self._voice_hinted:
                self._voice_hinted = False
                self._on_voice(False, at_s)
        elif not self._voice_hinted and not self._hint_spent and voiced >= self._voice_hint_ms:
            self._voice_hinted = True
            self._hint_at_s = at_s
            self._on_voice(True, at_s)
        elif self._voice_hinted and at_s - self._hint_at_s > window_s:
            # Flickering noise that never adds up to speech: let go, and stay quiet until it stops.
            self._voice_hinted = False
            self._hint_spent = True
            self._on_voice(False, at_s)

    async def _handle(self, event: EndpointEvent) -> None:
        log = self.ctx.log
        if isinstance(event, SpeechStart):
            if event.continued:
                return  # more of the same utterance: same turn
            self._turn_id = self._next_turn_id()
            self._provisional = self._cut = False
            self._started_s = event.at_s
            self._partial_due_s = event.at_s + self._partial_every_s
            log.get(self._turn_id).user_start_s = event.at_s
            self._on_speech_start(self._turn_id, event.at_s)
        elif isinstance(event, SpeechDiscarded):
            log.discard(self._turn_id)
            self._on_discarded(self._turn_id)
        elif isinstance(event, SpeechPaused):
            if self._cut:
                return
            self._provisional = True
            log.get(self._turn_id).user_end_s = event.end_s
            await self._send(event.samples, event.start_s, event.end_s, 0.0, True, event.voiced_ms, provisional=True)
        elif isinstance(event, SpeechResumed):
            self._retract()
        else:
            assert isinstance(event, SpeechEnd)
            if not event.final:
                self._retract()
                self._cut = True
                await self._send(event.samples, event.start_s, event.end_s, event.endpoint_ms, False, event.voiced_ms)
                return
            if self._provisional:
                # The head start stands: the words sent on are all there were.
                self._provisional = False
                if log.is_open(self._turn_id):  # else recognition found no words in them
                    log.stage(self._turn_id, "endpoint", event.endpoint_ms)
                    log.get(self._turn_id).stages["head_start"] = 1.0
                    self._on_utterance(self._turn_id)
                return
            record = log.get(self._turn_id)
            if event.voiced_ms or record.user_end_s is None:
                record.user_end_s = event.end_s
            log.stage(self._turn_id, "endpoint", event.endpoint_ms)
            self._on_utterance(self._turn_id)
            await self._send(event.samples, event.start_s, event.end_s, event.endpoint_ms, True, event.voiced_ms)

    async def _send_partial_if_due(self, now_s: float) -> None:
        """While the user speaks (on a voiced frame, not in a pause already sent on, not in a
        long utterance cut into pieces), the utterance so far, every ``partial_every_ms``."""
        if not (self._partial_every_s and self.endpointer.in_speech) or self._provisional or self._cut:
            return
        if now_s < self._partial_due_s or self.endpointer.voiced_ms < self.endpointer.config.min_voiced_ms:
            return
        if self.endpointer.silent_ms:
            return  # maybe the end: the head start needs the recogniser and the model now
        self._partial_due_s = now_s + self._partial_every_s
        if not self._partials_wanted():
            return
        self.partials += 1
        samples = self.endpointer.utterance_so_far()
        await self.push(PartialUtteranceFrame(self._turn_id, samples, self.sample_rate))

    def _retract(self) -> None:
        if not self._provisional:
            return
        self._provisional = False
        self.retractions += 1
        old, self._turn_id = self._turn_id, self._next_turn_id()
        logger.debug("turn %d: the user went on; provisional work retracted (now turn %d)", old, self._turn_id)
        self._on_retract(old, self._turn_id)
        # The record moves to the new id, unless the old words were dropped with it (let
        # pass over a reply): the utterance still began where it began.
        record = self.ctx.log.get(self._turn_id)
        if record.user_start_s is None:
            record.user_start_s = self._started_s

    async def _send(
        self,
        samples: np.ndarray,
        start_s: float,
        end_s: float,
        endpoint_ms: float,
        final: bool,
        voiced_ms: float,
        provisional: bool = False,
    ) -> None:
        await self.push(
            UtteranceFrame(
                turn_id=self._turn_id,
                samples=samples,
                sample_rate=self.sample_rate,
                start_s=start_s,
                end_s=end_s,
                endpoint_ms=endpoint_ms,
                final=final,
                voiced_ms=voiced_ms,
                provisional=provisional,
            )
        )
