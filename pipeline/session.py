"""One conversation: the stages wired together, turn-taking, and the record of each turn.

::

    device ─► endpoint ─► asr ─► reply (llm + chunker) ─► tts ─► playback ─► output buffer ─► device

The device (a sound card or the replay device) pushes microphone blocks in and pulls speaker
blocks out. The session decides who has the floor: when the user starts speaking while a reply
is under way it interrupts (barge-in) or, in half-duplex mode, the microphone is ignored until
the reply has really finished playing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from voxloop.models.base import ASR, LLM, TTS
from voxloop.voice.playback import OutputBuffer, PlaybackEvent
from voxloop.voice.vad import Endpointer, EndpointerConfig, WebRtcVad

from .asr_stage import ASRStage
from .assistant.commands import Commands
from .command_stage import CommandStage
from .dialog import Dialog
from .endpoint_stage import EndpointStage
from .frames import NO_TURN, AudioFrame, SpeakFrame
from .playback_stage import PlaybackStage
from .reply_stage import ReplyStage
from .stage import Chain
from .tts_stage import TTSStage
from .turn_end import HangoverConfig, hangover_for
from .turn_log import TurnLog

logger = logging.getLogger(__name__)


class Device(Protocol):
    def stop(self) -> None: ...

    async def run(
        self,
        on_input: Callable[[np.ndarray, float], None],
        settle: Callable[[], Awaitable[None]] | None,
        finished: Callable[[], bool],
    ) -> None: ...


@dataclass
class SessionConfig:
    barge_in: bool = True
    """Let the user interrupt the assistant by speaking. Off = half-duplex."""
    vad_aggressiveness: int = 2
    endpointer: EndpointerConfig | None = None
    max_reply_tokens: int = 120
    queue_size: int = 64
    adaptive_hangover: bool = True
    """Shorten or lengthen the hangover from the words heard at the first pause."""
    hangover: HangoverConfig = field(default_factory=HangoverConfig)
    continuation_s: float = 2.0
    """Speech resuming this soon after the end of the user's turn continues that turn: the
    reply is cut and the two utterances are answered as one question."""


class VoiceSession:
    def __init__(
        self,
        asr: ASR,
        llm: LLM,
        tts: TTS,
        output: OutputBuffer,
        turn_log: TurnLog,
        dialog: Dialog | None = None,
        config: SessionConfig | None = None,
        commands: Commands | None = None,
    ) -> None:
        """``commands``: answer common commands without the LLM, and drive their timers."""
        self.config = c = config or SessionConfig()
        self.output = output
        self.log = turn_log
        self.dialog = dialog or Dialog()
        self._last_turn = 0
        self.active_turns: set[int] = set()
        """Turns between the end of the user's speech and the end of the reply's playback."""
        self._wordless: set[int] = set()
        """Provisional turns in which recognition found no words (yet)."""
        self._carried: dict[int, str] = {}
        """User text of a turn cut short by the user's own continuation, to prefix the next."""
        self.endpoint = EndpointStage(
            Endpointer(WebRtcVad(c.vad_aggressiveness), c.endpointer),
            next_turn_id=self._next_turn_id,
            on_speech_start=self._on_speech_start,
            on_utterance=self._confirm,
            on_retract=self._retract,
        )
        self.playback = PlaybackStage(output)
        self.commands = commands
        self.command_stage = CommandStage(commands, self.dialog) if commands is not None else None
        self._timeline_s = 0.0
        self._last_said = ""
        self._to_announce: list[str] = []
        if commands is not None:
            commands.context.timers.now_s = lambda: self._timeline_s
            commands.context.last_reply = lambda: self._last_said
        stages = [
            self.endpoint,
            ASRStage(asr, on_no_words=self._end_turn_without_reply, prefix_for=self._carried.get, on_text=self._on_text),
            *([self.command_stage] if self.command_stage is not None else []),
            ReplyStage(llm, self.dialog, c.max_reply_tokens),
            TTSStage(tts, self.command_stage.voice_for if self.command_stage is not None else None),
            self.playback,
        ]
        self.chain = Chain(stages, turn_log, maxsize=c.queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._device: Device | None = None
        self.interruptions = 0
        output.on_event = self._on_playback_event

    def _next_turn_id(self) -> int:
        self._last_turn += 1
        return self._last_turn

    # --- the device edge -----------------------------------------------------------------

    def on_input(self, block: np.ndarray, at_s: float) -> None:
        """Microphone block in (int16 mono, 16 kHz). Never waits: a full queue drops and counts."""
        self.chain.input.put_nowait(AudioFrame(NO_TURN, block, self.endpoint.sample_rate, at_s))
        self._timeline_s = at_s
        if self.commands is not None:
            self._to_announce += self.commands.announcements(at_s)
            if self._to_announce and not (self.endpoint.in_speech or self.active_turns):
                # Timers wait for the floor: never over the user, never over a reply.
                self.announce(self._to_announce.pop(0))

    def announce(self, text: str) -> int | None:
        """Say ``text`` now as a turn of the assistant's own (a timer going off); its turn id,
        or None if the pipeline's input is full (try again on the next block)."""
        turn_id = self._last_turn + 1
        if not self.chain.input.put_nowait(SpeakFrame(turn_id, text)):
            return None
        self._next_turn_id()
        record = self.log.get(turn_id)
        record.command = "announcement"
        record.user_end_s = self._timeline_s  # latency: from when it was due to when it is heard
        self.active_turns.add(turn_id)
        if not self.config.barge_in:
            self.endpoint.muted = True
        self.playback.confirm(turn_id)
        logger.info("turn %d: announcing %r", turn_id, text)
        return turn_id

    async def settle(self) -> None:
        await self.chain.tracker.wait_idle()

    def finished(self) -> bool:
        """Nothing heard, nothing pending, nothing playing."""
        return not (
            self.chain.tracker.busy or self.endpoint.in_speech or self.active_turns or self.output.is_playing()
        )

    async def run(self, device: Device, fast: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        self._device = device
        self.chain.start()
        logger.info("listening")
        try:
            await device.run(self.on_input, self.settle if fast else None, self.finished)
        finally:
            await self.chain.stop()
            for turn_id in sorted(self.active_turns):
                self._finish(turn_id)

    def stop(self) -> None:
        """Quit: cut any reply (what was heard is kept) and let the device end."""
        if self.active_turns:
            self.interrupt(self._next_turn_id())
        if self._device is not None:
            self._device.stop()

    # --- turn-taking ---------------------------------------------------------------------

    def _on_speech_start(self, turn_id: int, at_s: float) -> None:
        if self.active_turns and self.config.barge_in:
            logger.info("barge-in at %.2f s: interrupting turn(s) %s", at_s, sorted(self.active_turns))
            self.interrupt(turn_id, at_s)

    def _continues(self, turn_id: int, at_s: float) -> bool:
        """The user paused mid-thought and went on: not a new question."""
        end = self.log.get(turn_id).user_end_s
        return end is not None and at_s - end <= self.config.continuation_s

    def _confirm(self, turn_id: int) -> None:
        """The endpoint stands: the turn's reply may play (what is ready plays at once)."""
        if turn_id in self._wordless:
            self._wordless.discard(turn_id)
            self.log.discard(turn_id)
        if not self.log.is_open(turn_id):
            return  # its words were none: nothing to answer
        self.active_turns.add(turn_id)
        if not self.config.barge_in:
            self.endpoint.muted = True
        self.playback.confirm(turn_id)
        if self.command_stage is not None:
            self.command_stage.confirm(turn_id)

    def _retract(self, old: int, new: int) -> None:
        """The user went on after a pause: drop the head start, keep listening as ``new``."""
        self.chain.interrupt(new)
        if self.command_stage is not None:
            self.command_stage.retract(old)
        self._wordless.discard(old)
        self.log.rename(old, new)
        exchange = self.dialog.find(old)
        if exchange is not None:
            self.dialog.exchanges.remove(exchange)
        if old in self._carried:
            self._carried[new] = self._carried.pop(old)

    def _on_text(self, turn_id: int, text: str, provisional: bool) -> None:
        if provisional and self.config.adaptive_hangover and self.endpoint.current_turn == turn_id:
            default = self.endpoint.endpointer.config.hangover_ms
            self.endpoint.endpointer.set_hangover(hangover_for(text, default, self.config.hangover))

    def interrupt(self, new_turn_id: int, at_s: float | None = None) -> None:
        """Stop talking now; keep in the history only what the user heard."""
        self.output.clear()
        self.chain.interrupt(new_turn_id)
        for turn_id in sorted(self.active_turns):
            if turn_id >= new_turn_id:
                continue
            self.interruptions += 1
            heard = self.output.heard_text(turn_id)
            exchange = self.dialog.find(turn_id)
            record = self.log.get(turn_id)
            if at_s is not None and self._continues(turn_id, at_s):
                # Answer the whole thought once: the next utterance carries this one's words.
                self._carried[new_turn_id] = " ".join(filter(None, [self._carried.get(new_turn_id), record.user_text]))
                if exchange is not None:
                    self.dialog.exchanges.remove(exchange)
            elif exchange is not None:
                exchange.reply = heard
                exchange.interrupted = True
            record.interrupted = True
            record.assistant_text = heard
            self._finish(turn_id)

    def _end_turn_without_reply(self, turn_id: int, provisional: bool = False) -> None:
        if provisional:
            self._wordless.add(turn_id)  # settled at the endpoint, or forgotten if the user goes on
            return
        self.active_turns.discard(turn_id)
        self._carried.pop(turn_id, None)
        self._unmute_if_idle()

    def _finish(self, turn_id: int) -> None:
        self.active_turns.discard(turn_id)
        self._carried.pop(turn_id, None)
        self.output.forget(turn_id)
        self.playback.forget(turn_id)
        if self.command_stage is not None:
            self.command_stage.forget(turn_id)
        self.log.finish(turn_id)
        self._unmute_if_idle()

    def _unmute_if_idle(self) -> None:
        if not self.active_turns:
            self.endpoint.muted = False

    # --- what the speaker did --------------------------------------------------------------

    def _on_playback_event(self, event: PlaybackEvent) -> None:
        # Called from the audio thread on a live device: hand over and return.
        if self._loop is not None and not _in_loop(self._loop):
            self._loop.call_soon_threadsafe(self._handle_playback, event)
        else:
            self._handle_playback(event)

    def _handle_playback(self, event: PlaybackEvent) -> None:
        if event.turn_id not in self.active_turns:
            return
        record = self.log.get(event.turn_id)
        if event.kind == "first_audio":
            record.reply_start_s = event.at_s
            logger.info("turn %d: reply audible at %.2f s (latency %s ms)", event.turn_id, event.at_s, record.latency_ms)
        elif event.kind == "drained":
            record.reply_end_s = event.at_s
            exchange = self.dialog.find(event.turn_id)
            if exchange is not None:
                record.assistant_text = exchange.reply
            self._last_said = record.assistant_text or self._last_said
            self._finish(event.turn_id)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
