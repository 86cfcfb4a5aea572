"""Errors raised by the audio edges::

    AudioFileError      an audio file is missing, empty, not decodable or holds no audio
"""

from __future__ import annotations

from pathlib import Path


class AudioFileError(Exception):
    """An audio file cannot be used; ``str()`` is one line: ``"<path>: <reason>. <hint>"``."""

    def __init__(self, path: Path | str, reason: str, hint: str) -> None:
        self.path = Path(path)
        self.reason = reason
        """What is wrong, e.g. ``"the file holds no audio"``."""
        self.hint = hint
        """What the user can do about it."""
        # One line even if libsndfile's own message carries newlines.
        message = " ".join(f"{self.path}: {reason}. {hint}".split())
        super().__init__(message)
