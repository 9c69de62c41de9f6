"""Server-wide caps that hold across processes: N slots per runs folder, each a lock file
runs_dir()/.slots/KIND-I.lock held with flock while its work runs. The OS drops a dead
process's locks, so a killed server never keeps a slot, and servers sharing one runs
folder share its N slots."""
from __future__ import annotations

import os
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock; each server counts its own jobs
    fcntl = None

SLOTS = ".slots"


class Slot:
    """One held slot (an open, flock-ed file); release() or process exit frees it."""

    def __init__(self, fd: int, index: int):
        self._fd, self.index = fd, index
        self._lock = threading.Lock()  # released from the job's thread and the page's

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        self.release()


def _folder(runs: Path) -> Path:
    folder = Path(runs) / SLOTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def acquire(runs: Path, kind: str, cap: int) -> Slot | None:
    """A free slot of `kind` among `cap` in the runs folder, held; None when all are taken."""
    for i in range(int(cap)):
        if (slot := acquire_one(runs, kind, i)) is not None:
            return slot
    return None


def in_use(runs: Path, kind: str, cap: int) -> int:
    """How many of the `cap` slots are held now (by any process)."""
    held = 0
    for i in range(int(cap)):
        slot = acquire_one(runs, kind, i)
        held += slot is None
        if slot is not None:
            slot.release()
    return held


def acquire_one(runs: Path, kind: str, index: int) -> Slot | None:
    """Slot `index` of `kind`, held, or None when another holder has it (a second open file
    of this process counts as another holder: flock locks belong to the open file)."""
    fd = os.open(_folder(runs) / f"{kind}-{index}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
    return Slot(fd, index)
