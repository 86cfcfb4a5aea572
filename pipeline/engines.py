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
    llm: registry.LLMChoice | None = None
    """Which local model and why (None with a server)."""

    def llm_line(self) -> str:
        """The language model in one line: "language model: NAME (why)"."""
        if self.llm_url:
            return f"language model: the server at {self.llm_url}"
        assert self.llm is not None
        why = f" ({self.llm.reason})" if self.llm.reason else ""
        return f"language model: {self.llm.name}{why}"


def check_models(config: Config) -> ModelPlan:
    """Raises ModelFileError with the path and a fix for anything unusable."""
    m = config.models
    if m.llm_api_key_env:
        from voxloop.models.openai_llm import api_key_from_env

        api_key_from_env(m.llm_api_key_env)  # a missing key fails here, before anything opens
    llm = None if m.llm_url else registry.choose_llm(m.llm)
    return ModelPlan(
        asr_dir=registry.resolve_asr(m.asr),
        llm_path=llm.path if llm is not None else None,
        llm_url=m.llm_url or None,
        voice=registry.resolve_voice(m.voice),
        llm=llm,
    )


def make_llm(config: Config, llm_path: Path | None, llm_url: str | None) -> LLM:
    """The language model: a server at ``llm_url``, else the GGUF at ``llm_path`` (checked)."""
    from voxloop.models.llama_llm import LlamaConfig, LlamaCppLLM
    from voxloop.models.openai_llm import OpenAICompatibleLLM, api_key_from_env

    if llm_url:
        key = api_key_from_env(config.models.llm_api_key_env)
        return OpenAICompatibleLLM(llm_url, model=config.models.llm_model_name, api_key=key)
    assert llm_path is not None
    return LlamaCppLLM(llm_path, LlamaConfig(n_threads=config.threads.llm))


def make_tts(config: Config, voice: registry.VoiceFiles) -> TTS:
    from voxloop.models.piper_tts import PiperConfig, PiperTTS

    return PiperTTS(voice, PiperConfig(threads=config.threads.tts))


def load_engines(config: Config, plan: ModelPlan, warm: bool = True) -> Engines:
    from voxloop.models.whisper_asr import FasterWhisperASR, WhisperConfig

    t = config.threads
    load_ms: dict[str, float] = {}

    started = time.perf_counter()
    asr = FasterWhisperASR(plan.asr_dir, WhisperConfig(cpu_threads=t.asr))
    load_ms["asr"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    llm = make_llm(config, plan.llm_path, plan.llm_url)
    load_ms["llm"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    tts = make_tts(config, plan.voice)
    load_ms["tts"] = (time.perf_counter() - started) * 1000

    if warm:
        for name, engine in (("asr", asr), ("llm", llm), ("tts", tts)):
            started = time.perf_counter()
            engine.warm_up()
            load_ms[f"{name}_warm"] = (time.perf_counter() - started) * 1000
    logger.info("engines ready: %s", {k: round(v) for k, v in load_ms.items()})
    return Engines(asr, llm, tts, load_ms)
