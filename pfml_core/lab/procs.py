"""Processes on this host known by host, pid and start time, so a reused pid never passes
for a live worker (the pid alone can be taken by another process after a worker dies)."""
from __future__ import annotations

import os
import socket
from pathlib import Path


def _started(pid: int) -> str | None:
    """The process's start time (clock ticks since boot); None once gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def me(pid: int | None = None) -> list:
    """[host, pid, start time] of a process on this host (this one by default)."""
    pid = pid or os.getpid()
    return [socket.gethostname(), pid, _started(pid)]


def local_worker_alive(procs) -> bool:
    """Whether any of these [host, pid, start] processes still runs on this host."""
    host = socket.gethostname()
    return any(isinstance(p, list) and len(p) == 3 and p[0] == host and p[2] is not None
               and _started(int(p[1])) == p[2] for p in (procs or []))
