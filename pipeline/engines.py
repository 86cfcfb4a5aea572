"""Building the three engines from the settings: check every file first, then load, then warm.

Checks come first so that a bad model path fails in milliseconds with a clear line, before a
microphone opens or an output folder is created.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from voxloop.models import registry
from voxloop.models.base import ASR, LLM, TTS

from .config import Config

logger = logging.getLogger(__name__)


@dataclass
class Engines:
    asr: ASR
    llm: LLM
    tts: TTS
    load_ms: dict[str, float]


@dataclass(frozen=True)
class ModelPlan:
    """The checked files (or URL) the engines will load."""

    asr_dir: Path
    llm_path: Path | None
    llm_url: str | None
    voice: registry.VoiceFiles


def check_models(config: Config) -> ModelPlan:
    """Raises ModelFileError with the path and a fix for anything unusable."""
    m = config.models
    return ModelPlan(
        asr_dir=registry.resolve_asr(m.asr),
        llm_path=None if m.llm_url else registry.resolve_llm(m.llm),
        llm_url=m.llm_url or None,
        voice=registry.resolve_voice(m.voice),
    )


def load_engines(config: Config, plan: ModelPlan, warm: bool = True) -> Engines:
    from voxloop.models.llama_llm import LlamaConfig, LlamaCppLLM
    from voxloop.models.openai_llm import OpenAICompatibleLLM
    from voxloop.models.piper_tts import PiperConfig, PiperTTS
    from voxloop.models.whisper_asr import FasterWhisperASR, WhisperConfig

    t = config.threads
    load_ms: dict[str, float] = {}

    started = time.perf_counter()
    asr = FasterWhisperASR(plan.asr_dir, WhisperConfig(cpu_threads=t.asr))
    load_ms["asr"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    llm: LLM
    if plan.llm_path is None:
        assert plan.llm_url
        llm = OpenAICompatibleLLM(plan.llm_url, model=config.models.llm_model_name)
    else:
        llm = LlamaCppLLM(plan.llm_path, LlamaConfig(n_threads=t.llm))
    load_ms["llm"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    tts = PiperTTS(plan.voice, PiperConfig(threads=t.tts))
    load_ms["tts"] = (time.perf_counter() - started) * 1000

    if warm:
        for name, engine in (("asr", asr), ("llm", llm), ("tts", tts)):
            started = time.perf_counter()
            engine.warm_up()
            load_ms[f"{name}_warm"] = (time.perf_counter() - started) * 1000
    logger.info("engines ready: %s", {k: round(v) for k, v in load_ms.items()})
    return Engines(asr, llm, tts, load_ms)
