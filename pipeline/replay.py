"""``voxloop replay``: the live pipeline, driven by a recording, written to files.

Writes ``conversation.wav`` (user left, assistant right, one timeline) and ``turns.jsonl``
(one object per turn with texts, timeline positions, latency and stage timings).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from voxloop.voice.audio_file import probe
from voxloop.voice.playback import OutputBuffer
from voxloop.voice.recording import ConversationRecorder
from voxloop.voice.replay_device import ReplayDevice
from voxloop.voice.vad import EndpointerConfig

from .command_stage import commands_from_config
from .config import Config
from .dialog import Dialog
from .engines import Engines
from .session import SessionConfig, VoiceSession
from .signals import install_stop_handlers
from .turn_log import TurnLog, TurnRecord

logger = logging.getLogger(__name__)

TIMELINE_RATE = 16000
"""Hertz of conversation.wav: the rate the pipeline hears at."""


@dataclass
class ReplayResult:
    out_dir: Path
    conversation: Path
    turns_path: Path
    turns: list[TurnRecord]
    duration_s: float


def default_out_dir(input_path: Path) -> Path:
    """``<stem>.voxloop`` in the current folder, numbered if it is already taken."""
    base = Path.cwd() / f"{input_path.stem}.voxloop"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{input_path.stem}.voxloop-{n}")
    return candidate


def session_config(config: Config, barge_in_default: bool) -> SessionConfig:
    turns = config.turns
    return SessionConfig(
        barge_in=barge_in_default if turns.barge_in is None else turns.barge_in,
        vad_aggressiveness=turns.vad_aggressiveness,
        endpointer=EndpointerConfig(hangover_ms=turns.hangover_ms),
        max_reply_tokens=config.dialog.max_reply_tokens,
    )


async def replay(
    input_path: Path, out_dir: Path, engines: Engines, config: Config, *, fast: bool = False, handle_signals: bool = False
) -> ReplayResult:
    probe(input_path)  # fail on a bad file before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    conversation = out_dir / "conversation.wav"
    turns_path = out_dir / "turns.jsonl"
    turns_path.unlink(missing_ok=True)

    log = TurnLog(turns_path)
    output = OutputBuffer(TIMELINE_RATE)
    recorder = ConversationRecorder(conversation, TIMELINE_RATE)
    dialog = Dialog(config.dialog.system_prompt, config.dialog.max_history_chars)
    session = VoiceSession(
        engines.asr,
        engines.llm,
        engines.tts,
        output,
        log,
        dialog,
        session_config(config, barge_in_default=True),
        commands_from_config(config.assistant),
    )
    device = ReplayDevice(input_path, output, recorder, paced=not fast)
    if handle_signals:
        install_stop_handlers(session.stop)
    try:
        await session.run(device, fast=fast)
    finally:
        # Keep what was recorded even when stopped early.
        recorder.close()
        log.close()
    return ReplayResult(out_dir, conversation, turns_path, log.finished, recorder.frames / TIMELINE_RATE)


def run_replay(
    input_path: Path, out_dir: Path, engines: Engines, config: Config, *, fast: bool = False, handle_signals: bool = False
) -> ReplayResult:
    return asyncio.run(replay(input_path, out_dir, engines, config, fast=fast, handle_signals=handle_signals))
