"""A helper Python process that talks in pickled messages (multiprocessing.connection) over a
socket pair: started as `python -m <module> <fd>`, it reads and writes its end of the pair.

Why not multiprocessing.Process: under Streamlit (and AppTest) `__main__` is the page script,
which a spawned child would run again. A child started here imports only its own module, and
it sees the parent go: the socket closes, its next recv() raises EOFError."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection


def start(module: str, threads: int | None = None) -> tuple[subprocess.Popen, Connection]:
    """Run `python -m module FD`; returns the process and the parent's end of the channel.
    threads: the child's BLAS/OpenMP/numba thread count (set before anything is imported)."""
    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS"):
            env[var] = str(threads)
    try:
        proc = subprocess.Popen([sys.executable, "-m", module, str(theirs.fileno())],
                                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env)
    finally:
        theirs.close()
    return proc, Connection(ours.detach())


def connect(argv: list[str] | None = None) -> Connection:
    """In the child: its end of the channel (the fd given on the command line)."""
    argv = sys.argv if argv is None else argv
    if len(argv) != 2 or not argv[1].isdigit():
        raise SystemExit(f"usage: python -m {argv[0]} FD (started by pfml_core.eval.child_process)")
    return Connection(int(argv[1]))
