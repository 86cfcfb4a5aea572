"""Is someone talking over the assistant? Decided on the raw microphone, not the cleaned one.

The echo canceller (WebRTC AEC3) is conservative while the assistant speaks: its suppressor
holds the near end down during the first few hundred milliseconds of double talk (measured
-16 dB with a -6 dB echo, over -50 dB with no echo at all, as with a headset). A voice detector
behind it hears the user late and without their first word. So barge-in looks at the
microphone before the canceller, compared with what the assistant is playing, band by band
(16 mel bands, 150 Hz to 7 kHz, of 20 ms windows every 10 ms):

- the *echo bound* of a band is what the played audio can put into it: the played power at
  the echo's delay (``voice.echo_delay``, learnt from the assistant talking alone), or shortly
  before it with the room's decay (``tail_db_per_frame``), times the band's *coupling*;
- the coupling is learnt while the assistant talks alone: the band's highest ratio of captured
  to bounded power, forgotten at ``erl_decay_db_per_s`` and allowed to grow only by
  ``erl_rise_db_per_frame`` (a voice starting over the echo climbs faster, and is caught
  before it can teach the detector that it is echo);
- the microphone's own noise floor (``noise_window_ms``) is added to every bound: a room's
  steady noise is no one talking;
- a 10 ms frame is *double talk* when WebRTC's VAD calls it voiced and either more than
  ``share`` of the microphone's power lies ``margin_db`` over the bounds, or (once the delay is
  known) its bands stand ``excess_db`` over them all told: a voice that starts softly under a
  loud echo carries little of the power but fills the bands the echo leaves empty.
  ``onset_frames`` of those in a row mark the start; ``release_ms`` without them, the end;
- once the delay is known, the same test also runs on the *residual*: the microphone less the
  echo that a linear filter predicts from the played audio (``voice.echo_predictor``), against
  a bound on what that filter leaves of the echo, learnt the same way. A bound must hold for
  the loudest echo a band may carry; the prediction follows the echo frame by frame, so a voice
  that opens under the bound in every band still stands over what the predictor leaves.

Until the delay is known, every band's bound is its loudest played power of the last
``window_ms`` (any delay, any tail) with the cautious margin and share: a voice must then be
louder than the echo could ever be. A user's voice differs from the assistant's in time and
pitch, so with the delay known it stands out in some bands at once, even when it is no louder
overall than the echo.

Pure logic on int16 frames; no threads, no clocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .echo_delay import EchoDelayConfig, EchoDelayEstimator
from .echo_predictor import EchoPredictor
from .vad import WebRtcVad


@dataclass
class DoubleTalkConfig:
    sample_rate: int = 16000
    frame_ms: int = 10
    window_ms: int = 400
    """How far back played audio can still be heard: the room's delay and tail. The sound
    card's own delay (``set_delay_ms``) comes on top."""
    bands: int = 16
    margin_db: float = 3.0
    """How far over the echo bound a band's power must be to count as someone talking..."""
    share: float = 0.3
    """...and the share of the microphone's power that must be so, once the delay is known."""
    cautious_margin_db: float = 6.0
    cautious_share: float = 0.5
    """The same before the delay is known (bounds from the whole window)."""
    tail_db_per_frame: float = 1.5
    """Decay of the room's reverberation assumed after the echo's delay (RT60 0.4 s)."""
    delay_jitter_frames: int = 2
    """Frames before the estimated delay also counted (the estimate's own error)."""
    onset_frames: int = 3
    """Frames of double talk in a row that make an onset (30 ms)."""
    excess_db: float = 15.0
    """Once the delay is known, a frame is also double talk when its bands stand, all told,
    this many dB over their bounds and ``margin_db`` (one band 15 dB, or five bands 3 dB).
    Measured (``scripts/double_talk_bench.py``): 10 and 12 dB take the echo for a voice on a
    -55 dBFS microphone; 20 dB hears voices 10-40 ms later at the 95th percentile."""
    release_ms: int = 200
    """Quiet that ends a stretch of double talk."""
    initial_erl_db: float = 0.0
    """Echo coupling assumed before any has been measured: as loud as the speaker (cautious)."""
    erl_decay_db_per_s: float = 6.0
    """How fast a coupling that is not heard again is forgotten."""
    erl_rise_db_per_frame: float = 1.0
    """How fast the learnt coupling may grow: slower than a voice's onset."""
    min_erl_db: float = -60.0
    """The least coupling ever assumed (it grows from there by a factor, so never from zero)."""
    learn_below_share: float = 0.25
    learn_below_excess_db: float = 7.5
    """Frames with more of their power over the bounds than this, or bands this far over them
    all told, teach nothing (they may be someone starting to talk)."""
    settle_ms: int = 800
    """Played audio heard before any onset is reported: the coupling is learnt (and the echo
    canceller converges) over the assistant's first words."""
    gap_ms: int = 1500
    """Silence in the played audio that still counts as the assistant's turn (between sentences)."""
    far_floor_dbfs: float = -50.0
    """Played audio quieter than this is silence: nothing to talk over."""
    suppression_floor_db: float = -35.0
    """Least gain of a band that is all echo, in ``near`` (a hard zero sounds worse to ASR)."""
    suppression_margin_db: float = 3.0
    """``near`` takes off the echo bound this much over (measured: echo alone down by 30 dB
    instead of 11, a voice over it within 1 dB)."""
    noise_window_ms: int = 1500
    """The microphone's noise floor is its least (smoothed) power over this long, per band."""
    predictor: bool = True
    """Once the delay is known, also test the *residual*: the microphone less the echo that
    ``voice.echo_predictor`` predicts from the played audio. A voice that starts 5-10 dB under
    the echo's bound in every band stands well over what the predictor leaves of the echo.
    Measured (``scripts/double_talk_bench.py``, the same audio with and without): p95 120 ->
    80 ms on a -65 dBFS microphone, 190 -> 120 ms on a -55 dBFS one; no false onsets."""
    predictor_step: float = 0.5
    """The predictor's step (proportionate NLMS): 1 learns fastest, smaller is steadier."""
    predictor_reg: float = 10.0
    """The predictor's regularisation, in power per bin of white noise 20 dB under
    ``far_floor_dbfs``: quiet played bins teach it little (1 to 100 measured the same)."""
    predictor_trust_db: float = 8.0
    """The residual is tested in the bands whose echo due now is at most this far under the
    loudest played audio in the window. Measured at -55 dBFS: 10 dB, a false onset in 36
    replies (p95 100 ms); 6 dB, p95 140 ms."""
    predictor_warmup_ms: int = 500
    """After a silence longer than ``gap_ms`` (a new reply), the residual is tested only once
    the predictor has learnt from this much of it: the echo path may have moved between replies
    (a device reopened, the laptop moved), and a prediction a few milliseconds off in time is
    wrong in every bin above 1 kHz. (The live shifts that prompted it were the microphone's
    pairing with the reference moving, since fixed in ``voice.devices.ReferenceRing``; it was
    kept, as benchmarked, for paths that really move.)"""
    predictor_decay_db_per_s: float = 6.0
    """How fast what the predictor leaves of the echo is forgotten (it leaves less as it
    learns). 12 dB/s: a false onset in 36 replies."""
    delay: EchoDelayConfig = field(default_factory=EchoDelayConfig)


def mel_band_edges(sample_rate: int, n_fft: int, bands: int, low_hz: float = 150.0, high_hz: float = 7000.0) -> np.ndarray:
    """FFT bin edges of ``bands`` bands equally spaced on the mel scale."""

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595 * np.log10(1 + np.asarray(f) / 700)

    edges_hz = 700 * (10 ** (np.linspace(mel(low_hz), mel(high_hz), bands + 1) / 2595) - 1)
    return np.round(edges_hz * n_fft / sample_rate).astype(int)


class DoubleTalkDetector:
    def __init__(self, config: DoubleTalkConfig | None = None, vad: WebRtcVad | None = None) -> None:
        self.config = c = config or DoubleTalkConfig()
        self.frame = c.sample_rate * c.frame_ms // 1000
        self.vad = vad or WebRtcVad(3, c.sample_rate)
        self._n_fft = 2 * self.frame
        self._window = np.sqrt(np.hanning(self._n_fft + 1)[:-1])
        self._edges = mel_band_edges(c.sample_rate, self._n_fft, c.bands)
        self._prev_far = np.zeros(self.frame)
        self._prev_mic = np.zeros(self.frame)
        self._overlap = np.zeros(self.frame)
        self._bin_band = np.clip(np.searchsorted(self._edges, np.arange(self._n_fft // 2 + 1), side="right") - 1, 0, c.bands - 1)
        """The band each FFT bin's gain comes from (bins outside the bands: the nearest one)."""
        self._min_gain = 10 ** (c.suppression_floor_db / 20)
        self._over_subtract = 10 ** (c.suppression_margin_db / 10)
        self.near = np.zeros(self.frame, dtype=np.int16)
        """The microphone with the echo bounds taken off, band by band: what the user said,
        for the recognizer while they talk over the assistant. One frame late (10 ms)."""
        self.kept = 1.0
        """Share of the last frame's power that ``near`` keeps: how much of it is not echo."""
        self._floor = (32768.0 * 10 ** (c.far_floor_dbfs / 20)) ** 2
        """Mean square of the quietest played frame that counts."""
        # A band's bound never drops below what white noise 20 dB under the floor puts in it.
        noise = np.random.default_rng(0).standard_normal(self._n_fft) * np.sqrt(self._floor) / 10
        noise_spectrum = self._spectrum(noise[: self.frame], noise[self.frame :])
        self._band_floor = float(np.mean(self._band_powers(noise_spectrum)))
        self._bin_floor = float(np.mean(np.abs(noise_spectrum) ** 2))
        self._trust = 10 ** (c.predictor_trust_db / 10)
        self._warmup = c.predictor_warmup_ms // c.frame_ms
        self._residual_learnt = 0
        """Frames of the current reply the predictor has learnt from."""
        self._residual_decay = 10 ** (-c.predictor_decay_db_per_s * c.frame_ms / 1000 / 10)
        self._smoothed = np.zeros(c.bands)
        self._recent = np.full((c.noise_window_ms // c.frame_ms, c.bands), np.inf)
        """The microphone's smoothed band powers of the last ``noise_window_ms`` (a ring: only
        their least matters, not their order)."""
        self._recent_at = 0
        self._noise = np.zeros(c.bands)
        """The microphone's own floor per band: the least of ``_recent``. A room's steady noise
        is no one talking, and in the bands the echo leaves empty it would otherwise stand over
        the bounds."""
        self._margins = {True: 10 ** (c.margin_db / 10), False: 10 ** (c.cautious_margin_db / 10)}
        self._shares = {True: c.share, False: c.cautious_share}
        self._decay = 10 ** (-c.erl_decay_db_per_s * c.frame_ms / 1000 / 10)
        self._rise = 10 ** (c.erl_rise_db_per_frame / 10)
        self._min_coupling = 10 ** (c.min_erl_db / 10)
        self._settle = c.settle_ms // c.frame_ms
        self._resize(c.window_ms)
        self._run = 0
        self._quiet = 0
        self._since_far = 10**9
        """Frames since audio was last played."""
        self.active = False
        """Someone is talking over the played audio now."""
        self.share_over = 0.0
        """Share of the last frame's power over the echo bounds (for tests and tuning)."""
        self.excess_db = 0.0
        """dB of the last frame's bands over the bounds, summed (for tests and tuning)."""
        self.residual_share = 0.0
        self.residual_excess_db = 0.0
        """The same two for the residual (the microphone less the predicted echo)."""
        self.mid_reply: Callable[[], bool] = lambda: False
        """Whether more of a reply is waiting to play (set by whoever owns the playback)."""

    def _resize(self, span_ms: float) -> None:
        c = self.config
        lags = max(1, int(span_ms // c.frame_ms))
        self._far = np.zeros((lags, c.bands))
        """Played band powers, newest first."""
        self._far_level = np.zeros(lags)
        """Played mean square per frame, newest first."""
        self._tail = 10 ** (-c.tail_db_per_frame * np.arange(lags) / 10)
        initial = 10 ** (c.initial_erl_db / 10)
        self._coupling = {False: np.full(c.bands, initial), True: np.full(c.bands, initial)}
        """Per band, against the whole window's loudest (False) and against the delayed (True)."""
        self._settle_ratios: dict[bool, list[np.ndarray]] = {False: [], True: []}
        """The couplings heard while settling: the cautious start is dropped to them then."""
        self._heard_far = 0
        """Frames with played audio in the window so far."""
        self.delay = EchoDelayEstimator(lags, c.delay)
        self.predictor = EchoPredictor(lags, self._n_fft // 2 + 1, c.predictor_step, c.predictor_reg * self._bin_floor) if c.predictor else None
        self._residual_coupling = np.full(c.bands, initial)
        """Per band, the residual's coupling to the delayed bound: how much echo the predictor
        leaves (all of it at first, less as it learns)."""

    def set_delay_ms(self, ms: float) -> None:
        """The sound card's delay from playing to capturing: the echo comes that much later.
        Starts the learning over (the devices changed)."""
        self._resize(max(0.0, ms) + self.config.window_ms)

    @property
    def delay_ms(self) -> float | None:
        """The echo delay learnt from the audio, once it is clear."""
        d = self.delay.delay
        return None if d is None else d * self.config.frame_ms

    def _spectrum(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """The 20 ms window ending with ``current``."""
        return np.fft.rfft(np.concatenate([previous, current]) * self._window)

    def _band_powers(self, spectrum: np.ndarray) -> np.ndarray:
        cumulative = np.concatenate([[0.0], np.cumsum(np.abs(spectrum) ** 2)])
        return cumulative[self._edges[1:]] - cumulative[self._edges[:-1]]

    def push(self, mic: np.ndarray, played: np.ndarray) -> bool | None:
        """One frame each (int16, ``frame`` samples, same moment). True at an onset of double
        talk, False at its end, None otherwise."""
        c = self.config
        far_now = played.astype(np.float64)
        mic_now = mic.astype(np.float64)
        far_spectrum = self._spectrum(self._prev_far, far_now)
        far_bands = self._band_powers(far_spectrum)
        mic_spectrum = self._spectrum(self._prev_mic, mic_now)
        mic_bands = self._band_powers(mic_spectrum)
        self._prev_far, self._prev_mic = far_now, mic_now
        self._far = np.roll(self._far, 1, axis=0)
        self._far[0] = far_bands
        self._far_level = np.roll(self._far_level, 1)
        self._far_level[0] = float(np.mean(far_now**2))
        residual_bands = None
        if self.predictor is not None:
            # Where the prediction is off (bins it has not learnt yet), the microphone itself.
            residual_bands = np.minimum(self._band_powers(self.predictor.push(far_spectrum, mic_spectrum)), mic_bands)
        self.delay.observe(10 * np.log10(far_bands.sum() + 1.0), 10 * np.log10(mic_bands.sum() + 1.0))
        # Smoothed first: the minimum of a noisy band's raw powers lies well under its mean.
        self._smoothed = 0.7 * self._smoothed + 0.3 * mic_bands
        self._recent[self._recent_at] = self._smoothed
        self._recent_at = (self._recent_at + 1) % len(self._recent)
        self._noise = self._recent.min(axis=0)
        if self._far_level.max() >= self._floor:  # played within the window: its echo may come
            self._heard_far += 1
            if self._since_far * c.frame_ms > c.gap_ms:
                self._residual_learnt = 0  # a new reply: the echo path may have moved
            self._since_far = 0
            if self._heard_far == self._settle:
                # Settled: from the cautious start straight down to what was heard (a headset's
                # silence would otherwise take seconds of slow forgetting to learn).
                # The 90th percentile, 3 dB up, not the peak: a user talking through part of it
                # would raise that.
                for aligned, ratios in self._settle_ratios.items():
                    heard = np.percentile(ratios, 90, axis=0) * 2 if ratios else self._coupling[aligned]
                    self._coupling[aligned] = np.maximum(np.minimum(self._coupling[aligned], heard), self._min_coupling)
                    ratios.clear()
        else:
            # A pause between the assistant's sentences, with more of the reply still to play,
            # is still its turn, and the canceller still holds a voice down in it.
            self._since_far += 1
            if self._since_far * c.frame_ms > c.gap_ms or not self.mid_reply():
                self._suppress(mic_spectrum, mic_bands, None)
                return self._end() if self.active else None
        aligned = self.delay.delay is not None
        bounds = {False: np.maximum(self._far.max(axis=0), self._band_floor), True: self._delayed_bounds()}
        echo = self._coupling[aligned] * bounds[aligned] + self._noise
        if self._heard_far >= self._settle:
            self._suppress(mic_spectrum, mic_bands, echo)
        else:
            # While settling the coupling is a cautious guess that would take a voice for echo,
            # so ``near`` keeps everything (a user's first word, if an onset follows). But the
            # echo canceller has not converged either: ``kept`` says how much of the microphone
            # stands over the loudest echo the window could carry, which is none of the
            # assistant's first words. (No onset is reported now, so nothing is lost but
            # a voice in the first ``settle_ms`` of the session's first reply.)
            self._suppress(mic_spectrum, mic_bands, None)
            self.kept = self._kept(mic_bands, self._gains(mic_bands, self._coupling[False] * bounds[False] + self._noise))
        bound = self._margins[aligned] * echo
        over = np.maximum(0.0, mic_bands - bound)
        self.share_over = float(over.sum() / (mic_bands.sum() + 1e-9))
        self.excess_db = float(10 * np.log10(np.maximum(mic_bands / bound, 1.0)).sum())
        above = self.share_over > self._shares[aligned] or (aligned and self.excess_db > c.excess_db)
        self.residual_share = self.residual_excess_db = 0.0
        trusted = self._trusted(bounds) if residual_bands is not None else None
        if residual_bands is not None and aligned and self._residual_learnt >= self._warmup:
            # The same test on the residual, against what the predictor leaves of the echo; only
            # in the bands whose echo due now is among the loudest played in the window. (At the
            # start of a sentence after a pause the echo due is faint, and what the predictor
            # still gets wrong about the loud audio since then would stand over its bound.)
            residual_bound = self._margins[True] * (self._residual_coupling * bounds[True] + self._noise)
            residual_bound[~trusted] = np.inf
            self.residual_share = float(np.maximum(0.0, residual_bands - residual_bound).sum() / (residual_bands.sum() + 1e-9))
            self.residual_excess_db = float(10 * np.log10(np.maximum(residual_bands / residual_bound, 1.0)).sum())
            above = above or self.residual_share > self._shares[True] or self.residual_excess_db > c.excess_db
        talking = above and self.vad.is_speech(mic)
        if not talking and not self.active:
            self._learn(mic_bands, residual_bands, bounds, trusted)
        if talking:
            self._run += 1
            self._quiet = 0
            if not self.active and self._run >= c.onset_frames and self._heard_far >= self._settle:
                self.active = True
                return True
        else:
            self._run = 0
            if self.active:
                self._quiet += 1
                if self._quiet * c.frame_ms >= c.release_ms:
                    return self._end()
        return None

    def _suppress(self, spectrum: np.ndarray, mic_bands: np.ndarray, echo: np.ndarray | None) -> None:
        """``near``: this window with each band scaled by how much of it is not echo
        (overlap-add of 20 ms windows, 10 ms apart)."""
        self.kept = 1.0
        if echo is not None:
            power_gains = self._gains(mic_bands, echo)
            self.kept = self._kept(mic_bands, power_gains)
            spectrum = spectrum * np.sqrt(power_gains)[self._bin_band]
        y = np.fft.irfft(spectrum, self._n_fft) * self._window
        out = self._overlap + y[: self.frame]
        self._overlap = y[self.frame :]
        self.near = np.clip(np.round(out), -32768, 32767).astype(np.int16)

    def _gains(self, mic_bands: np.ndarray, echo: np.ndarray) -> np.ndarray:
        """Per band, the share of its power that is not ``echo`` (over-subtracted, floored)."""
        return np.clip(1.0 - self._over_subtract * echo / (mic_bands + 1e-9), self._min_gain**2, 1.0)

    @staticmethod
    def _kept(mic_bands: np.ndarray, gains: np.ndarray) -> float:
        """The share of the frame's power that ``gains`` keep."""
        return float((mic_bands * gains).sum() / (mic_bands.sum() + 1e-9))

    def _delayed_bounds(self) -> np.ndarray:
        """Per band: the loudest played power from the echo's delay back, with the room's decay."""
        start = max(0, self.delay.lag - self.config.delay_jitter_frames)
        delayed = self._far[start:] * self._tail[: len(self._far) - start, None]
        return np.maximum(delayed.max(axis=0), self._band_floor)

    def _learn(
        self, mic_bands: np.ndarray, residual_bands: np.ndarray | None, bounds: dict[bool, np.ndarray], trusted: np.ndarray | None
    ) -> None:
        """The assistant is talking alone (as far as anyone can tell): learn its echo."""
        c = self.config
        clean = self.share_over <= c.learn_below_share and self.excess_db <= c.learn_below_excess_db
        for aligned, bound in bounds.items():
            ratio = mic_bands / bound
            if self._heard_far < self._settle:
                self._settle_ratios[aligned].append(ratio)
            self._coupling[aligned] = self._track(self._coupling[aligned], ratio, clean, self._decay)
        if residual_bands is not None:
            tracked = self._track(self._residual_coupling, residual_bands / bounds[True], clean, self._residual_decay)
            self._residual_coupling = np.where(trusted, tracked, self._residual_coupling)
            if clean and self.residual_share <= c.learn_below_share and self.residual_excess_db <= c.learn_below_excess_db:
                self.predictor.adapt()
                self._residual_learnt += 1
        if clean:
            self.delay.learn()  # the onsets from silence and into it say the most

    def _trusted(self, bounds: dict[bool, np.ndarray]) -> np.ndarray:
        """The bands where the residual says something: their echo due now is among the
        loudest the predictor is fed. Its errors come from all it is fed; where the echo due is
        faint (a sentence starting after a pause, the room's tail after one) they stand over
        what it leaves of that echo."""
        return bounds[True] * self._trust >= bounds[False]

    def _track(self, coupling: np.ndarray, ratio: np.ndarray, clean: bool, decay: float) -> np.ndarray:
        """The loudest coupling heard, forgotten slowly (echo peaks come at every syllable and
        renew it; a headset's never do); it may rise only so fast, and only on a clean frame."""
        rise = (ratio > coupling) & clean
        return np.where(rise, np.minimum(ratio, coupling * self._rise), coupling * decay)

    def _end(self) -> bool:
        self.active = False
        self._run = self._quiet = 0
        return False
