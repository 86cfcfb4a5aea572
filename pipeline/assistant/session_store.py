"""Conversations saved on this machine, resumable and exportable.

One SQLite file (``sessions.db`` in the state folder) in WAL mode. Each exchange is committed
as its own transaction the moment its turn ends, with a full sync, so a crash or ``kill -9``
loses at most the turn in progress::

    sessions   id, started, persona, title (the first words the user said)
    exchanges  seq, session, turn_id, at, user, reply, interrupted, kind

``SessionRecorder`` is the callback the voice session calls as each exchange finishes: it
creates the session on the first one (a conversation with no turn leaves nothing behind).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from voxloop.pipeline.dialog import Exchange
from voxloop.pipeline.private import create_private_file

logger = logging.getLogger(__name__)

DB_NAME = "sessions.db"
TITLE_CHARS = 60
"""A session's title: the start of the user's first words, cut at a word, at most this long."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    started TEXT NOT NULL,
    persona TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS exchanges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL REFERENCES sessions(id),
    turn_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    reply TEXT NOT NULL,
    interrupted INTEGER NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_by_session ON exchanges(session, seq);
"""


class SessionStoreError(Exception):
    """The store cannot be used, or a session spec names no single session. One line."""


@dataclass(frozen=True)
class SessionInfo:
    id: str
    started: datetime.datetime
    """Local time the session began."""
    persona: str
    title: str
    turns: int


@dataclass(frozen=True)
class SavedExchange:
    turn_id: int
    """The turn's number in the run that said it (runs of a resumed session restart at 1)."""
    at: datetime.datetime
    """Local time the exchange ended."""
    user: str
    reply: str
    interrupted: bool
    kind: str
    """What answered: "llm", "command", ..."""

    def as_exchange(self) -> Exchange:
        return Exchange(self.turn_id, self.user, self.reply, self.interrupted, self.kind)


class SessionStore:
    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        try:
            create_private_file(db_path)  # 0600 in a 0700 folder; its -wal and -shm follow
            self._db = sqlite3.connect(db_path, timeout=5.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # each commit reaches the disk
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise SessionStoreError(
                f"{db_path}: cannot open the sessions database ({e}). Move it aside, or give another --state-dir"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def create(self, persona: str = "default", started: datetime.datetime | None = None) -> str:
        """A new, empty session; returns its id (8 hex digits)."""
        started = started or _now()
        with self._transaction():
            while True:
                session_id = secrets.token_hex(4)
                if self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
                    break
            self._db.execute(
                "INSERT INTO sessions (id, started, persona) VALUES (?, ?, ?)",
                (session_id, started.isoformat(timespec="seconds"), persona),
            )
        return session_id

    def append(
        self,
        session_id: str,
        exchange: Exchange,
        at: datetime.datetime | None = None,
    ) -> None:
        """Save one finished exchange, committed before this returns."""
        at = at or _now()
        with self._transaction():
            self._db.execute(
                "INSERT INTO exchanges (session, turn_id, at, user, reply, interrupted, kind) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, exchange.turn_id, at.isoformat(timespec="seconds"), exchange.user, exchange.reply,
                 int(exchange.interrupted), exchange.kind),
            )  # fmt: skip
            self._db.execute(
                "UPDATE sessions SET title = ? WHERE id = ? AND title = ''", (_title(exchange.user), session_id)
            )

    # --- reading -------------------------------------------------------------------------

    def load(self, session_id: str) -> list[SavedExchange]:
        """The session's exchanges, oldest first."""
        rows = self._query(
            "SELECT turn_id, at, user, reply, interrupted, kind FROM exchanges WHERE session = ? ORDER BY seq",
            (session_id,),
        )
        return [SavedExchange(t, datetime.datetime.fromisoformat(at), u, r, bool(i), k) for t, at, u, r, i, k in rows]

    def info(self, session_id: str) -> SessionInfo:
        rows = self._query(_INFO + " WHERE s.id = ? GROUP BY s.id", (session_id,))
        if not rows:
            raise SessionStoreError(f"no session {session_id!r} in {self.path}. 'voxloop sessions' lists them")
        return _info(rows[0])

    def list(self, limit: int | None = 20) -> list[SessionInfo]:
        """Newest first."""
        rows = self._query(_INFO + " GROUP BY s.id ORDER BY s.started DESC, s.rowid DESC LIMIT ?", (limit or -1,))
        return [_info(row) for row in rows]

    def latest(self) -> SessionInfo | None:
        newest = self.list(limit=1)
        return newest[0] if newest else None

    def resolve(self, spec: str) -> str:
        """A session id from ``spec``: an id, a unique beginning of one, or "last"."""
        spec = spec.strip()
        if spec.lower() in ("last", "latest"):
            latest = self.latest()
            if latest is None:
                raise SessionStoreError(f"no saved sessions yet in {self.path}. Start one with 'voxloop chat'")
            return latest.id
        if not spec:
            raise SessionStoreError("an empty session id. 'voxloop sessions' lists them")
        escaped = spec.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = [r[0] for r in self._query("SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\'", (escaped + "%",))]
        if spec.lower() in found:
            return spec.lower()
        if len(found) == 1:
            return str(found[0])
        if not found:
            raise SessionStoreError(f"no session {spec!r} in {self.path}. 'voxloop sessions' lists them")
        raise SessionStoreError(f"{spec!r} matches {len(found)} sessions ({', '.join(sorted(found)[:5])}). Give more of the id")

    def export_markdown(self, session_id: str) -> str:
        """The conversation as Markdown: title, date, persona, then who said what."""
        info = self.info(session_id)
        lines = [
            f"# {info.title or 'Untitled conversation'}",
            "",
            f"- Date: {info.started:%Y-%m-%d %H:%M}",
            f"- Persona: {info.persona}",
            f"- Session: {info.id}",
            "",
        ]
        for saved in self.load(session_id):
            lines += [f"**You:** {saved.user}", ""]
            cut = " *(interrupted)*" if saved.interrupted else ""
            lines += [f"**Vox:** {saved.reply}{cut}", ""]
        return "\n".join(lines)

    # --- plumbing ------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise SessionStoreError(f"{self.path}: cannot read the sessions database ({e})") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error); sqlite errors become one line."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
        except sqlite3.Error as e:
            raise SessionStoreError(f"{self.path}: cannot write to the sessions database ({e})") from None


class SessionRecorder:
    """``VoiceSession.on_exchange``: appends each finished exchange to one stored session.

    The session is created on the first exchange unless one is given (a resumed session).
    A store that fails mid-conversation is reported once and the conversation goes on.
    """

    def __init__(self, store: SessionStore, session_id: str | None = None, persona: str = "default") -> None:
        self.store = store
        self.session_id = session_id
        self.persona = persona
        self.saved = 0
        self._failed = False

    def __call__(self, exchange: Exchange) -> None:
        try:
            if self.session_id is None:
                self.session_id = self.store.create(self.persona)
            self.store.append(self.session_id, exchange)
            self.saved += 1
        except SessionStoreError as e:
            if not self._failed:
                logger.error("the conversation is no longer being saved: %s", e)
            self._failed = True


def default_db_path(state_dir: Path) -> Path:
    return state_dir / DB_NAME


_INFO = (
    "SELECT s.id, s.started, s.persona, s.title, COUNT(e.seq) FROM sessions s LEFT JOIN exchanges e ON e.session = s.id"
)


def _info(row: tuple[object, ...]) -> SessionInfo:
    session_id, started, persona, title, turns = row
    return SessionInfo(str(session_id), datetime.datetime.fromisoformat(str(started)), str(persona), str(title), int(turns))  # type: ignore[call-overload]


def _title(user: str) -> str:
    words = " ".join(user.split())
    if len(words) <= TITLE_CHARS:
        return words
    cut = words[:TITLE_CHARS].rsplit(" ", 1)[0]
    return cut + "…"


def _now() -> datetime.datetime:
    return datetime.datetime.now().astimezone().replace(microsecond=0)
