"""The real microphone and speaker, through PortAudio (sounddevice).

::

    PortAudio input callback ──copy──► event loop: mono mix-down, soxr to 16 kHz, level ──► pipeline
    PortAudio output callback ◄──pull── OutputBuffer (already at the speaker's rate)
                              ──copy──► reference ring ──► event loop: soxr to 16 kHz, paired
                                        sample for sample with the microphone (a block whose
                                        reference is not written yet waits for it)
    watchdog task (4 Hz): callbacks still coming? xruns by the clock; reopen a device that died

The callbacks run on PortAudio's threads and never wait on anything: the input callback copies
the block and hands it to the event loop with ``call_soon_threadsafe``; the output callback
pulls from the ``OutputBuffer`` (a short lock). Each device opens at a rate it supports
(its default first: many microphones only do 44.1 or 48 kHz) and with as few channels as it
allows; the pipeline's 16 kHz mono is reached with a streaming soxr resampler.

Device selection (``select_device``) and the xrun clock (``ClockXrunCounter``) are pure, so
they are tested without hardware. Everything that touches PortAudio runs on one daemon thread
(``_PortAudioThread``), never on the event loop: a sound server that hangs cannot freeze the
conversation, and cannot keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import soxr

from .audio_file import float_to_int16
from .playback import OutputBuffer

logger = logging.getLogger(__name__)

Kind = Literal["input", "output"]

PORTAUDIO_PACKAGE = "libportaudio2"
"""The Debian/Ubuntu package that provides the PortAudio library."""


class DeviceError(Exception):
    """No usable audio device, a bad device choice, or PortAudio is missing. ``str()`` is one
    line that says what to do."""


def import_sounddevice() -> Any:
    """``sounddevice``, or a DeviceError naming the system package to install."""
    try:
        import sounddevice
    except OSError as e:  # "PortAudio library not found"
        raise DeviceError(
            f"{e}: install the system package {PORTAUDIO_PACKAGE} (sudo apt-get install {PORTAUDIO_PACKAGE})"
        ) from None
    return sounddevice


# --- what is plugged in ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    """Hertz."""
    default_input: bool = False
    default_output: bool = False

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def label(self) -> str:
        return f"[{self.index}] {self.name} ({self.hostapi})"


def list_devices(sd: Any | None = None) -> list[DeviceInfo]:
    sd = sd or import_sounddevice()
    hostapis = sd.query_hostapis()
    default_in, default_out = _default_indices(sd)
    return [
        DeviceInfo(
            index=i,
            name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]),
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_samplerate=float(d["default_samplerate"]),
            default_input=i == default_in,
            default_output=i == default_out,
        )
        for i, d in enumerate(sd.query_devices())
    ]


def _default_indices(sd: Any) -> tuple[int, int]:
    try:
        default_in, default_out = sd.default.device
    except (TypeError, ValueError):
        default_in = default_out = sd.default.device
    return int(default_in if default_in is not None else -1), int(default_out if default_out is not None else -1)


def parse_device_spec(value: str | int | None) -> int | str | None:
    """``"3"`` is an index; anything else is a name (or part of one)."""
    if value is None or isinstance(value, int):
        return value
    value = value.strip()
    return int(value) if value.isdigit() else value


def select_device(devices: Sequence[DeviceInfo], spec: int | str | None, kind: Kind) -> DeviceInfo:
    """The device ``spec`` names, among those with ``kind`` channels.

    ``None``: the default (else the first usable one). An int: that index. A string: the one
    device whose name contains it, case-insensitively; an exact name wins over partial ones.
    Anything else is a DeviceError that lists the candidates.
    """
    flag = "--input-device" if kind == "input" else "--output-device"
    what = "microphone" if kind == "input" else "speaker"
    usable = [d for d in devices if d.channels(kind) > 0]
    if not usable:
        raise DeviceError(
            f"no {what} found (no device with {kind} channels). Plug one in, or start the sound server (PulseAudio/PipeWire)"
        )
    if spec is None:
        for d in usable:
            if d.default_input if kind == "input" else d.default_output:
                return d
        return usable[0]
    if isinstance(spec, int):
        for d in devices:
            if d.index == spec:
                if d.channels(kind) > 0:
                    return d
                raise DeviceError(f"{flag} {spec}: {d.label()} has no {kind} channels. {kind.capitalize()} devices: {_labels(usable)}")
        raise DeviceError(f"{flag} {spec}: no device with that index. {kind.capitalize()} devices: {_labels(usable)}")
    wanted = spec.casefold()
    exact = [d for d in usable if d.name.casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [d for d in usable if wanted in d.name.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DeviceError(f"{flag} {spec!r} is ambiguous: it matches {_labels(matches)}. Give the index or more of the name")
    raise DeviceError(f"{flag} {spec!r}: no {what} has that in its name. {kind.capitalize()} devices: {_labels(usable)}")


def _labels(devices: Sequence[DeviceInfo]) -> str:
    return ", ".join(d.label() for d in devices)


def format_device_table(devices: Sequence[DeviceInfo]) -> str:
    """The ``voxloop devices`` listing: one row per device, defaults marked."""
    rows = [("index", "name", "host API", "in", "out", "default rate", "")]
    for d in devices:
        marks = [m for m, on in (("default input", d.default_input), ("default output", d.default_output)) if on]
        rows.append(
            (
                str(d.index),
                d.name,
                d.hostapi,
                str(d.max_input_channels),
                str(d.max_output_channels),
                f"{d.default_samplerate:.0f} Hz",
                " <- " + ", ".join(marks) if marks else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    right = {0, 3, 4, 5}
    lines = []
    for r in rows:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(6)]
        lines.append(("  ".join(cells) + r[6]).rstrip())
    return "\n".join(lines)


RATE_PREFERENCE = (48000, 44100, 16000, 32000, 22050, 96000, 8000)
"""Tried after the device's default rate, in this order."""


def choose_rate(default_rate: float, supports: Callable[[int], bool], preferred: Sequence[int] = RATE_PREFERENCE) -> int:
    """The device's default rate if it opens at it, else the first of ``preferred`` it takes."""
    candidates = [int(default_rate)] if default_rate else []
    candidates += [r for r in preferred if r not in candidates]
    for rate in candidates:
        if supports(rate):
            return rate
    raise DeviceError(f"the device opens at none of {', '.join(map(str, candidates))} Hz")


def choose_channels(max_channels: int, supports: Callable[[int], bool]) -> int:
    """Mono if the device allows it, else stereo, else all its channels (mixed down later)."""
    for n in dict.fromkeys([1, 2, max_channels]):
        if 0 < n <= max_channels and supports(n):
            return n
    raise DeviceError(f"the device opens with none of 1..{max_channels} channels")


# --- xruns by the clock ----------------------------------------------------------------------


class ClockXrunCounter:
    """Counts the gaps in a stream by comparing the frames it moved with the wall clock.

    Some host APIs (PulseAudio through ALSA among them) never raise the overflow/underflow
    flags. Here the *lag* (frames the clock says should have moved, minus frames that did) is
    tracked against a floor: jitter moves it by a callback period or two; a real gap (frames
    lost while the stream stalled) raises it for good. A rise of more than ``tolerance_s`` seen
    on two updates in a row is one xrun, and the floor moves up to it. The floor may also creep
    up by ``drift_ppm`` of the elapsed time, so that a sound card whose clock runs a little slow
    is not reported every few minutes.
    """

    def __init__(self, sample_rate: int, tolerance_s: float = 0.1, drift_ppm: float = 1000.0) -> None:
        self.sample_rate = sample_rate
        self.tolerance = tolerance_s * sample_rate
        self.drift = drift_ppm * 1e-6
        self.count = 0
        self.reset()

    def reset(self) -> None:
        """A new stream: start over at its first callback."""
        self._t0: float | None = None
        self._frames0 = 0
        self._floor = 0.0
        self._last_t = 0.0
        self._suspect = False

    def update(self, frames_total: int, at: float) -> int:
        """``frames_total`` moved by the stream as of its callback at monotonic time ``at``.
        Returns the xruns newly counted (0 or 1)."""
        if self._t0 is None:
            self._t0, self._frames0, self._last_t = at, frames_total, at
            return 0
        lag = (at - self._t0) * self.sample_rate - (frames_total - self._frames0)
        dt = max(0.0, at - self._last_t)
        self._last_t = at
        self._floor = min(lag, self._floor + self.drift * dt * self.sample_rate)
        if lag - self._floor > self.tolerance:
            if self._suspect:
                self._suspect = False
                self._floor = lag
                self.count += 1
                return 1
            self._suspect = True
        else:
            self._suspect = False
        return 0


# --- running PortAudio off the event loop ----------------------------------------------------


class _PortAudioThread:
    """One daemon thread for every PortAudio call that may block (open, close, re-initialise)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], asyncio.AbstractEventLoop, asyncio.Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="portaudio", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, loop, future = job
            try:
                result = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
                resolve_from_thread(loop, future, None, e)
            else:
                resolve_from_thread(loop, future, result, None)

    async def call(self, fn: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((fn, loop, future))
        return await asyncio.wait_for(asyncio.shield(future), timeout_s)

    def close(self) -> None:
        self._jobs.put(None)


def resolve_from_thread(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    """Settle ``future`` (of ``loop``) from another thread; a no-op once the loop has closed."""
    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop has closed: nobody is waiting any more
        pass


# --- the duplex device -----------------------------------------------------------------------


@dataclass
class DeviceStats:
    """What the sound system did during a session."""

    input_overflows: int = 0
    """Input blocks PortAudio flagged as overflowed (audio lost before we got it)."""
    input_gaps: int = 0
    """Input gaps found by counting frames against the clock."""
    output_underflows: int = 0
    """Output blocks PortAudio flagged as underflowed (the speaker ran dry)."""
    output_gaps: int = 0
    """Output gaps found by counting frames against the clock."""
    stalls: int = 0
    """Times a device stopped delivering (unplugged, sound server gone)."""
    reopens: int = 0
    """Times PortAudio was re-initialised and the devices reopened."""
    input_blocks: int = 0
    dropped_blocks: int = 0
    """Microphone blocks the pipeline's full input queue refused."""
    reference_late: int = 0
    """Times a microphone block came before the speaker's callback had written its reference
    and waited for it (``ReferenceRing``)."""
    reference_shifts: int = 0
    """Times the pairing of the microphone with what the speaker played had to move."""

    def summary(self) -> str:
        return (
            f"input overflows {self.input_overflows + self.input_gaps} (flagged {self.input_overflows}, by clock {self.input_gaps}), "
            f"output underflows {self.output_underflows + self.output_gaps} (flagged {self.output_underflows}, by clock {self.output_gaps}), "
            f"device stalls {self.stalls}, reopens {self.reopens}, dropped mic blocks {self.dropped_blocks}, "
            f"echo reference late {self.reference_late} (shifted {self.reference_shifts})"
        )


@dataclass
class DeviceEvent:
    kind: str
    """``"opened"``, ``"lost"`` (stopped delivering) or ``"back"``."""
    message: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Streams:
    """One opening of the two devices."""

    generation: int
    input_info: DeviceInfo
    output_info: DeviceInfo
    input_rate: int
    input_channels: int
    output_channels: int
    input_latency_s: float
    output_latency_s: float = 0.0
    input_stream: Any = None
    output_stream: Any = None
    resampler: Any = None
    reference: ReferenceRing | None = None
    """What the speaker stream played, for the echo canceller."""
    cushion_s: float = 0.0
    """How far behind the speaker's newest block the reference is read (``ReferenceRing``)."""
    opened_at: float = field(default_factory=time.monotonic)

    @property
    def echo_delay_ms(self) -> float:
        """From a reference sample being paired with a microphone block to its echo being
        captured: both devices' latencies as PortAudio reports them, less the cushion."""
        return 1000 * (self.input_latency_s + self.output_latency_s - self.cushion_s)

    def describe(self, pipeline_rate: int, output_rate: int) -> str:
        ch = f", {self.input_channels} ch mixed to mono" if self.input_channels > 1 else ""
        rs = f" -> {pipeline_rate} Hz" if self.input_rate != pipeline_rate else ""
        return (
            f"microphone {self.input_info.name} ({self.input_info.hostapi}, {self.input_rate} Hz{rs}{ch}), "
            f"speaker {self.output_info.name} ({self.output_info.hostapi}, {output_rate} Hz)"
        )


class ReferenceRing:
    """What the output callback wrote, handed to the event loop at the pipeline's rate.

    The callback only copies into a preallocated ring and then advances a counter (one int
    store: no lock, nothing that waits). The event loop reads what is new, resamples it to
    the pipeline's rate and pairs it, sample for sample, with the microphone blocks.

    Once the speaker has played a sound, the pairing keeps its offset: the echo canceller and
    the double-talk detector learn the echo's delay against it, and both devices count samples
    on their clocks, so the n-th sample played is heard the same number of samples into the
    recording for as long as neither stalls. *When* the callbacks run varies (PulseAudio runs
    them in bursts, in either order), so pairing by arrival moved the pairing a block at a time:
    once mid-session, AEC3 then passed the echo (0-4 dB instead of 60) for a whole reply, which
    paused five times. So:

    - until the speaker plays a sound, a microphone block that finds too little reference moves
      the pairing (the callbacks' order settles; nothing is learnt yet);
    - at the first sound the pairing starts from what the speaker has just written, a cushion
      behind (so a block rarely waits), not from what it wrote ahead when it started (paired by
      count from then, the reference came 120 ms after its echo);
    - from then on, a block whose reference is not written yet waits for it (``take`` says
      None; ask again once the speaker has written);
    - only a block that waited longer than the speaker's buffer (``force``: the speaker stalled
      and played silence meanwhile) or a backlog over ``max_backlog_s`` (the microphone
      stalled) moves the pairing after that.
    """

    def __init__(
        self, output_rate: int, pipeline_rate: int, capacity_s: float = 2.0, max_backlog_s: float = 1.5,
        cushion_s: float = 0.0, stats: DeviceStats | None = None,
    ) -> None:  # fmt: skip
        self.pipeline_rate = pipeline_rate
        self._ring = np.zeros(int(output_rate * capacity_s), dtype=np.int16)
        self._written = 0
        """Samples (output rate) the callback has written in total."""
        self._read = 0
        self._resampler = (
            soxr.ResampleStream(output_rate, pipeline_rate, 1, dtype="float32") if output_rate != pipeline_rate else None
        )
        self._pending = np.zeros(0, dtype=np.int16)
        """Reference at the pipeline rate not yet paired with a microphone block..."""
        self._have = 0
        """...and where it ends, counted from the first sample the speaker wrote (pipeline rate)."""
        self._next = 0
        """The reference sample the next microphone block starts with."""
        self._heard = False
        """The speaker has played something other than silence since it (re)started."""
        self._max_backlog = int(max_backlog_s * pipeline_rate)
        self._cushion = int(cushion_s * pipeline_rate)
        self.stats = stats or DeviceStats()
        """Counts ``reference_late`` and ``reference_shifts``."""

    def write(self, samples: np.ndarray) -> None:
        """Audio thread: keep what the speaker is about to play (int16 mono)."""
        size = len(self._ring)
        samples = samples[-size:]
        start = self._written % size
        first = min(len(samples), size - start)
        self._ring[start : start + first] = samples[:first]
        self._ring[: len(samples) - first] = samples[first:]
        self._written += len(samples)

    def take(self, n: int, force: bool = False) -> np.ndarray | None:
        """Event loop: ``n`` samples of reference (pipeline rate) for an ``n``-sample microphone
        block, or None if the speaker has not written them yet (ask again). ``force``: give up
        waiting; silence for what is missing, and the pairing starts over."""
        self._read_new()
        if self._have - self._next > self._max_backlog + n:  # the microphone stalled: keep the pairing recent
            logger.info("echo reference: %d ms behind the speaker; pairing anew", 1000 * (self._have - self._next) // self.pipeline_rate)
            self._next = self._have - (self._max_backlog + n)
            self.stats.reference_shifts += 1
        self._pending = self._pending[len(self._pending) - (self._have - self._next) :]
        if self._have - self._next >= n:
            out, self._pending = self._pending[:n], self._pending[n:]
            self._next += n
            return out
        if self._heard and not force:
            return None
        if self._heard:  # it stalled past its buffer, and played silence meanwhile
            logger.info("echo reference: the speaker stalled; pairing anew")
            self.stats.reference_shifts += 1
            self._heard = False
        # Not written yet (nothing but silence played so far, or the speaker stalled): what is
        # there, then silence; what comes next pairs with the next block.
        out = np.concatenate([self._pending, np.zeros(n - len(self._pending), dtype=np.int16)])
        self._pending = np.zeros(0, dtype=np.int16)
        self._next = self._have
        return out

    def _read_new(self) -> None:
        written, size = self._written, len(self._ring)
        start = max(self._read, written - size)
        self._read = written
        if written <= start:
            return
        fresh = self._ring[np.arange(start, written) % size]
        if self._resampler is not None:
            fresh = float_to_int16(self._resampler.resample_chunk(fresh.astype(np.float32) / 32768))
        if not self._heard and fresh.any():  # the first sound: paired from here on, a cushion behind
            self._heard = True
            self._next = self._have - self._cushion
            self._pending = np.concatenate([np.zeros(max(0, self._cushion - len(self._pending)), dtype=np.int16), self._pending])
        self._pending = np.concatenate([self._pending, fresh])
        self._have += len(fresh)


class SoundDeviceDuplex:
    """The chosen (or default) microphone and speaker, opened as two PortAudio streams.

    ``start()`` opens them: from then on the microphone is metered and its last
    ``preroll_s`` kept, the speaker plays silence. ``run()`` (the session's Device protocol)
    hands the microphone to the pipeline and the speaker to ``output`` until ``stop()``.
    A watchdog runs from ``start()`` to the end.
    """

    def __init__(
        self,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        sample_rate: int = 16000,
        block_ms: int = 20,
        *,
        output: OutputBuffer | None = None,
        latency: float | str = 0.1,
        stall_s: float = 2.0,
        reopen_after_s: float = 2.5,
        start_grace_s: float = 5.0,
        retry_s: float = 1.0,
        preroll_s: float = 0.5,
        on_event: Callable[[DeviceEvent], None] | None = None,
        sounddevice: Any = None,
    ) -> None:
        """``latency``: PortAudio's suggested latency, seconds (or "low"/"high"); 0.1 s rides out
        a busy machine where "low" (40 ms on PulseAudio) underruns. ``stall_s``: no callback for
        this long is a stopped device (PulseAudio moving a stream to another source pauses it
        for about 1.5 s, which is not one). ``reopen_after_s``: a
        device still silent after this long (or whose stream has ended) is reopened, every
        ``retry_s`` until it works. ``start_grace_s``: time a fresh stream gets to deliver its
        first block (PulseAudio can take 1.5 s). ``sounddevice``: the module to use (a fake
        that implements its interface, in tests)."""
        self.input_spec = parse_device_spec(input_device)
        self.output_spec = parse_device_spec(output_device)
        self.sample_rate = sample_rate
        self.block_ms = block_ms
        self.output = output
        self.latency = latency
        self.stall_s = stall_s
        self.reopen_after_s = reopen_after_s
        self.start_grace_s = start_grace_s
        self.retry_s = retry_s
        self.on_event = on_event
        self.stats = DeviceStats()
        self.level_db = -120.0
        """Level of the latest microphone block, dBFS."""
        self.description = ""
        self.output_rate = 0
        """Hertz the speaker plays at; fixed at the first opening (the OutputBuffer's rate)."""
        self._sd: Any = sounddevice
        self._pa: _PortAudioThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: _Streams | None = None
        self._generation = 0
        self._stop = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self._sink: Callable[[np.ndarray, float, np.ndarray | None], None] | None = None
        self._preroll: collections.deque[tuple[np.ndarray, float, np.ndarray | None]] = collections.deque(
            maxlen=max(1, int(preroll_s * 1000 / block_ms))
        )
        self._position = 0
        """Samples at the pipeline rate delivered so far: the session's timeline."""
        self._held: collections.deque[tuple[np.ndarray, float, float]] = collections.deque()
        """Microphone blocks (samples, timeline seconds, when they came) waiting for the speaker
        to write their reference (``ReferenceRing``)."""
        self._want_reference = False
        """A block is waiting: the speaker's callback asks the event loop to pair it."""
        # Written by the callbacks (plain ints and floats: no locks needed).
        self._in_frames = 0
        self._in_last = 0.0
        self._out_frames = 0
        self._out_last = 0.0
        self._in_clock = ClockXrunCounter(sample_rate)
        self._out_clock = ClockXrunCounter(sample_rate)
        self._down_since: float | None = None
        self._next_retry = 0.0
        self._on_echo_delay: Callable[[float], None] | None = None

    # --- public -----------------------------------------------------------------------------

    async def start(self) -> str:
        """Open both devices and start the watchdog. Returns a one-line description."""
        if self._pa is not None:  # started already (the streams may be in the middle of a reopen)
            return self.description
        self._loop = asyncio.get_running_loop()
        self._sd = self._sd or import_sounddevice()
        self._pa = _PortAudioThread()
        try:
            streams = await self._pa.call(self._open)
        except BaseException:
            self._pa.close()
            self._pa = None
            raise
        self._adopt(streams)
        self._watchdog = asyncio.create_task(self._watch(), name="device-watchdog")
        self._emit("opened", self.description)
        return self.description

    def stop(self) -> None:
        self._stop.set()

    async def run(
        self,
        on_input: Callable[[np.ndarray, float, np.ndarray | None], None],
        settle: Callable[[], Awaitable[None]] | None,
        finished: Callable[[], bool],
    ) -> None:
        try:
            await self.start()
            for block, at_s, reference in self._preroll:
                on_input(block, at_s, reference)
            self._preroll.clear()
            self._sink = on_input
            await self._stop.wait()
        finally:
            self._sink = None
            await self.close()

    async def close(self) -> None:
        """Stop the watchdog, close the streams (giving up on a hung device after 1 s)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        streams, self._streams = self._streams, None
        if self._pa is not None:
            if streams is not None:
                try:
                    await self._pa.call(lambda: _close_streams(streams), timeout_s=1.0)
                except (asyncio.TimeoutError, Exception) as e:  # noqa: BLE001 - a dying device must not block the exit
                    logger.warning("closing the audio devices failed or hung (%s); leaving them", e or "timeout")
            self._pa.close()
            self._pa = None

    def follow_echo_delay(self, set_delay_ms: Callable[[float], None]) -> None:
        """Tell ``set_delay_ms`` the devices' echo delay (input + output latency, ms) now and
        whenever the devices are reopened."""
        self._on_echo_delay = set_delay_ms
        if self._streams is not None:
            set_delay_ms(self._streams.echo_delay_ms)

    @property
    def timeline_s(self) -> float:
        return self._position / self.sample_rate

    @property
    def device_down(self) -> bool:
        return self._down_since is not None

    # --- opening (on the PortAudio thread) --------------------------------------------------

    def _open(self, reinitialise: bool = False) -> _Streams:
        sd = self._sd
        if reinitialise:
            sd._terminate()
            sd._initialize()
        try:
            devices = list_devices(sd)
        except sd.PortAudioError as e:
            raise DeviceError(f"PortAudio cannot list the devices ({e})") from None
        in_info = select_device(devices, self.input_spec, "input")
        out_info = select_device(devices, self.output_spec, "output")

        def input_ok(rate: int, channels: int) -> bool:
            return _settings_ok(sd, sd.check_input_settings, in_info.index, rate, channels)

        def output_ok(rate: int, channels: int) -> bool:
            return _settings_ok(sd, sd.check_output_settings, out_info.index, rate, channels)

        try:
            in_rate = choose_rate(in_info.default_samplerate, lambda r: opens_at(sd, "input", in_info.index, r, in_info.max_input_channels))
            in_channels = choose_channels(in_info.max_input_channels, lambda n: input_ok(in_rate, n))
        except DeviceError as e:
            raise DeviceError(f"microphone {in_info.label()}: {e}. Pick another with --input-device (see voxloop devices)") from None
        if not self.output_rate:
            try:
                self.output_rate = choose_rate(
                    out_info.default_samplerate, lambda r: opens_at(sd, "output", out_info.index, r, out_info.max_output_channels)
                )
            except DeviceError as e:
                raise DeviceError(f"speaker {out_info.label()}: {e}. Pick another with --output-device (see voxloop devices)") from None
        out_rate = self.output_rate
        try:
            out_channels = choose_channels(out_info.max_output_channels, lambda n: output_ok(out_rate, n))
        except DeviceError as e:
            raise DeviceError(f"speaker {out_info.label()} at {out_rate} Hz: {e}") from None

        self._generation += 1
        generation = self._generation
        streams = _Streams(generation, in_info, out_info, in_rate, in_channels, out_channels, 0.0)
        if in_rate != self.sample_rate:
            streams.resampler = soxr.ResampleStream(in_rate, self.sample_rate, 1, dtype="float32")
        loop = self._loop
        assert loop is not None
        stats = self.stats

        def input_callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            now = time.monotonic()
            self._in_frames += frames
            self._in_last = now
            if status.input_overflow:
                stats.input_overflows += 1
            try:
                loop.call_soon_threadsafe(self._deliver, indata.copy(), generation, now)
            except RuntimeError:  # the loop is closing
                pass

        def output_callback(outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            self._out_frames += frames
            self._out_last = time.monotonic()
            if status.output_underflow:
                stats.output_underflows += 1
            output = self.output
            if output is None:
                samples = np.zeros(frames, dtype=np.int16)
            else:
                # When these samples will be heard, on the session's timeline (approximately:
                # the newest microphone sample plus both devices' latencies).
                ahead = max(0.0, time_info.outputBufferDacTime - time_info.currentTime) if time_info.currentTime else 0.0
                samples = output.read(frames, at_s=self._position / self.sample_rate + streams.input_latency_s + ahead)
            if streams.reference is not None:
                streams.reference.write(samples)  # silence too: the pairing counts samples
                if self._want_reference:
                    try:
                        loop.call_soon_threadsafe(self._pair, generation)
                    except RuntimeError:  # the loop is closing
                        pass
            if outdata.shape[1] == 1:
                outdata[:, 0] = samples
            else:
                outdata[:] = samples[:, None]

        try:
            streams.input_stream = sd.InputStream(
                device=in_info.index,
                samplerate=in_rate,
                channels=in_channels,
                dtype="float32",
                blocksize=in_rate * self.block_ms // 1000,
                latency=self.latency,
                callback=input_callback,
            )
            streams.input_latency_s = float(streams.input_stream.latency)
            streams.output_stream = sd.OutputStream(
                device=out_info.index,
                samplerate=out_rate,
                channels=out_channels,
                dtype="int16",
                blocksize=out_rate * self.block_ms // 1000,
                latency=self.latency,
                callback=output_callback,
            )
            self._in_clock = ClockXrunCounter(in_rate)
            self._out_clock = ClockXrunCounter(out_rate)
            streams.output_latency_s = float(streams.output_stream.latency)
            # Two blocks of cushion (sound servers run the callbacks in bursts of two), but never
            # more than a quarter of the echo's delay: the reference must reach the canceller
            # before its echo does.
            streams.cushion_s = min(2 * self.block_ms / 1000, (streams.input_latency_s + streams.output_latency_s) / 4)
            streams.reference = ReferenceRing(out_rate, self.sample_rate, cushion_s=streams.cushion_s, stats=self.stats)
            self._in_frames = self._out_frames = 0
            self._in_last = self._out_last = 0.0
            streams.opened_at = time.monotonic()
            streams.input_stream.start()
            streams.output_stream.start()
        except (sd.PortAudioError, ValueError) as e:
            _close_streams(streams)
            raise DeviceError(f"cannot open {in_info.label()} / {out_info.label()} ({e})") from None
        return streams

    def _adopt(self, streams: _Streams) -> None:
        while self._held:  # blocks of the streams being replaced: their reference will not come
            samples, at_s, _ = self._held.popleft()
            self._hand(samples, at_s, np.zeros(len(samples), dtype=np.int16))
        self._want_reference = False
        self._streams = streams
        self.description = streams.describe(self.sample_rate, self.output_rate)
        logger.debug("streams opened (generation %d): %s", streams.generation, self.description)
        logger.info(
            "device latency: microphone %.0f ms, speaker %.0f ms; echo reference read %.0f ms behind the speaker",
            1000 * streams.input_latency_s, 1000 * streams.output_latency_s, 1000 * streams.cushion_s,
        )  # fmt: skip
        if self._on_echo_delay is not None:
            self._on_echo_delay(streams.echo_delay_ms)

    # --- the microphone, on the event loop --------------------------------------------------

    def _deliver(self, block: np.ndarray, generation: int, captured: float) -> None:
        streams = self._streams
        if streams is None or generation != streams.generation:
            return  # a late block of a stream that has been replaced
        self.stats.input_blocks += 1
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        if len(mono):
            self.level_db = float(10 * np.log10(np.mean(np.square(mono, dtype=np.float64)) + 1e-12))
        if streams.resampler is not None:
            mono = streams.resampler.resample_chunk(mono)
        if not len(mono):
            return
        samples = float_to_int16(mono)
        at_s = self._position / self.sample_rate
        self._position += len(samples)
        if streams.reference is None:
            self._hand(samples, at_s, None)
            return
        self._held.append((samples, at_s, captured))
        self._pair(generation)

    def _pair(self, generation: int) -> None:
        """Hand on the waiting microphone blocks whose reference the speaker has written (or
        that waited longer than the speaker's buffer holds: it stalled)."""
        streams = self._streams
        if streams is None or generation != streams.generation or streams.reference is None:
            return
        give_up_s = streams.output_latency_s + 2 * self.block_ms / 1000
        while self._held:
            samples, at_s, since = self._held[0]
            reference = streams.reference.take(len(samples), force=time.monotonic() - since > give_up_s)
            if reference is None:
                if not self._want_reference:
                    self.stats.reference_late += 1
                self._want_reference = True
                return
            self._held.popleft()
            self._hand(samples, at_s, reference)
        self._want_reference = False

    def _hand(self, samples: np.ndarray, at_s: float, reference: np.ndarray | None) -> None:
        sink = self._sink
        if sink is None:
            self._preroll.append((samples, at_s, reference))
            return
        sink(samples, at_s, reference)

    # --- the watchdog -----------------------------------------------------------------------

    async def _watch(self, period_s: float = 0.25) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await self._check(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("device watchdog failed")

    def _health(self, now: float) -> str | None:
        """None if both devices deliver; else which one has stopped."""
        streams = self._streams
        if streams is None:
            return "microphone"
        for name, last, stream in (
            ("microphone", self._in_last, streams.input_stream),
            ("speaker", self._out_last, streams.output_stream),
        ):
            if stream is None or not stream.active:
                return name
            if last == 0.0:
                if now - streams.opened_at > self.start_grace_s:
                    return name
                if self._down_since is not None:
                    return name  # reopened, but nothing yet: not back
            elif now - last > self.stall_s:
                return name
        return None

    async def _check(self, now: float) -> None:
        if self._in_last:
            self.stats.input_gaps += self._in_clock.update(self._in_frames, self._in_last)
        if self._out_last:
            self.stats.output_gaps += self._out_clock.update(self._out_frames, self._out_last)
        down = self._health(now)
        if down is None:
            if self._down_since is not None:
                took = now - self._down_since
                self._down_since = None
                self._emit("back", f"audio is back after {took:.1f} s: {self.description}")
            return
        if self._down_since is None:
            self._down_since = now
            self._next_retry = now + self.reopen_after_s
            self.stats.stalls += 1
            self._emit(
                "lost",
                f"the {down} stopped delivering audio (unplugged, or the sound server restarted?). "
                "The conversation is kept; waiting for the device to come back",
            )
            return
        streams = self._streams
        dead = streams is None or not (streams.input_stream and streams.input_stream.active) or not (
            streams.output_stream and streams.output_stream.active
        )
        if (dead or now - self._down_since >= self.reopen_after_s) and now >= self._next_retry:
            self._next_retry = now + self.retry_s
            await self._reopen()

    async def _reopen(self) -> None:
        assert self._pa is not None
        old, self._streams = self._streams, None

        def reopen() -> _Streams:
            if old is not None:
                _close_streams(old)
            return self._open(reinitialise=True)

        try:
            streams = await self._pa.call(reopen, timeout_s=5.0)
        except (DeviceError, asyncio.TimeoutError) as e:
            logger.debug("reopening the audio devices failed: %s", e or "timeout")
            return
        except Exception as e:  # noqa: BLE001 - PortAudio errors of any kind: try again later
            logger.debug("reopening the audio devices failed: %r", e)
            return
        self.stats.reopens += 1
        self._adopt(streams)

    def _emit(self, kind: str, message: str) -> None:
        if kind == "lost":
            logger.warning(message)
        else:
            logger.info(message)
        if self.on_event is not None:
            self.on_event(DeviceEvent(kind, message))


def opens_at(sd: Any, kind: Kind, index: int, rate: int, max_channels: int) -> bool:
    """Device ``index`` opens at ``rate`` with some channel count (mono, stereo, or all)."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    return any(
        _settings_ok(sd, check, index, rate, n) for n in dict.fromkeys([1, 2, max_channels]) if 0 < n <= max_channels
    )


def _settings_ok(sd: Any, check: Callable[..., None], device: int, rate: int, channels: int) -> bool:
    try:
        check(device=device, samplerate=rate, channels=channels)
    except (sd.PortAudioError, ValueError):  # not supported
        return False
    return True


def _close_streams(streams: _Streams) -> None:
    for stream in (streams.input_stream, streams.output_stream):
        if stream is None:
            continue
        with contextlib.suppress(Exception):  # a dead device may fail either; it is closed anyway
            stream.abort()
        with contextlib.suppress(Exception):
            stream.close()
