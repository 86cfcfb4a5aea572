"""The user's notes, in a local SQLite file.

WAL journal and ``synchronous=FULL``: each write is one transaction, so a crash or a power cut
leaves the notes as they were before or after it, never half-written. Ids are stable (a
deleted note's number is not given to the next one) and are what the user hears: "note 3".
After "delete all notes" numbering starts again at 1.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxloop.pipeline.private import create_private_file

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class NotesError(Exception):
    """The notes file cannot be opened or written; the message says which file and what to do."""


@dataclass(frozen=True)
class Note:
    id: int
    text: str
    created: float
    """Unix seconds."""


class NotesStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        """Opened at first use: a session that takes no note creates no file."""
        self._lock = threading.RLock()
        """One connection, used by commands on the event loop and by tools on their thread."""

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                create_private_file(self.path)  # 0600 in a 0700 folder; its -wal and -shm follow
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(_SCHEMA)
            except (OSError, sqlite3.Error) as e:
                raise NotesError(f"{self.path}: cannot open the notes database ({e}). Check the path set as notes_db under [assistant]") from None
            self._conn = conn
        return self._conn

    def _write(self, *statements: tuple[str, tuple[object, ...]]) -> sqlite3.Cursor:
        with self._lock:
            return self._transaction(statements)

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db().execute(sql, args).fetchall()

    def _transaction(self, statements: tuple[tuple[str, tuple[object, ...]], ...]) -> sqlite3.Cursor:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            cursor = None
            for sql, args in statements:
                cursor = db.execute(sql, args)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        assert cursor is not None
        return cursor

    def add(self, text: str) -> Note:
        text = text.strip()
        if not text:
            raise ValueError("a note needs some text")
        created = time.time()
        cursor = self._write(("INSERT INTO notes (text, created) VALUES (?, ?)", (text, created)))
        note = Note(int(cursor.lastrowid or 0), text, created)
        logger.info("note %d added", note.id)
        return note

    def _exists(self) -> bool:
        """Reads of a store never written answer at once, without creating the file (creating
        it costs fsyncs, and a command's matching must not write)."""
        return self._conn is not None or self.path.exists()

    def next_id(self) -> int:
        """The number the next note will get."""
        if not self._exists():
            return 1
        row = next(iter(self._read("SELECT seq FROM sqlite_sequence WHERE name = 'notes'")), None)
        return (int(row[0]) if row else 0) + 1

    def list(self) -> list[Note]:
        if not self._exists():
            return []
        rows = self._read("SELECT id, text, created FROM notes ORDER BY id")
        return [Note(*row) for row in rows]

    def get(self, note_id: int) -> Note | None:
        if not self._exists():
            return None
        row = next(iter(self._read("SELECT id, text, created FROM notes WHERE id = ?", (note_id,))), None)
        return None if row is None else Note(*row)

    def delete(self, note_id: int) -> bool:
        """True if there was such a note."""
        cursor = self._write(("DELETE FROM notes WHERE id = ?", (note_id,)))
        return cursor.rowcount > 0

    def delete_all(self) -> int:
        """How many notes were deleted. Numbering starts again at 1."""
        count = len(self.list())
        self._write(("DELETE FROM notes", ()), ("DELETE FROM sqlite_sequence WHERE name = 'notes'", ()))
        return count

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
