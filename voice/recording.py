"""Writing the conversation: user on the left channel, assistant on the right, one timeline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf


class ConversationRecorder:
    """Streams a stereo 16-bit wav to ``path``.

    The file is written under a temporary name and renamed on ``close``, so an interrupted
    run never leaves a half-written wav that looks finished.
    """

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self._file = sf.SoundFile(self._tmp, "w", samplerate=sample_rate, channels=2, subtype="PCM_16", format="WAV")
        self.frames = 0

    def write(self, user: np.ndarray, assistant: np.ndarray) -> None:
        """Both int16 mono of the same length, for the same stretch of the timeline."""
        self._file.write(np.stack([user, assistant], axis=1))
        self.frames += len(user)

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)
