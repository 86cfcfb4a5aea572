"""How fast and how loud the assistant speaks, changed by voice ("speak slower", "louder")."""

from __future__ import annotations

from dataclasses import dataclass, replace

RATE_STEP = 1.15
VOLUME_STEP = 1.3


@dataclass(frozen=True)
class VoiceSettings:
    rate: float = 1.0
    """Speaking speed relative to the voice's own: 1.25 is a quarter faster."""
    volume: float = 1.0
    """Gain on the synthesized samples (clipped at full scale)."""

    MIN_RATE = 0.6
    MAX_RATE = 1.7
    MIN_VOLUME = 0.25
    MAX_VOLUME = 2.5

    def clamped(self) -> VoiceSettings:
        return VoiceSettings(
            min(max(self.rate, self.MIN_RATE), self.MAX_RATE), min(max(self.volume, self.MIN_VOLUME), self.MAX_VOLUME)
        )

    def changed(self, change: str) -> VoiceSettings:
        """``change``: "slower", "faster", "louder" or "softer"; clamped to the limits."""
        factor = {"slower": 1 / RATE_STEP, "faster": RATE_STEP, "louder": VOLUME_STEP, "softer": 1 / VOLUME_STEP}[change]
        if change in {"slower", "faster"}:
            return replace(self, rate=self.rate * factor).clamped()
        return replace(self, volume=self.volume * factor).clamped()
