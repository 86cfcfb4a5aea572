"""Transcripts in: commands answered at once, everything else on to the language model.

A transcript that is a command (``assistant.commands``) becomes a ``SpeakFrame`` for the same
turn, which the reply stage speaks without the LLM, and the exchange goes into the dialog
history so the model knows what was said. The command's side effect waits for the turn to
stand: a provisional transcript (heard at a short pause) may be taken back if the user goes
on, so its effect is held until the session calls ``confirm`` and dropped on ``retract``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .assistant.commands import CommandContext, CommandResult, Commands
from .assistant.voice_settings import VoiceSettings
from .config import AssistantConfig, ConfigError, default_state_dir
from .dialog import Dialog
from .frames import Frame, SpeakFrame, TranscriptFrame
from .stage import Stage

logger = logging.getLogger(__name__)


class CommandStage(Stage):
    name = "command"

    def __init__(self, commands: Commands, dialog: Dialog, may_confirm: Callable[[int], bool] = lambda turn_id: True) -> None:
        """``may_confirm(turn)``: the turn's words can answer a pending confirmation (the
        session says no for words that came while the assistant was talking)."""
        super().__init__()
        self.commands = commands
        self.dialog = dialog
        self._may_confirm = may_confirm
        self._held: dict[int, CommandResult] = {}
        """Commands of provisional turns, waiting for the turn to stand."""
        self._confirmed: set[int] = set()
        """Turns confirmed before their transcript got here."""
        self._voices: dict[int, VoiceSettings] = {}
        """The settings a turn's reply is spoken with ("speak slower" is said slower)."""

    async def process(self, frame: Frame) -> None:
        if not isinstance(frame, TranscriptFrame):
            await self.push(frame)
            return
        started = time.perf_counter()
        try:
            result = self.commands.handle(frame.text, from_user=self._may_confirm(frame.turn_id))
        except Exception as e:
            # A broken command (say, an unreadable notes file) must not cost the turn.
            logger.error("command failed on %r: %s", frame.text, e, exc_info=True)
            self.ctx.log.get(frame.turn_id).error = f"command: {e}"
            result = CommandResult("Sorry, I couldn't do that.", "error")
        if result is None:
            await self.push(frame)
            return
        turn_id = frame.turn_id
        record = self.ctx.log.get(turn_id)
        record.command = result.name
        self.ctx.log.stage(turn_id, "command", (time.perf_counter() - started) * 1000)
        self.dialog.begin(turn_id, frame.text).reply = result.reply
        if result.voice is not None:
            self._voices[turn_id] = result.voice
        if not frame.provisional or turn_id in self._confirmed:
            self._run(turn_id, result)
        else:
            self._held[turn_id] = result
        await self.push(SpeakFrame(turn_id, result.reply))

    def confirm(self, turn_id: int) -> None:
        """The turn stands: run its command's effect (now, or when its transcript arrives)."""
        result = self._held.pop(turn_id, None)
        if result is None:
            self._confirmed.add(turn_id)
        else:
            self._run(turn_id, result)

    def retract(self, turn_id: int) -> None:
        """The turn was taken back: its command never happened."""
        self._held.pop(turn_id, None)
        self._voices.pop(turn_id, None)
        self._confirmed.discard(turn_id)

    def voice_for(self, turn_id: int) -> VoiceSettings:
        """The rate and volume to speak ``turn_id`` with."""
        return self._voices.get(turn_id, self.commands.context.voice)

    def forget(self, turn_id: int) -> None:
        self._voices.pop(turn_id, None)
        self._held.pop(turn_id, None)
        self._confirmed.discard(turn_id)

    def _run(self, turn_id: int, result: CommandResult) -> None:
        self._confirmed.discard(turn_id)
        # A "stop" needs no effect: speaking over the reply has already cut it (barge-in).
        if result.effect is not None:
            try:
                result.effect()
            except Exception as e:
                logger.error("turn %d: command %s failed: %s", turn_id, result.name, e, exc_info=True)
                self.ctx.log.get(turn_id).error = f"command: {e}"


def commands_from_config(config: AssistantConfig, state_dir: Path | None = None) -> Commands | None:
    """The command layer the settings ask for (None when turned off); notes default to
    ``notes.db`` in ``state_dir`` (default: ``default_state_dir()``)."""
    if not config.commands:
        return None
    notes = Path(config.notes_db).expanduser() if config.notes_db else (state_dir or default_state_dir()) / "notes.db"
    try:
        context = CommandContext.create(notes, config.timezone)
    except ValueError as e:
        raise ConfigError(f"[assistant] timezone: {e}") from None
    return Commands(context)
