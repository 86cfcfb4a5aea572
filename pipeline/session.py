"""One conversation: the stages wired together, turn-taking, and the record of each turn.

::

    device ─► echo canceller ─► endpoint ─► asr ─► reply (llm + chunker) ─► tts ─► playback ─► output buffer ─► device

The device (a sound card or the replay device) pushes microphone blocks in and pulls speaker
blocks out. The session decides who has the floor. When the user's voice comes over a reply
that is playing, playback pauses at once; the words then decide (``barge_in.classify``): a
real question or "stop" cuts the reply (barge-in), while a backchannel, the assistant's own
echo, or a cough with no words lets it go on where it paused. Before any of the reply is
audible, new speech cuts it straight away. In half-duplex mode the microphone is ignored until
the reply has really finished playing.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from voxloop.models.base import ASR, LLM, TTS
from voxloop.voice.double_talk import DoubleTalkConfig, DoubleTalkDetector
from voxloop.voice.echo_canceller import EchoCanceller, EchoCancellerConfig
from voxloop.voice.playback import OutputBuffer, PlaybackEvent
from voxloop.voice.vad import Endpointer, EndpointerConfig, WebRtcVad

from .asr_stage import ASRStage
from .assistant.commands import Commands
from .barge_in import BargeInConfig, classify, is_echo
from .command_stage import CommandStage
from .dialog import Dialog, Exchange
from .echo_stage import EchoCancelStage
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
        on_input: Callable[[np.ndarray, float, np.ndarray | None], None],
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
    echo_cancel: bool = True
    """Take the assistant's own voice out of the microphone (WebRTC AEC3, with the played
    audio as reference) before anything listens to it."""
    echo_canceller: EchoCancellerConfig = field(default_factory=EchoCancellerConfig)
    echo_predictor: bool = True
    """The double-talk detector's echo predictor (``DoubleTalkConfig.predictor``)."""
    half_duplex_tail_ms: int = 300
    """Half-duplex: after the reply's last sample leaves the buffer, the microphone stays shut
    this long more (device output latency plus the room's echo)."""
    resume_hold_ms: int = 250
    """A reply paused for a sound that came to nothing (a cough; or a first short word the
    endpointer threw away, with the rest of the sentence still coming) resumes after this much
    more quiet, not at once."""
    barge: BargeInConfig = field(default_factory=BargeInConfig)
    """What counts as taking the floor while the assistant speaks."""
    partial_asr_ms: int = 0
    """While the user speaks (and no reply is on its way), recognise the utterance so far this
    often and read its words into the language model's cache, so that when the voice stops
    only the last words are left to read. Milliseconds; 0: off (the product's setting is
    ``[turns] partial_asr_ms``; off here so a scripted recogniser hears each utterance once)."""


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
        self._voices: set[str] = set()
        """Detectors hearing a voice that may be someone starting to talk over the reply."""
        self._judging: int | None = None
        """The utterance that paused a playing reply and whose words are not known yet."""
        self._let_pass: set[int] = set()
        """Utterances over a reply judged not to take the floor (or retracted while judged)."""
        self._resume_at_s: float | None = None
        """Where a paused reply resumes, if nothing is heard before (``resume_hold_ms``)."""
        self._said: collections.deque[tuple[float, str]] = collections.deque(maxlen=8)
        """(end on the timeline, text) of the latest replies, to recognise their echo."""
        self.endpoint = EndpointStage(
            Endpointer(WebRtcVad(c.vad_aggressiveness), c.endpointer),
            next_turn_id=self._next_turn_id,
            on_speech_start=self._on_speech_start,
            on_discarded=self._on_discarded,
            on_utterance=self._confirm,
            on_retract=self._retract,
            on_voice=self._on_voice,
            voice_hint_ms=c.barge.pause_on_voice_ms,
            partial_every_ms=c.partial_asr_ms,
            partials_wanted=lambda: not self.active_turns,
        )
        self.playback = PlaybackStage(output)
        self.commands = commands
        self._overlapped: set[int] = set()
        """Turns whose words began while the assistant was audible: they may be its echo, so
        they never confirm an action (they can still ask, stop, or cancel)."""
        self.command_stage = CommandStage(commands, self.dialog, lambda t: t not in self._overlapped) if commands is not None else None
        self._timeline_s = 0.0
        self._last_said = ""
        self._to_announce: list[str] = []
        if commands is not None:
            commands.context.timers.now_s = lambda: self._timeline_s
            commands.context.last_reply = lambda: self._last_said
        self.reply = ReplyStage(llm, self.dialog, c.max_reply_tokens)
        """The language model's stage: a persona sets its tools, knowledge and thinking."""
        self.speech = TTSStage(tts, self.command_stage.voice_for if self.command_stage is not None else None)
        stages = [
            self.endpoint,
            ASRStage(asr, on_no_words=self._end_turn_without_reply, prefix_for=self._carried.get, on_text=self._on_text),
            *([self.command_stage] if self.command_stage is not None else []),
            self.reply,
            self.speech,
            self.playback,
        ]
        self.echo = (
            EchoCancelStage(EchoCanceller(c.echo_canceller), DoubleTalkDetector(DoubleTalkConfig(predictor=c.echo_predictor)))
            if c.echo_cancel
            else None
        )
        """The echo canceller's stage, if on (a live device sets its delay)."""
        if self.echo is not None:
            stages.insert(0, self.echo)
            self.echo.on_double_talk = lambda started, at_s: self._on_voice(started, at_s, "double talk")
            self.echo.detector.mid_reply = lambda: bool(self.active_turns) and self.output.is_playing()
        self.chain = Chain(stages, turn_log, maxsize=c.queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._device: Device | None = None
        self.interruptions = 0
        self.let_pass: collections.Counter[str] = collections.Counter()
        """Utterances over a reply that did not stop it, by kind (backchannel, echo, noise)."""
        self.on_exchange: Callable[[Exchange], None] | None = None
        """Called with each exchange as its turn ends (played out, or cut: then what was heard)."""
        output.on_event = self._on_playback_event

    def _next_turn_id(self) -> int:
        self._last_turn += 1
        return self._last_turn

    # --- the device edge -----------------------------------------------------------------

    def on_input(self, block: np.ndarray, at_s: float, reference: np.ndarray | None = None) -> None:
        """Microphone block in (int16 mono, 16 kHz), with the speaker audio that played during
        it. Never waits: a full queue drops and counts."""
        rate = self.endpoint.sample_rate
        self.chain.input.put_nowait(AudioFrame(NO_TURN, block, rate, at_s, reference=reference))
        self._timeline_s = at_s
        self._resume_if_due(at_s)
        if self.commands is not None:
            self._to_announce += self.commands.announcements(at_s)
            if self._to_announce and not (self.endpoint.in_speech or self.active_turns):
                # Timers wait for the floor: never over the user, never over a reply. A full
                # queue keeps the announcement for the next block.
                if self.announce(self._to_announce[0]) is not None:
                    self._to_announce.pop(0)

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

    def _audible(self) -> bool:
        """Some of a current reply has been heard (as opposed to: still being prepared)."""
        return any(self.log.get(t).reply_start_s is not None for t in self.active_turns)

    def _on_voice(self, started: bool, at_s: float, source: str = "vad") -> None:
        """The first voiced frames over a playing reply pause it; if they fade, it goes on.

        Two sources: the voice detector behind the echo canceller, and the double-talk detector
        on the raw microphone (quicker where the canceller holds the user's voice down)."""
        if not self.config.barge_in:
            return
        if started:
            self._voices.add(source)
            self._resume_at_s = None
            if self.active_turns and self.output.is_playing() and not self.output.paused:
                logger.debug("voice at %.2f s (%s): reply paused", at_s, source)
                self._pause()
            return
        self._voices.discard(source)
        if not self._voices and self._judging is None and self.output.paused and not self.endpoint.in_speech:
            logger.debug("voice faded at %.2f s: reply resumes after a hold", at_s)
            self.let_pass["noise"] += 1

    def _pause(self) -> None:
        if not self.output.paused:
            self.output.pause()
            for turn_id in self.active_turns:
                self.log.get(turn_id).pauses += 1

    def _resume_if_due(self, at_s: float) -> None:
        """Every block: a paused reply that nothing is deciding on any more (no voice, no
        speech, no words being judged) resumes once ``resume_hold_ms`` have passed."""
        if not self.output.paused or self._judging is not None or self._voices or self.endpoint.in_speech:
            return  # a pending resume waits for the decision
        if self._resume_at_s is None:
            # However the decision ended (voice faded, no words), the reply must not stay paused.
            self._resume_at_s = at_s + self.config.resume_hold_ms / 1000
        elif at_s >= self._resume_at_s:
            self._resume_at_s = None
            self.output.resume()

    def _on_speech_start(self, turn_id: int, at_s: float) -> None:
        self._resume_at_s = None
        self._voices.clear()  # speech is confirmed: from here its words decide
        if not (self.active_turns and self.config.barge_in):
            return
        if self._audible():
            # Hold the reply until the words say whether the user is taking the floor.
            self._pause()
            self._judging = turn_id
            logger.info("speech over the reply at %.2f s: paused, listening", at_s)
        else:
            logger.info("barge-in at %.2f s: interrupting turn(s) %s", at_s, sorted(self.active_turns))
            self.interrupt(turn_id, at_s)

    def _on_discarded(self, turn_id: int) -> None:
        if turn_id == self._judging:
            self._let_go(turn_id, "noise")

    def _let_go(self, turn_id: int, kind: str) -> None:
        """The utterance over the reply did not take the floor: the reply goes on."""
        logger.info("turn %d: %s over the reply; it goes on", turn_id, kind)
        self.let_pass[kind] += 1
        self._judging = None
        self._voices.clear()
        self._drop(turn_id)
        if kind != "noise":
            self.output.resume()  # its words are known: a nod, its own echo (noise: after a hold)

    def _drop(self, turn_id: int) -> None:
        """Not a turn to answer; its words (if any) are forgotten."""
        # Only the latest few can still get words (an utterance's pieces, a retraction).
        self._let_pass = {t for t in self._let_pass if t > turn_id - 8}
        self._let_pass.add(turn_id)
        self._overlapped.discard(turn_id)
        self.active_turns.discard(turn_id)
        self.playback.forget(turn_id)
        if self.command_stage is not None:
            self.command_stage.forget(turn_id)
        self._unmute_if_idle()

    def _judge(self, turn_id: int, text: str) -> bool:
        """Decide on the words of the utterance that paused a reply; True: answer them."""
        kind = classify(text, self._recently_said(), self.config.barge)
        if kind in ("echo", "backchannel"):
            logger.debug("turn %d: %r over the reply is %s", turn_id, text, kind)
            self._let_go(turn_id, kind)
            return False
        self._judging = None
        self._overlapped.add(turn_id)
        logger.info("turn %d: %r takes the floor (%s)", turn_id, text, kind)
        if kind == "stop":
            self.interrupt(turn_id)  # never a continuation of the question: nothing to answer
            self._drop(turn_id)
            return False
        self.interrupt(turn_id, self.log.get(turn_id).user_start_s)
        return True

    def _recently_said(self, since_s: float | None = None) -> list[str]:
        """Replies playing now, and those that ended within the echo window (of ``since_s``)."""
        said = []
        for turn_id in self.active_turns:
            # As written and as spoken: "3:19" comes back from the room as "three nineteen".
            said.append(self.output.spoken_text(turn_id))
            exchange = self.dialog.find(turn_id)
            if exchange is not None and exchange.reply:
                said.append(exchange.reply)
        for end_s, text in self._said:
            if since_s is None or since_s - end_s <= self.config.barge.echo_tail_s:
                said.append(text)
        return said

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
        if old in self._overlapped:
            self._overlapped.discard(old)
            self._overlapped.add(new)  # the longer utterance began over the assistant too
        if old == self._judging or old in self._let_pass:
            # Over a paused or resumed reply: ``old`` never reached the model, and making
            # every older turn stale would kill the reply. Judge the longer utterance anew.
            self._let_pass.add(old)
            self._judging = new
            self._pause()
        else:
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

    def _on_text(self, turn_id: int, text: str, provisional: bool) -> bool:
        """Words heard for ``turn_id``; False: they are not for the assistant to answer."""
        if turn_id in self._let_pass:
            return False
        if turn_id == self._judging:
            if not self._judge(turn_id, text):
                return False
        elif self._is_own_echo(turn_id, text):
            logger.info("turn %d: %r is the assistant's own echo; ignored", turn_id, text)
            self.let_pass["echo"] += 1
            self._drop(turn_id)
            return False
        if provisional and self.config.adaptive_hangover and self.endpoint.current_turn == turn_id:
            default = self.endpoint.endpointer.config.hangover_ms
            self.endpoint.endpointer.set_hangover(hangover_for(text, default, self.config.hangover))
        return True

    def _is_own_echo(self, turn_id: int, text: str) -> bool:
        start = self.log.get(turn_id).user_start_s
        said = self._recently_said(since_s=start if start is not None else 0.0)
        return bool(said) and is_echo(text, said, self.config.barge.echo_similarity)

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
        if turn_id == self._judging:
            self._let_go(turn_id, "noise")  # a cough, a knock: no words, no reason to stop
        if provisional:
            self._wordless.add(turn_id)  # settled at the endpoint, or forgotten if the user goes on
            return
        self.active_turns.discard(turn_id)
        self._carried.pop(turn_id, None)
        self._unmute_if_idle()

    def _finish(self, turn_id: int, played_to_s: float | None = None) -> None:
        self._overlapped.discard(turn_id)
        self.active_turns.discard(turn_id)
        self._carried.pop(turn_id, None)
        self.output.forget(turn_id)
        self.playback.forget(turn_id)
        if self.command_stage is not None:
            self.command_stage.forget(turn_id)
        self.log.finish(turn_id)
        exchange = self.dialog.find(turn_id)
        if exchange is not None and self.on_exchange is not None:
            self.on_exchange(exchange)
        self._unmute_if_idle(played_to_s)

    def _unmute_if_idle(self, played_to_s: float | None = None) -> None:
        if not self.active_turns:
            if self.endpoint.muted and played_to_s is not None:
                # The last samples handed over are still in the device and the room: listen
                # again only once they have died away.
                self.endpoint.muted_until_s = played_to_s + self.config.half_duplex_tail_ms / 1000
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
            spoken = self.output.spoken_text(event.turn_id)
            self._said.append((event.at_s, spoken))
            if exchange is not None:
                record.assistant_text = exchange.reply
                if exchange.reply != spoken:  # "3:19" was said "three nineteen": keep both
                    self._said.append((event.at_s, exchange.reply))
            self._last_said = record.assistant_text or self._last_said
            self._finish(event.turn_id, event.at_s)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
