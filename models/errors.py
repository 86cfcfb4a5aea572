"""Errors raised by the engines::

    ModelError
     ├── ModelFileError      a model file is missing, truncated or not what it claims to be
     ├── MissingDependency   an optional engine package is not installed
     └── EngineError         an engine failed while running (the turn can recover)
"""

from __future__ import annotations

from pathlib import Path


class ModelError(Exception):
    pass


class ModelFileError(ModelError):
    def __init__(self, path: Path | str, problem: str, hint: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.hint = hint
        super().__init__(f"{self.path}: {problem}. {hint}")


class MissingDependency(ModelError):
    pass


class EngineError(ModelError):
    pass
