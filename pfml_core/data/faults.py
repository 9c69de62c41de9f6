"""Storage faults (a full, read-only or forbidden disk) as one line a visitor or an operator
can act on, never a bare OSError, sqlite3.OperationalError or torch.save's
'[enforce fail at inline_container.cc:...]'. Fault is a ValueError, so every place that
already shows bad input as a message shows these too (the pages, the CLI's exit 2)."""
from __future__ import annotations

import contextlib
import errno

FULL = "the disk is full (no space left on the server's disk): free some space, then retry"
READ_ONLY = "the disk is read-only: the operator must make the runs folder writable"
DENIED = "permission denied: the server may not write there (the operator can fix the rights)"
_ERRNO = {errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EROFS: READ_ONLY,
          errno.EACCES: DENIED, errno.EPERM: DENIED}
# SQLite's and torch's wordings of the same faults (lower case)
_TEXT = (("database or disk is full", FULL), ("no space left", FULL),
         ("file write failed", FULL), ("readonly database", READ_ONLY),
         ("read-only file system", READ_ONLY), ("permission denied", DENIED),
         ("unable to open database file", DENIED))


class Fault(ValueError):
    """A storage fault, said in one line (see the module doc)."""


def describe(exc: BaseException | None) -> str | None:
    """The one-line cause when `exc` (or what caused it) is a storage fault, else None."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, Fault):
            return str(exc)
        if isinstance(exc, OSError) and exc.errno in _ERRNO:
            return _ERRNO[exc.errno]
        text = str(exc).lower()
        if type(exc).__name__ in ("OperationalError", "RuntimeError", "OSError"):
            for needle, said in _TEXT:
                if needle in text:
                    return said
            if "inline_container" in text or "pytorchstreamwriter" in text:
                return FULL  # torch.save failing mid-write: the disk filled (or went away)
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def is_full(exc: BaseException | None) -> bool:
    return FULL in (describe(exc) or "")


@contextlib.contextmanager
def said(what: str):
    """Inside the block, a storage fault becomes Fault('WHAT: cause'); anything else passes."""
    try:
        yield
    except Fault:
        raise
    except Exception as exc:  # noqa: BLE001 - only faults are translated, the rest re-raised
        cause = describe(exc)
        if cause is None:
            raise
        raise Fault(f"{what}: {cause}") from None


class Guarded:
    """A sqlite3 connection whose statements raise Fault('WHAT: cause') on a storage fault
    (other errors, a damaged file's included, pass unchanged)."""

    def __init__(self, conn, what: str):
        self._conn, self._what = conn, what

    def execute(self, *args):
        with said(self._what):
            return self._conn.execute(*args)

    def executemany(self, *args):
        with said(self._what):
            return self._conn.executemany(*args)

    def __getattr__(self, name):
        return getattr(self._conn, name)
