"""One record per conversational turn, written as JSON lines as each turn ends.

The file is append-only and flushed after every turn, so a crash or a kill loses at most the
turn in progress, never one already written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass
class TurnRecord:
    turn_id: int
    user_text: str = ""
    assistant_text: str = ""
    """What the assistant said (only the part that was heard when interrupted)."""
    user_start_s: float | None = None
    user_end_s: float | None = None
    """Timeline seconds of the last voiced sample of the user's speech."""
    reply_start_s: float | None = None
    """Timeline seconds of the first audible sample of the reply."""
    reply_end_s: float | None = None
    interrupted: bool = False
    pauses: int = 0
    """Times the reply was held because a voice came over it (and then resumed or cut)."""
    stages: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage: endpoint, asr, llm_first_token, first_sentence, tts_first_chunk."""
    error: str | None = None
    thinking: str = ""
    """The model's private reasoning on this turn (never spoken, never sent back to it)."""
    command: str | None = None
    """The command that answered this turn without the LLM ("time", "timer_set", ...), or
    "announcement" for a turn the assistant started itself (a timer going off)."""
    parroted: int = 0
    """Clauses of the model's reply left unsaid because they repeated the user's words or an
    earlier reply (when all were, a fallback was said instead)."""

    @property
    def latency_ms(self) -> float | None:
        if self.user_end_s is None or self.reply_start_s is None:
            return None
        return (self.reply_start_s - self.user_end_s) * 1000

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None, nd: int = 3) -> float | None:
            return None if x is None else round(x, nd)

        latency = self.latency_ms
        return {
            "turn": self.turn_id,
            "user_text": self.user_text,
            "assistant_text": self.assistant_text,
            "user_start_s": r(self.user_start_s),
            "user_end_s": r(self.user_end_s),
            "reply_start_s": r(self.reply_start_s),
            "reply_end_s": r(self.reply_end_s),
            "latency_ms": None if latency is None else round(latency, 1),
            "interrupted": self.interrupted,
            "pauses": self.pauses,
            "stages": {k: round(v, 1) for k, v in self.stages.items()},
            "error": self.error,
            "thinking": self.thinking,
            "command": self.command,
            "parroted": self.parroted,
        }


class TurnLog:
    def __init__(self, path: Path | None, on_finish: Callable[[TurnRecord], None] | None = None) -> None:
        self.path = path
        self.on_finish = on_finish
        self._open: dict[int, TurnRecord] = {}
        self.finished: list[TurnRecord] = []
        self._file: TextIO | None = open(path, "a", encoding="utf-8") if path is not None else None

    def get(self, turn_id: int) -> TurnRecord:
        if turn_id not in self._open:
            self._open[turn_id] = TurnRecord(turn_id)
        return self._open[turn_id]

    def stage(self, turn_id: int, name: str, ms: float) -> None:
        self.get(turn_id).stages.setdefault(name, ms)

    def is_open(self, turn_id: int) -> bool:
        return turn_id in self._open

    def rename(self, old: int, new: int) -> None:
        """The utterance of ``old`` goes on as ``new`` (a retracted head start)."""
        record = self._open.pop(old, None)
        if record is not None:
            # What the retracted attempt measured or suffered is not this turn's.
            record.turn_id = new
            record.stages.clear()
            record.error = None
            record.user_text = ""
            self._open[new] = record

    def discard(self, turn_id: int) -> None:
        """The turn turned out to be no turn (noise, no words)."""
        self._open.pop(turn_id, None)

    def finish(self, turn_id: int) -> TurnRecord | None:
        record = self._open.pop(turn_id, None)
        if record is None:
            return None
        self.finished.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        if self.on_finish is not None:
            self.on_finish(record)
        return record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
