"""Opening the lab's SQLite file, and recovering when it is damaged (overwritten, truncated,
corrupt): the file is moved aside, kept as NAME.damaged-STAMP-PID with its -wal/-shm files
(never deleted), and a fresh store is started. Any other file is refused, never moved. One
process at a time decides (a lock file beside the store), so two never move a fresh store."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from pfml_core.data.access import exclusive

# Each store file this process found sound, with the (device, inode, size, mtime) it had
# then: SQLite's quick_check reads every page (~25 ms for a 20 MB store), so it runs again
# only once the file changed (in WAL mode the main file changes only at checkpoints).
_SOUND: dict[str, tuple] = {}
SQLITE_HEADER = b"SQLite format 3\x00"


class Damaged(Exception):
    """The file is not a sound SQLite database."""


def _signature(path: Path) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """An open connection with `schema` in place; Damaged when the file is not a sound
    database (SQLite's own quick_check, when the file changed since the last one)."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(schema)
        signature = _signature(path)
        if _SOUND.get(str(path)) != signature:
            if conn.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                raise Damaged("quick_check failed")
            _SOUND[str(path)] = signature
    except sqlite3.DatabaseError as e:
        conn.close()
        if getattr(e, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            raise Damaged(e.sqlite_errorname) from None
        raise  # locked, read-only, ...: not damage, never a reason to move the file
    except Damaged:
        conn.close()
        raise
    return conn


def meant_as_store(path: Path) -> bool:
    """Only such a file may be moved aside: it starts as SQLite files do (or is cut short
    within that header), or it is named as one (the app's lab.sqlite, overwritten)."""
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    return SQLITE_HEADER.startswith(head) or path.suffix in (".sqlite", ".sqlite3")


def move_aside(path: Path) -> Path:
    """Keep a damaged store (and its -wal/-shm files) as NAME.damaged-STAMP-PID."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    for tail in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{tail}", f"{aside}{tail}")
    return aside


def _lock(path: Path):
    return exclusive(path.with_name(path.name + ".lock"))


def open_store(path: Path, schema: str) -> tuple[sqlite3.Connection, Path | None]:
    """(connection, where a damaged file was moved or None)."""
    try:
        return connect(path, schema), None
    except Damaged:
        if not meant_as_store(path):
            raise ValueError(f"{path} is not a lab store (not an SQLite file); it is left as "
                             "it is: give a new file or a lab store") from None
        with _lock(path):
            try:  # another process may have recovered it meanwhile
                return connect(path, schema), None
            except Damaged:
                aside = move_aside(path)
                return connect(path, schema), aside
