"""``voxloop replay``: the live pipeline, driven by a recording, written to files.

Writes ``conversation.wav`` (user left, assistant right, one timeline) and ``turns.jsonl``
(one object per turn with texts, timeline positions, latency and stage timings).

With an echo path (``echo=EchoPathConfig(...)``) the assistant's audio is mixed back into the
input as a microphone in the room would hear it; conversation.wav's left channel is then what
the microphone picked up (the user plus the echo), before echo cancellation.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from voxloop.voice.audio_file import probe
from voxloop.voice.echo_path import EchoPathConfig
from voxloop.voice.playback import OutputBuffer
from voxloop.voice.recording import ConversationRecorder
from voxloop.voice.replay_device import ReplayDevice
from voxloop.voice.vad import EndpointerConfig

from .command_stage import commands_from_config
from .config import Config, default_state_dir
from .dialog import Dialog, Exchange
from .engines import Engines
from .persona_runtime import PersonaRuntime
from .session import SessionConfig, VoiceSession
from .signals import install_stop_handlers
from .turn_log import TurnLog, TurnRecord

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

TIMELINE_RATE = 16000
"""Hertz of conversation.wav: the rate the pipeline hears at."""

KNOWLEDGE_WAIT_S = 120.0
"""Seconds a replay on the simulated clock (``fast``) waits for the persona's files to be
indexed before its first frame."""


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


def voice_session(
    engines: Engines, output: OutputBuffer, log: TurnLog, dialog: Dialog, config: Config, state_dir: Path, barge_in_default: bool
) -> VoiceSession:
    """The session the settings ask for, on these engines, with the instant commands."""
    return VoiceSession(
        engines.asr, engines.llm, engines.tts, output, log, dialog,
        session_config(config, barge_in_default), commands_from_config(config.assistant, state_dir),
    )  # fmt: skip


def session_config(config: Config, barge_in_default: bool) -> SessionConfig:
    turns = config.turns
    return SessionConfig(
        barge_in=barge_in_default if turns.barge_in is None else turns.barge_in,
        vad_aggressiveness=turns.vad_aggressiveness,
        partial_asr_ms=turns.partial_asr_ms,
        endpointer=EndpointerConfig(hangover_ms=turns.hangover_ms),
        max_reply_tokens=config.dialog.max_reply_tokens,
        echo_cancel=turns.echo_cancel,
        echo_predictor=turns.echo_predictor,
    )


async def replay(
    input_path: Path,
    out_dir: Path,
    engines: Engines,
    config: Config,
    *,
    fast: bool = False,
    handle_signals: bool = False,
    history: Sequence[Exchange] = (),
    on_exchange: Callable[[Exchange], None] | None = None,
    echo: EchoPathConfig | None = None,
    state_dir: Path | None = None,
) -> ReplayResult:
    """``history``: a saved conversation to go on from; ``on_exchange``: called as each turn
    ends; ``echo``: simulate the room between speaker and microphone (None: a headset);
    ``state_dir``: where notes and knowledge indexes live (None: ``default_state_dir()``)."""
    if echo is not None:
        echo.check()
    probe(input_path)  # fail on a bad file before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    conversation = out_dir / "conversation.wav"
    turns_path = out_dir / "turns.jsonl"
    turns_path.unlink(missing_ok=True)

    log = TurnLog(turns_path)
    output = OutputBuffer(TIMELINE_RATE)
    recorder = ConversationRecorder(conversation, TIMELINE_RATE)
    dialog = Dialog(config.dialog.system_prompt, config.dialog.max_history_chars)
    dialog.restore(history)
    state_dir = state_dir or default_state_dir()
    session = voice_session(engines, output, log, dialog, config, state_dir, barge_in_default=True)
    session.on_exchange = on_exchange
    persona = PersonaRuntime(config, state_dir)
    persona.open_knowledge()
    persona.attach(session)
    device = ReplayDevice(input_path, output, recorder, paced=not fast, echo=echo)
    if handle_signals:
        install_stop_handlers(session.stop)
    try:
        # Paced, a replay starts at once, as a live chat does, and the files are indexed while
        # it plays. On the simulated clock the first question would come before any file could
        # be read, or not, by the machine's load: it waits for the index instead.
        if fast and not await persona.wait_for_knowledge(KNOWLEDGE_WAIT_S):
            logger.warning("the knowledge files are not indexed after %g s; the replay goes on without them", KNOWLEDGE_WAIT_S)
        await session.run(device, fast=fast)
    finally:
        # Keep what was recorded even when stopped early.
        recorder.close()
        log.close()
        persona.close()
    return ReplayResult(out_dir, conversation, turns_path, log.finished, recorder.frames / TIMELINE_RATE)


def _to_the_end(coroutine_fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """A blocking twin of ``coroutine_fn``, with the same arguments: runs it on a new loop."""

    @functools.wraps(coroutine_fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return asyncio.run(coroutine_fn(*args, **kwargs))

    return run


run_replay = _to_the_end(replay)
