"""A persona's reference files, searchable offline: txt, md and pdf under its knowledge folders,
cut into passages and indexed in SQLite FTS5 (embedded, no server).

Files are read only under the configured folders: every path is resolved, a name with ``..``
or a symlink that lands outside a folder is refused, and only regular files are opened (a FIFO
would block). The index is a cache next to the other state files; it is rebuilt if corrupt and
updated incrementally (a file is read again only when its size or mtime changed).

What indexing may cost is capped while the text is read (:class:`KnowledgeLimits`): a page, a
file and a folder (files and characters) stop at their caps, a text file is read only up to
its cap, and a PDF's text is extracted in a child process (:mod:`.pdf_text`) with a memory
limit and a timeout, so a small file that expands to gigabytes of text, or a PDF that sends
the reader round in circles, costs at most the caps and is skipped with one log line.

Passages are data, not instructions: the caller fences them before they reach the prompt.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from voxloop.pipeline.private import create_private_file

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".markdown", ".pdf")
DEFAULT_STATE_DIR = Path("~/.local/state/voxloop")

KNOWLEDGE_BUDGET_CHARS = 1200
"""Passage text per question. With the bundled model's 2048-token context (about 4 characters
a token): system prompt ~75 tokens, history up to 4000 characters ~1000, the reply 120, and this
~300 plus ~25 tokens of fencing per passage, which leaves room for the question."""


class KnowledgeError(Exception):
    """The index cannot be used at all (no FTS5 in this SQLite, an unwritable database)."""


class OutsideRootsError(KnowledgeError):
    """A file name that would leave the knowledge folders (``..``, absolute, symlink out)."""


@dataclass(frozen=True)
class Passage:
    file: str
    """The file's path relative to its knowledge folder (prefixed by the folder's name when the
    persona has several folders), as it can be said to the user."""
    text: str
    score: float
    """Relevance, higher is better: how many of the question's words it holds, plus a bm25
    fraction below one. Comparable only within one search."""
    position: int = 0
    """Character offset of the passage in the file's text."""
    page: int | None = None
    """1-based page, for PDF files."""

    @property
    def source(self) -> str:
        """Where it comes from, as the prompt and the user should see it: "manual.pdf, page 2"."""
        return f"{self.file}, page {self.page}" if self.page else self.file


@dataclass(frozen=True)
class KnowledgeLimits:
    """What indexing a persona's files may cost, enforced while the text is read. A file over
    a cap is indexed up to it; a folder over its caps indexes the files that fit (in name
    order) and says once what it left out; a PDF over its time or memory limit is skipped."""

    page_chars: int = 20_000
    """Text kept from one PDF page (a dense page of a manual holds about 4 000)."""
    file_chars: int = 200_000
    """Text kept from one file, about 60 dense pages; the rest is not read."""
    folder_files: int = 2_000
    """Files taken from one knowledge folder, counted in the order they are found."""
    folder_chars: int = 20_000_000
    """Text indexed from one knowledge folder (20 MB of text: an index of about 50 MB)."""
    pdf_bytes: int = 20_000_000
    """Larger PDF files are skipped: the reader gets the whole file."""
    pdf_seconds: float = 10.0
    """Wall-clock seconds to extract one PDF's text; then the reader is killed and the file
    skipped (it is tried again at the next start)."""
    pdf_memory_bytes: int = 512 * 1024 * 1024
    """Address space of the child process that reads one PDF (``RLIMIT_AS``)."""


@dataclass
class KnowledgeConfig:
    limits: KnowledgeLimits = field(default_factory=KnowledgeLimits)
    chunk_chars: int = 400
    """Target passage length: three passages fit the prompt budget."""
    overlap_chars: int = 120
    """A passage starts with the previous one's last sentence when it is at most this long."""
    max_query_terms: int = 12
    rerank_candidates: int = 50
    """Best bm25 passages re-ranked by how many of the question's words they hold."""


@dataclass(frozen=True)
class IndexReport:
    indexed: int
    unchanged: int
    removed: int
    skipped: int
    passages: int
    """Passages in the whole index after the update."""
    seconds: float
    truncated: int = 0
    """Files indexed only up to a page or file cap."""
    full_folders: int = 0
    """Knowledge folders over their caps: the files that fit are indexed, the others left out."""
    stopped: bool = False
    """The index was closed during the update: it ended early, the rest is for the next one."""


# Function words and the words people use to point at their files ("according to my notes"):
# they match everywhere and would only blur the ranking.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves s t d ll m re ve
    according accordingly note notes file files document documents doc docs say says said tell
    told know please find look search check remember recall read hey ok okay um uh vox""".split()
)

_WORD = re.compile(r"\w+")
_PARAGRAPH = re.compile(r"(?:[^\n]|\n(?![ \t\f\r]*\n))+")
"""Runs of text without a blank line."""
_SENTENCE = re.compile(r"\S.*?(?:[.!?…]+(?=\s)|\Z)", re.S)


def knowledge_db_path(persona_id: str, state_dir: Path = DEFAULT_STATE_DIR) -> Path:
    return state_dir.expanduser() / f"knowledge-{persona_id}.db"


def query_terms(question: str, max_terms: int = 12) -> list[str]:
    """The question's content words as FTS5 phrases, each quoted so that nothing the user says
    (quotes, AND, NEAR, ``*``, ``-``, ``:``) is read as query syntax."""
    words: list[str] = []
    for word in _WORD.findall(question.lower()):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()) or word in words:
            continue
        words.append(word)
    return ['"' + w.replace('"', '""') + '"' for w in words[:max_terms]]


def fts_query(question: str, max_terms: int = 12) -> str:
    """An FTS5 MATCH string for passages with any of the question's content words."""
    return " OR ".join(query_terms(question, max_terms))


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    para_end: bool


def chunk_text(text: str, size: int = 400, overlap: int = 120) -> list[tuple[int, str]]:
    """``(offset, passage)`` pairs: sentences packed up to ``size`` characters, a passage ends
    early at a paragraph end once it is half full, and starts with the previous passage's last
    sentence when that one is at most ``overlap`` characters (so a fact cut between two
    passages is still whole in one)."""
    chunks: list[tuple[int, str]] = []

    def emit(spans: list[_Span]) -> None:
        chunks.append((spans[0].start, " ".join(text[spans[0].start : spans[-1].end].split())))

    current: list[_Span] = []
    for span in _spans(text, size):
        if current and span.end - current[0].start > size:
            emit(current)
            last = current[-1]
            keep = last.end - last.start <= overlap and not last.para_end and span.end - last.start <= size
            current = [last] if keep and len(current) > 1 else []
        current.append(span)
        if span.para_end and span.end - current[0].start >= size // 2:
            emit(current)
            current = []
    if current:
        emit(current)
    return chunks


def _spans(text: str, size: int) -> Iterator[_Span]:
    """Sentences of each paragraph; a sentence longer than ``size`` is cut at spaces."""
    for para in _PARAGRAPH.finditer(text):
        sentences = [(para.start() + m.start(), para.start() + m.end()) for m in _SENTENCE.finditer(para.group())]
        pieces = [piece for start, end in sentences for piece in _cut(text, start, end, size)]
        for i, (start, end) in enumerate(pieces):
            yield _Span(start, end, para_end=i == len(pieces) - 1)


def _cut(text: str, start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    while end - start > size:
        cut = text.rfind(" ", start + size // 2, start + size)
        cut = cut if cut > start else start + size
        yield start, cut
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield start, end


class KnowledgeIndex:
    """The FTS5 index of the files under ``roots``. Thread-safe: an executor thread may
    ``update()`` while the event loop calls ``search()``."""

    def __init__(self, db_path: Path, roots: list[Path], config: KnowledgeConfig | None = None) -> None:
        self.config = config or KnowledgeConfig()
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.db_path = Path(db_path).expanduser()
        self._lock = threading.Lock()
        """Guards the connection: one statement sequence at a time."""
        self._updating = threading.Lock()
        """One update at a time."""
        self._stop = threading.Event()
        """Set by ``close()``: an update in progress ends at the next file (or PDF poll)."""
        self._db = self._open()

    # --- database -------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            try:
                return self._connect()
            except sqlite3.DatabaseError as e:
                if "fts5" in str(e):
                    raise KnowledgeError(
                        f"this Python's SQLite {sqlite3.sqlite_version} has no FTS5, which the knowledge "
                        "search needs. Use a Python whose sqlite3 module is built with FTS5 (python.org, "
                        "distro and conda builds are)"
                    ) from None
                # The index is only a cache of the files: start it again rather than fail.
                log.warning("%s: knowledge index unreadable (%s); rebuilding it", self.db_path, e)
                self.db_path.unlink(missing_ok=True)
                return self._connect()
        except (OSError, sqlite3.DatabaseError) as e:
            raise KnowledgeError(f"{self.db_path}: cannot create the knowledge index ({e}). Check the folder's permissions") from None

    def _connect(self) -> sqlite3.Connection:
        create_private_file(self.db_path)  # 0600 in a 0700 folder; its -wal and -shm follow
        db = sqlite3.connect(self.db_path, check_same_thread=False)
        try:
            db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            # WAL: a search need not wait for an update's commit; NORMAL: a cache, a crash
            # costs at worst a rebuild. An index of an older layout is only a cache too.
            if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                db.executescript("DROP TABLE IF EXISTS passages; DROP TABLE IF EXISTS files;")
            db.executescript(
                f"""
                CREATE TABLE IF NOT EXISTS files(
                    id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, name TEXT NOT NULL,
                    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, chars INTEGER NOT NULL);
                CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5(
                    text, file_id UNINDEXED, position UNINDEXED, page UNINDEXED,
                    tokenize = 'porter unicode61');
                PRAGMA user_version = {_SCHEMA_VERSION};
                """
            )
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        """Close the database; an update running on another thread stops at its next file."""
        self._stop.set()
        with self._lock:
            self._db.close()

    def __enter__(self) -> KnowledgeIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- paths ----------------------------------------------------------------------------

    def resolve(self, name: str) -> Path:
        """The file a passage's ``file`` name stands for, refusing any name that would leave
        the knowledge folders (absolute, ``..``, or a symlink out)."""
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise OutsideRootsError(f"{name!r} is not a file under the knowledge folders")
        for root in self.roots:
            rel = Path(*parts[1:]) if len(self.roots) > 1 and parts[0] == root.name else Path(name)
            path = (root / rel).resolve()
            if path.is_relative_to(root) and path.is_file():
                return path
        raise OutsideRootsError(f"{name!r} is not a file under the knowledge folders")

    def _inside(self, path: Path) -> bool:
        return any(path.is_relative_to(root) for root in self.roots)

    def _walk(self, root: Path, seen: set[Path]) -> Iterator[tuple[Path, str, os.stat_result]]:
        """(resolved path, display name, stat) of every candidate file under ``root``, in name
        order, folder by folder; ``seen`` (shared by the roots) keeps a file to its first."""
        for folder, dirs, names in os.walk(root, followlinks=False, onerror=_log_walk_error):
            # Hidden folders are an editor's or a tool's (.git, .obsidian, .trash), not notes.
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for d in dirs:
                if os.path.islink(os.path.join(folder, d)):
                    log.info("%s: symlinked folder not followed", os.path.join(folder, d))
            for n in sorted(names):
                found = Path(folder, n)
                if n.startswith(".") or found.suffix.lower() not in SUFFIXES:
                    continue
                path = found.resolve()
                if not self._inside(path):
                    log.warning("%s: points outside the knowledge folders (%s); skipped", found, path)
                    continue
                if path in seen:
                    continue
                seen.add(path)
                try:
                    st = path.stat()
                except OSError as e:
                    log.warning("%s: cannot read (%s); skipped", found, e)
                    continue
                if not stat.S_ISREG(st.st_mode):
                    log.warning("%s: not a regular file; skipped", found)
                    continue
                rel = found.relative_to(root).as_posix()
                yield path, (f"{root.name}/{rel}" if len(self.roots) > 1 else rel), st

    # --- indexing -------------------------------------------------------------------------

    def update(self) -> IndexReport:
        """Index new and changed files, drop the ones gone; returns what it did. Run it at
        start and when the persona changes, on a worker thread: a big PDF takes a while, and
        searches go on meanwhile (each file is committed on its own). ``close()`` ends it at
        the next file."""
        began = time.perf_counter()
        counts: Counter[str] = Counter()
        with self._updating:
            with self._lock:
                if self._stop.is_set():
                    return IndexReport(0, 0, 0, 0, 0, 0.0, stopped=True)
                known = {row[0]: row[1:] for row in self._db.execute("SELECT path, id, size, mtime_ns, chars FROM files")}
            seen: set[Path] = set()
            for root in self.roots:
                self._update_folder(root, seen, known, counts)
            with self._lock:
                stopped = self._stop.is_set()
                total = 0
                if not stopped:  # else ``known`` holds files not looked at yet: keep them
                    with self._db:
                        for file_id, *_ in known.values():  # gone, or left out by a folder's caps
                            self._forget(file_id)
                        total = self._db.execute("SELECT count(*) FROM passages").fetchone()[0]
        report = IndexReport(
            counts["indexed"], counts["unchanged"], 0 if stopped else len(known), counts["skipped"], total,
            time.perf_counter() - began, counts["truncated"], counts["full_folders"], stopped,
        )  # fmt: skip
        log.info("knowledge index %s: %s", self.db_path.name, report)
        return report

    def _update_folder(self, root: Path, seen: set[Path], known: dict[str, tuple[int, int, int, int]], counts: Counter[str]) -> None:
        """Bring one knowledge folder's files up to date, within the folder's caps; what it
        keeps (indexed or unchanged) leaves ``known``."""
        limits = self.config.limits
        files = chars = 0
        over: str | None = None
        for path, name, st in self._walk(root, seen):
            if self._stop.is_set():
                return
            if files >= limits.folder_files:
                over = f"{limits.folder_files} files"
                break
            files += 1
            key = str(path)
            old = known.get(key)
            if old is not None and (old[1], old[2]) == (st.st_size, st.st_mtime_ns):
                if chars + old[3] > limits.folder_chars:
                    over = f"{limits.folder_chars} characters of text"
                    break
                del known[key]
                chars += old[3]
                counts["unchanged"] += 1
                continue
            text = self._extract(path, st.st_size)  # the slow part, outside the lock
            if text is not None and chars + text.chars > limits.folder_chars:
                over = f"{limits.folder_chars} characters of text"
                break
            with self._lock:
                if self._stop.is_set():
                    return
                with self._db:
                    if old is not None:
                        self._forget(old[0])
                    if text is not None:
                        self._store(key, name, st, text)
            known.pop(key, None)
            if text is None:
                counts["skipped"] += 1
                continue
            chars += text.chars
            counts["indexed"] += 1
            counts["truncated"] += text.truncated
        if over is not None:
            counts["full_folders"] += 1
            log.warning(
                "%s: over the folder's cap of %s; indexed what fits and left out %s and the files after it",
                root, over, name,
            )  # fmt: skip

    def _forget(self, file_id: int) -> None:
        self._db.execute("DELETE FROM passages WHERE file_id = ?", (file_id,))
        self._db.execute("DELETE FROM files WHERE id = ?", (file_id,))

    def _store(self, key: str, name: str, st: os.stat_result, text: _Text) -> None:
        pages = text.pages
        file_id = self._db.execute(
            "INSERT INTO files(path, name, size, mtime_ns, chars) VALUES (?, ?, ?, ?, ?)",
            (key, name, st.st_size, st.st_mtime_ns, text.chars),
        ).lastrowid
        rows = []
        start = 0  # of the page in the file's text, pages joined by a form feed
        for number, page in enumerate(pages, 1):
            for offset, passage in chunk_text(page, self.config.chunk_chars, self.config.overlap_chars):
                rows.append((passage, file_id, start + offset, number if len(pages) > 1 else None))
            start += len(page) + 1
        self._db.executemany("INSERT INTO passages(text, file_id, position, page) VALUES (?, ?, ?, ?)", rows)

    def _extract(self, path: Path, size: int) -> _Text | None:
        """The file's text under the caps, or None after logging why it is skipped."""
        limits = self.config.limits
        if path.suffix.lower() != ".pdf":
            text = _read_text(path, limits.file_chars)
            if text is not None and text.truncated:
                log.warning("%s: longer than the cap of %d characters; only its beginning is indexed", path, limits.file_chars)
            return text
        if size > limits.pdf_bytes:
            log.warning("%s: %d bytes, over the %d-byte limit for a PDF; skipped", path, size, limits.pdf_bytes)
            return None
        data = _read_bytes(path, limits.pdf_bytes)
        if data is None:
            return None
        text = _pdf_text(path, data, limits, self._stop)
        if text is not None and text.truncated:
            log.warning(
                "%s: more text than the caps (%d characters a page, %d a file); what is past them is not indexed",
                path, limits.page_chars, limits.file_chars,
            )  # fmt: skip
        return text

    # --- search ---------------------------------------------------------------------------

    def search(self, question: str, k: int = 3) -> list[Passage]:
        """The ``k`` passages that hold the most of the question's content words, ties broken
        by bm25. bm25 alone favours a short passage with one rare word ("temperature" in a
        note about the fridge) over the one with "bake" and "bread" that answers the question."""
        terms = query_terms(question, self.config.max_query_terms)
        if not terms or k <= 0:
            return []
        with self._lock:
            candidates = self._db.execute(
                "SELECT rowid, bm25(passages) FROM passages WHERE passages MATCH ? ORDER BY bm25(passages) LIMIT ?",
                (" OR ".join(terms), max(k, self.config.rerank_candidates)),
            ).fetchall()
            if not candidates:
                return []
            ids = [rowid for rowid, _ in candidates]
            among = f"rowid IN ({','.join('?' * len(ids))})"
            words: Counter[int] = Counter()
            for term in terms:
                words.update(row[0] for row in self._db.execute(f"SELECT rowid FROM passages WHERE passages MATCH ? AND {among}", (term, *ids)))
            best = sorted(candidates, key=lambda c: (-words[c[0]], c[1]))[:k]
            passages = []
            for rowid, bm25 in best:
                name, text, position, page = self._db.execute(
                    "SELECT f.name, p.text, p.position, p.page FROM passages p JOIN files f ON f.id = p.file_id WHERE p.rowid = ?",
                    (rowid,),
                ).fetchone()
                passages.append(Passage(name, text, words[rowid] - bm25 / (1 - bm25), position, page))
        return passages

    def files(self) -> list[str]:
        """Names of the indexed files."""
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT name FROM files ORDER BY name")]


def knowledge_context(
    index: KnowledgeIndex | None, question: str, k: int = 3, budget_chars: int = KNOWLEDGE_BUDGET_CHARS
) -> list[Passage]:
    """The best passages for the prompt, best first, their text together at most
    ``budget_chars`` (the last one cut at a word if needed). No index: nothing."""
    if index is None:
        return []
    chosen: list[Passage] = []
    left = budget_chars
    for passage in index.search(question, k):
        if len(passage.text) > left:
            cut = passage.text[:left].rsplit(" ", 1)[0]
            if len(cut) >= 80:  # a stub of a passage is noise
                chosen.append(Passage(passage.file, cut + " …", passage.score, passage.position, passage.page))
            break
        chosen.append(passage)
        left -= len(passage.text)
    return chosen


@dataclass(frozen=True)
class _Text:
    """A file's text as it is indexed: its pages (one for a text file), already capped."""

    pages: list[str]
    truncated: bool = False
    """Some text was past a page or file cap."""

    @property
    def chars(self) -> int:
        return sum(len(p) for p in self.pages)


_SCHEMA_VERSION = 2
"""Of the index's tables (``PRAGMA user_version``); an index of another version is rebuilt."""
_READ_BLOCK = 65536
"""Bytes read at a time from a text file, until its cap of characters."""
_PDF_POLL_S = 0.1
"""How often the wait for a PDF's reader checks for ``close()``."""
_PDF_READER = "voxloop.pipeline.assistant.pdf_text"


def _open_regular(path: Path) -> BinaryIO | None:
    """The file opened for reading, if it is still a regular file; None after a log line."""
    # O_NOFOLLOW: the last component cannot have been swapped for a symlink since the check;
    # O_NONBLOCK: a FIFO put in its place would not hang the open.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        log.warning("%s: cannot open (%s); skipped", path, e)
        return None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        log.warning("%s: not a regular file; skipped", path)
        return None
    return f


def _read_bytes(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes: a file that grew past it since it was listed is skipped."""
    f = _open_regular(path)
    if f is None:
        return None
    with f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            log.warning("%s: cannot read (%s); skipped", path, e)
            return None
    if len(data) > limit:
        log.warning("%s: over the %d-byte limit; skipped", path, limit)
        return None
    return data


def _read_text(path: Path, max_chars: int) -> _Text | None:
    """A UTF-8 text file's first ``max_chars`` characters, reading no further than needed
    (a 2 GB log file costs one cap's worth of reading)."""
    f = _open_regular(path)
    if f is None:
        return None
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    parts: list[str] = []
    count = 0
    with f:
        try:
            block = f.read(_READ_BLOCK)
            if b"\0" in block[:8192]:
                log.warning("%s: binary content, not text; skipped", path)
                return None
            while True:
                piece = decoder.decode(block, final=not block)
                parts.append(piece)
                count += len(piece)
                if not block or count > max_chars:
                    break
                block = f.read(_READ_BLOCK)
        except OSError as e:
            log.warning("%s: cannot read (%s); skipped", path, e)
            return None
    text = "".join(parts)
    if text.count("\ufffd") > len(text) // 100:
        log.warning("%s: not UTF-8 text; skipped", path)
        return None
    return _Text([text[:max_chars]], truncated=count > max_chars)


def _pdf_text(path: Path, data: bytes, limits: KnowledgeLimits, stop: threading.Event) -> _Text | None:
    """The PDF's text, extracted by a child process (:mod:`.pdf_text`) under the page and
    file caps, a memory limit and a timeout; None after one log line if it fails."""
    if not data.startswith(b"%PDF-"):
        log.warning("%s: not a PDF file; skipped", path)
        return None
    # -I: the child imports only from the installation (no current folder, no PYTHONPATH).
    command = [
        sys.executable, "-I", "-m", _PDF_READER,
        str(limits.page_chars), str(limits.file_chars), str(limits.pdf_memory_bytes), str(math.ceil(limits.pdf_seconds) + 1),
    ]  # fmt: skip
    try:
        # Its own session: Ctrl-C in the terminal is the parent's to handle, not the reader's.
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as e:
        log.warning("%s: cannot start the PDF reader (%s); skipped", path, e)
        return None
    deadline = time.monotonic() + limits.pdf_seconds
    pending: bytes | None = data
    try:
        while True:
            try:
                out, err = child.communicate(pending, timeout=max(0.0, min(_PDF_POLL_S, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                pending = None  # handed over already: communicate() goes on where it was
                if stop.is_set():
                    log.info("%s: indexing stopped", path)
                    return None
                if time.monotonic() >= deadline:
                    log.warning("%s: reading the PDF took longer than %g s; skipped", path, limits.pdf_seconds)
                    return None
    finally:
        if child.returncode is None:
            child.kill()
            child.communicate()
    problem = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    if child.returncode == -getattr(signal, "SIGXCPU", 0):
        log.warning("%s: reading the PDF used more than %g s of CPU; skipped", path, limits.pdf_seconds)
        return None
    try:
        result = json.loads(out) if child.returncode == 0 else {"error": problem[0]}
    except ValueError:
        result = {"error": "no answer from the PDF reader"}
    error = result.get("error") if isinstance(result, dict) else "no answer from the PDF reader"
    if error == "encrypted":
        log.warning("%s: encrypted PDF; skipped", path)
        return None
    if error == "memory" or "MemoryError" in str(error):
        log.warning("%s: reading the PDF needs more than %d MB of memory; skipped", path, limits.pdf_memory_bytes >> 20)
        return None
    if error is not None or not isinstance(result.get("pages"), list):
        reason = error or f"exit status {child.returncode}"
        log.warning("%s: cannot read the PDF (%s); skipped", path, reason)
        return None
    # The child's caps again, in case it was not this version's reader.
    pages: list[str] = []
    left = limits.file_chars
    for page in result["pages"]:
        page = str(page)[: min(limits.page_chars, left)]
        pages.append(page)
        left -= len(page)
    truncated = bool(result.get("truncated"))
    if not any(p.strip() for p in pages):
        if truncated:  # a page that shows far more than its cap without ever ending a line
            log.warning("%s: no text found within the caps (%d characters a page); skipped", path, limits.page_chars)
        else:
            log.warning("%s: no text in the PDF (scanned images?); skipped", path)
        return None
    return _Text(pages, truncated)


def _log_walk_error(e: OSError) -> None:
    log.warning("%s: cannot list (%s); skipped", e.filename, e.strerror)
