"""Opening the lab's SQLite file, and recovering when it is damaged (overwritten, truncated,
corrupt): the file is moved aside, kept as NAME.damaged-STAMP-PID with its -wal/-shm files
(never deleted), and Optuna starts a fresh one. Any other file is refused, never moved. One
process at a time decides (a lock file beside the store), so two never move a fresh store."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from pfml_core.data.access import exclusive

SQLITE_HEADER = b"SQLite format 3\x00"


def _sound(path: Path) -> bool:
    """Whether the file is missing, empty or a sound SQLite database (its quick_check)."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with open(path, "rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return getattr(e, "sqlite_errorname", "") not in ("SQLITE_CORRUPT", "SQLITE_NOTADB")


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


def check_sqlite(url: str) -> Path | None:
    """For a sqlite:/// URL to a damaged file: where it was kept (a fresh one follows);
    None when sound or not SQLite. ValueError for a file that is no lab store."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url[len("sqlite:///"):])
    if not path.parent.is_dir():
        raise ValueError(f"the storage's folder {path.parent.name!r} does not exist: create it or fix the URL")
    if _sound(path):
        return None
    if not meant_as_store(path):
        raise ValueError(f"{path.name} is not a lab store (not an SQLite file); it is left as "
                         "it is: give a new file or a lab store")
    with exclusive(path.with_name(path.name + ".lock")):
        return None if _sound(path) else move_aside(path)
