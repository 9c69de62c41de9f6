"""A spare file beside a SQLite storage file, kept while space allows and freed before a
worker records a storage fault, so that on a disk full to the last byte its run and grid
are still marked failed. Other storages (a database server) need none."""
from __future__ import annotations

import contextlib
from pathlib import Path

SIZE, SUFFIX = 256 * 1024, ".spare"


def path(url: str) -> Path | None:
    """The spare file of a sqlite:/// storage URL; None for any other storage."""
    return Path(url[10:].split("?", 1)[0] + SUFFIX) if url.startswith("sqlite:///") else None


def keep(url: str) -> bool:
    """Write the spare file unless it is whole already; False where the disk has no room."""
    p = path(url)
    if p is None or (p.is_file() and p.stat().st_size == SIZE):
        return p is not None
    try:
        with open(p, "wb") as f:
            f.write(bytes(SIZE))
    except OSError:  # no room (or a read-only disk): keep none, a part would only take space
        with contextlib.suppress(OSError):
            p.unlink()
        return False
    return True


def free(url: str) -> bool:
    """Delete the spare file (room for the fault's record); whether there was one."""
    p = path(url)
    with contextlib.suppress(OSError):
        if p is not None:
            p.unlink()
            return True
    return False
