"""What voxloop keeps is the user's alone: their notes, conversations, transcripts (with the
model's private reasoning) and the indexes of their files.

- The ``voxloop`` command runs with umask 077 (:data:`PRIVATE_UMASK`), so every folder it
  creates is 0700 and every file 0600: the state folder and what is in it, replay outputs,
  exports, installed models, SQLite's ``-wal`` and ``-shm`` files (SQLite gives those the
  database's own mode).
- The stores (sessions, notes, knowledge indexes) create their folder and database file
  private themselves (:func:`create_private_file`), whoever calls them.
- A state folder left readable by others (by an older voxloop, a copy, a restored backup) is
  made private at start (:func:`make_private`) and the user is told in one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def create_private_file(path: Path) -> None:
    """Create ``path`` (and its folder) readable by the owner only, unless it exists.

    Called before SQLite opens a new database: SQLite creates files 0644 less the umask, and
    its ``-wal``/``-shm`` files take the database's mode, so all three end up 0600. A folder
    this creates is 0700 (its missing parents get the umask's default, as ``mkdir -p`` does).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def make_private(folder: Path) -> str | None:
    """Make ``folder`` and everything in it private (folders 0700, files 0600: the group's and
    others' permissions taken away), if any of it was open to others. Returns a one-line
    notice of what changed (None: nothing to do, or no such folder). ``folder`` itself may be
    a symlink; symlinks inside it are left alone, and so is what they point to.

    A file that cannot be changed (another user's) is named in the notice; nothing raises.
    """
    try:
        top = folder.stat()
    except OSError:
        return None
    if not stat.S_ISDIR(top.st_mode):
        return None
    changed = 0
    failed: list[str] = []

    def tighten(path: Path, mode: int) -> None:
        """Take the group's and others' bits away; the owner's stay as they are."""
        nonlocal changed
        if stat.S_IMODE(mode) & 0o077 == 0:
            return
        try:
            os.chmod(path, stat.S_IMODE(mode) & ~0o077)
        except OSError as e:
            failed.append(f"{path} ({e.strerror})")
        else:
            changed += 1

    tighten(folder, top.st_mode)
    for root, dirs, files in os.walk(folder):  # symlinks to folders are listed, not followed
        for name in [*dirs, *files]:
            path = Path(root) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                tighten(path, st.st_mode)
    if failed:
        return (
            f"{folder}: could not make {', '.join(failed[:3])}{' ...' if len(failed) > 3 else ''} private; "
            f"others may read them. Fix the owner or the permissions (chmod -R go= {folder})"
        )
    if changed:
        return (
            f"made {folder} private: {changed} of its files and folders were open to other users "
            "(now folders 0700, files 0600)"
        )
    return None
