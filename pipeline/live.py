"""``voxloop chat``: a conversation on the real microphone and speaker.

::

    open the devices (mic metered at once) ─► load + warm the engines on a thread ─► ready
          │                                        (progress shown, Ctrl-C honoured)
          ▼
    VoiceSession on the SoundDeviceDuplex ◄── watchdog reopens a device that died
          │
    ChatMonitor (10 Hz): phase, level, partial transcript, reply as heard ─► a reporter
                                                        (terminal view, plain lines, or quiet)

The microphone opens before the models load, so the level meter moves and a broken device
fails in the first second rather than after the wait. Nothing here changes the session: the
monitor only reads it (``endpoint.in_speech``, ``active_turns``, the open turn records, what the
output buffer played) and wraps ``TurnLog.on_finish``.

Stopping (Ctrl-C or SIGTERM, in any phase) ends the session and the devices; the turn
transcript is flushed per turn. If the models are still loading, the loading thread cannot be
interrupted: the process then leaves with ``os._exit(0)`` once everything is flushed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from voxloop.voice.devices import (
    DeviceEvent,
    DeviceStats,
    SoundDeviceDuplex,
    resolve_from_thread,
)
from voxloop.voice.playback import OutputBuffer

from .config import Config, default_state_dir
from .dialog import Dialog, Exchange
from .engines import Engines, ModelPlan, load_engines
from .persona_runtime import PersonaRuntime
from .replay import voice_session
from .session import VoiceSession
from .signals import install_stop_handlers
from .turn_log import TurnLog, TurnRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")

LISTENING = "listening"
HEARING = "hearing you"
THINKING = "thinking"
SPEAKING = "speaking"
DEVICE_LOST = "device lost"
PHASES = (LISTENING, HEARING, THINKING, SPEAKING, DEVICE_LOST)


@dataclass
class ChatStatus:
    """What the user sees, refreshed about ten times a second."""

    phase: str = "starting"
    level_db: float = -120.0
    """Microphone level, dBFS (the newest 20 ms block)."""
    you: str = ""
    """What recognition has made of the current turn so far."""
    heard: str = ""
    """The reply's words already played."""
    reply: str = ""
    """The reply as generated so far (``heard`` is its beginning)."""
    device: str = ""
    loading: str = ""
    load_step: int = 0
    load_steps: int = 4
    turns: list[TurnRecord] = field(default_factory=list)
    stats: DeviceStats = field(default_factory=DeviceStats)
    started: float = field(default_factory=time.monotonic)


class Reporter(Protocol):
    """Where the conversation shows: the terminal view, timestamped lines, or nowhere."""

    def opened(self, status: ChatStatus) -> None: ...
    def loading(self, status: ChatStatus) -> None: ...
    def ready(self, status: ChatStatus) -> None: ...
    def phase(self, status: ChatStatus) -> None: ...
    def refresh(self, status: ChatStatus) -> None: ...
    def turn(self, status: ChatStatus, record: TurnRecord) -> None: ...
    def device(self, status: ChatStatus, event: DeviceEvent) -> None: ...
    def finished(self, status: ChatStatus, summary: str) -> None: ...


@dataclass
class ChatOptions:
    input_device: str | None = None
    output_device: str | None = None
    transcript: Path | None = None
    """JSONL of the turns, appended and flushed as each turn ends."""
    latency: float | str = 0.1
    """PortAudio latency for both devices (seconds, or "low"/"high")."""
    history: list[Exchange] = field(default_factory=list)
    """A saved conversation to go on from (``--resume``)."""
    on_exchange: Callable[[Exchange], None] | None = None
    """Called as each turn ends, e.g. to save it (``SessionRecorder``)."""
    state_dir: Path | None = None
    """Notes and knowledge indexes live here (None: ``default_state_dir()``)."""


@dataclass
class ChatResult:
    turns: list[TurnRecord]
    stats: DeviceStats
    loader_running: bool = False
    """Stopped while the models were still loading: the loading thread is still running."""


# --- the engines, on a thread, with progress -------------------------------------------------


def load_with_progress(config: Config, plan: ModelPlan, progress: Callable[[str, int], None]) -> Engines:
    """``load_engines``, warming each engine as its own step so progress can be shown."""
    progress("loading speech recognition, language model and voice", 0)
    engines = load_engines(config, plan, warm=False)
    for step, (name, label) in enumerate(
        (("asr", "speech recognition"), ("llm", "language model"), ("tts", "voice")), start=1
    ):
        progress(f"warming up the {label}", step)
        started = time.perf_counter()
        getattr(engines, name).warm_up()
        engines.load_ms[f"{name}_warm"] = (time.perf_counter() - started) * 1000
    logger.info("engines ready: %s", {k: round(v) for k, v in engines.load_ms.items()})
    return engines


def in_daemon_thread(fn: Callable[[], T], name: str) -> tuple[asyncio.Future[T], threading.Thread]:
    """Run ``fn`` on a daemon thread (one that cannot hold the process open); await the future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        try:
            result = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            resolve_from_thread(loop, future, None, e)
        else:
            resolve_from_thread(loop, future, result, None)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return future, thread


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop has closed: nobody waits any more
        pass


# --- watching the session --------------------------------------------------------------------


class ChatMonitor:
    """Reads the session about ten times a second and tells the reporter what changed."""

    def __init__(self, session: VoiceSession, device: SoundDeviceDuplex, status: ChatStatus, reporter: Reporter) -> None:
        self.session = session
        self.device = device
        self.status = status
        self.reporter = reporter

    def phase_now(self) -> str:
        s = self.session
        if self.device.device_down:
            return DEVICE_LOST
        log = s.log
        if any(log.is_open(t) and log.get(t).reply_start_s is not None for t in s.active_turns):
            return SPEAKING
        if s.endpoint.in_speech:
            return HEARING
        if s.active_turns:
            return THINKING
        return LISTENING

    def _turn_in_view(self) -> int | None:
        s = self.session
        current = s.endpoint.current_turn
        if current is not None:
            return current
        return max(s.active_turns) if s.active_turns else None

    def poll(self) -> None:
        st, s = self.status, self.session
        st.level_db = self.device.level_db
        turn = self._turn_in_view()
        if turn is not None and s.log.is_open(turn):
            st.you = s.log.get(turn).user_text or st.you
            exchange = s.dialog.find(turn)
            st.reply = exchange.reply if exchange is not None else ""
            st.heard = s.output.heard_text(turn)
        elif turn is not None:
            st.you = st.reply = st.heard = ""
        phase = self.phase_now()
        if phase != st.phase:
            if phase == HEARING and st.phase in (LISTENING, DEVICE_LOST):
                st.you = st.reply = st.heard = ""
            st.phase = phase
            self.reporter.phase(st)
        self.reporter.refresh(st)

    async def run(self, period_s: float = 0.1) -> None:
        while True:
            try:
                self.poll()
            except Exception:  # the view must never take the conversation down
                logger.exception("status monitor failed")
            await asyncio.sleep(period_s)


# --- the conversation ------------------------------------------------------------------------


async def chat(config: Config, plan: ModelPlan, options: ChatOptions, reporter: Reporter) -> ChatResult:
    """Open the devices, load the engines, converse until Ctrl-C/SIGTERM. Raises DeviceError
    (no usable device, PortAudio missing) and ModelError (a model fails to load)."""
    status = ChatStatus()
    quit_requested = asyncio.Event()
    session: VoiceSession | None = None

    def stop() -> None:
        quit_requested.set()
        if session is not None:
            session.stop()

    install_stop_handlers(stop)

    def on_device_event(event: DeviceEvent) -> None:
        if event.kind == "lost":
            status.phase = DEVICE_LOST
        status.device = device.description or status.device
        reporter.device(status, event)

    device = SoundDeviceDuplex(options.input_device, options.output_device, latency=options.latency)
    status.stats = device.stats
    await device.start()
    device.on_event = on_device_event
    status.device = device.description
    reporter.opened(status)

    # The models load while the microphone is open (metered, last half second kept).
    loop = asyncio.get_running_loop()

    def progress(step: str, done: int) -> None:
        def show() -> None:
            status.loading, status.load_step = step, done
            reporter.loading(status)

        _call_soon(loop, show)

    loading, loader = in_daemon_thread(lambda: load_with_progress(config, plan, progress), name="load-models")
    quitting = asyncio.ensure_future(quit_requested.wait())
    metering = asyncio.ensure_future(_meter(device, status, reporter))
    try:
        await asyncio.wait({loading, quitting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        metering.cancel()
        quitting.cancel()
    if not loading.done():
        await device.close()
        reporter.finished(status, f"stopped while loading the models; {device.stats.summary()}")
        return ChatResult([], device.stats, loader_running=loader.is_alive())
    try:
        engines = loading.result()
    except BaseException:
        await device.close()
        raise

    output = OutputBuffer(device.output_rate)
    device.output = output
    log = TurnLog(options.transcript)
    dialog = Dialog(config.dialog.system_prompt, config.dialog.max_history_chars)
    dialog.restore(options.history)
    state_dir = options.state_dir or default_state_dir()
    persona = PersonaRuntime(config, state_dir)
    try:
        session = voice_session(engines, output, log, dialog, config, state_dir, barge_in_default=config.turns.echo_cancel)
        session.on_exchange = options.on_exchange
        persona.open_knowledge()  # indexed in the background: the conversation starts now
        persona.attach(session)
    except BaseException:
        # A bad setting found only now (no echo canceller package, a persona's unreadable
        # files): the devices close before the one-line error.
        persona.close()
        log.close()
        await device.close()
        raise
    if session.echo is not None:
        device.follow_echo_delay(session.echo.set_delay_ms)
    monitor = ChatMonitor(session, device, status, reporter)

    def on_finish(record: TurnRecord) -> None:
        status.turns.append(record)
        status.you, status.reply, status.heard = record.user_text, record.assistant_text, record.assistant_text
        reporter.turn(status, record)

    log.on_finish = on_finish
    watching: asyncio.Task[None] | None = None
    try:
        if not quit_requested.is_set():
            status.phase = LISTENING
            status.loading = ""
            reporter.ready(status)
            watching = asyncio.create_task(monitor.run(), name="chat-monitor")
            await _run_until_stopped(session, device, quit_requested)
            logger.debug("session ended")
    finally:
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        await device.close()
        logger.debug("devices closed")
        log.close()
        persona.close()
        device.stats.dropped_blocks = session.chain.input.dropped
    reporter.finished(status, session_summary(log.finished, device.stats))
    return ChatResult(log.finished, device.stats)


STOP_GRACE_S = 1.0
"""After Ctrl-C, how long the session may take to wind down (the reply in progress is cut at
once; a recognition or generation step already running in an engine thread is not waited for
beyond this: the process exits without it)."""


async def _run_until_stopped(session: VoiceSession, device: SoundDeviceDuplex, quit_requested: asyncio.Event) -> None:
    running = asyncio.create_task(session.run(device), name="session")
    quitting = asyncio.ensure_future(quit_requested.wait())
    try:
        await asyncio.wait({running, quitting}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            try:
                await asyncio.wait_for(asyncio.shield(running), STOP_GRACE_S)
            except asyncio.TimeoutError:
                # An engine is inside one long call (a prompt being read, an utterance being
                # transcribed). The turns are already written (the stop interrupted them);
                # leave the call to die with the process.
                logger.info("an engine is still busy %.1f s after the stop; not waiting for it", STOP_GRACE_S)
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
        else:
            running.result()
    finally:
        quitting.cancel()


async def _meter(device: SoundDeviceDuplex, status: ChatStatus, reporter: Reporter) -> None:
    """Keep the level meter (and the loading spinner) moving while the models load."""
    while True:
        status.level_db = device.level_db
        reporter.refresh(status)
        await asyncio.sleep(0.1)


def session_summary(turns: list[TurnRecord], stats: DeviceStats) -> str:
    latencies = [t.latency_ms for t in turns if t.latency_ms is not None]
    lat = f", median latency {sorted(latencies)[len(latencies) // 2]:.0f} ms" if latencies else ""
    return f"{len(turns)} turn(s){lat}; {stats.summary()}"
