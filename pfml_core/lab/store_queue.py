"""Liveness and the launch queue of the lab store (Store's methods on them, `QueueMixin`).

Liveness is a heartbeat, never a process id: a pid can be reused by another process after the
worker dies (killed, crashed, the machine restarted), a stale heartbeat cannot lie."""
from __future__ import annotations

import time

from pfml_core import guards

HEARTBEAT_EVERY = 3.0  # seconds between a running worker's beats
HEARTBEAT_TIMEOUT = 30.0  # a running grid with no beat for this long has lost its worker
START_GRACE = 120.0  # a worker takes seconds to start (importing torch) before its first beat
MAX_WORKERS = 1  # default of PFML_MAX_LAB_WORKERS
ENV_MAX_WORKERS = "PFML_MAX_LAB_WORKERS"


def max_workers() -> int:
    """Grids run at once per store (server): PFML_MAX_LAB_WORKERS when set, else 1."""
    return guards.env_count(ENV_MAX_WORKERS, MAX_WORKERS)


def alive(grid: dict, now: float | None = None) -> bool:
    """Whether a grid's worker is alive: running, with a heartbeat not older than the timeout."""
    beat = grid.get("heartbeat")
    now = time.time() if now is None else now
    return grid["status"] == "running" and beat is not None and now - beat <= HEARTBEAT_TIMEOUT


# a grid with a worker (running, or queued and started directly) whose heartbeat is stale
_STALE = ("(status='running' OR (status='queued' AND pid IS NOT NULL)) "
          "AND (heartbeat IS NULL OR heartbeat < ?)")


class QueueMixin:
    """Store methods for heartbeats, reaping and the launch queue. A worker writes the time
    into its grid every HEARTBEAT_EVERY seconds; a running grid whose heartbeat is older than
    HEARTBEAT_TIMEOUT has lost its worker, and reap_stale() marks its running run failed and
    the grid failed (resumable). Grids submitted from the app (and `--background`) wait in a
    queue, status 'queued' in the order submitted, for one of max_workers() slots. A slot is a
    running grid with a live heartbeat, so a killed worker frees its slot once its heartbeat
    goes stale. reserve() moves the next queued grid to 'running' atomically, with its
    heartbeat START_GRACE seconds ahead."""

    def beat(self, grid_id: int, pid: int) -> bool:
        """Worker `pid` is alive; False once the grid is no longer its (cancelled, reaped)."""
        cur = self._write("UPDATE grids SET heartbeat=? WHERE id=? AND pid=? AND status='running'",
                          (time.time(), int(grid_id), int(pid)))
        return cur.rowcount == 1

    def launched(self, grid_id: int, pid: int) -> None:
        """A worker process `pid` was started for the grid: its start-up counts as alive for
        START_GRACE seconds (unless the worker already claimed the grid itself)."""
        self._write("UPDATE grids SET heartbeat=CASE WHEN pid IS NULL THEN ? ELSE heartbeat END, "
                    "pid=? WHERE id=? AND (pid IS NULL OR pid=?)",
                    (time.time() + START_GRACE, int(pid), int(grid_id), int(pid)))

    def submit(self, grid_id: int, owner: str | None = None) -> None:
        """Put a queued grid at the back of the launch queue (owner: who may cancel it)."""
        self._write("UPDATE grids SET queued_at=?, owner=COALESCE(?, owner), pid=NULL, "
                    "heartbeat=NULL WHERE id=? AND status='queued'",
                    (time.time(), owner, int(grid_id)))

    def position(self, grid_id: int) -> int | None:
        """1 for the next grid to start, 2 after it, ...; None when not waiting in the queue."""
        g = self.grid(grid_id)
        if g["status"] != "queued" or g["queued_at"] is None:
            return None
        ahead = self._conn.execute(
            "SELECT COUNT(*) FROM grids WHERE status='queued' AND queued_at IS NOT NULL AND "
            "(queued_at < ? OR (queued_at = ? AND id < ?))",
            (g["queued_at"], g["queued_at"], g["id"])).fetchone()[0]
        return int(ahead) + 1

    def reserve(self, cap: int) -> int | None:
        """Atomically move the first grid of the queue to 'running' (no worker yet) when fewer
        than `cap` grids run with a live heartbeat; its id, or None."""
        c, now = self._conn, time.time()
        if not c.execute("SELECT 1 FROM grids WHERE status='queued' AND queued_at IS NOT NULL "
                         "LIMIT 1").fetchone():
            return None  # nothing waits: no write lock taken (the pages ask every poll)
        c.execute("BEGIN IMMEDIATE")
        try:
            busy = c.execute("SELECT COUNT(*) FROM grids WHERE status='running' AND heartbeat >= ?",
                             (now - HEARTBEAT_TIMEOUT,)).fetchone()[0]
            row = None if busy >= cap else c.execute(
                "SELECT id FROM grids WHERE status='queued' AND queued_at IS NOT NULL "
                "ORDER BY queued_at, id LIMIT 1").fetchone()
            if row:
                c.execute("UPDATE grids SET status='running', pid=NULL, heartbeat=? WHERE id=?",
                          (now + START_GRACE, row[0]))
            c.execute("COMMIT")
        except BaseException:
            c.rollback()  # a no-op when SQLite already rolled back (a full disk)
            raise
        return int(row[0]) if row else None

    def halt(self, grid_id: int, error: str) -> int:
        """A worker that cannot go on (a full disk): its running runs failed with `error`, the
        grid failed (resumable), in one short transaction; returns how many runs failed."""
        c, now = self._conn, time.time()
        c.execute("BEGIN IMMEDIATE")
        try:
            n = c.execute("UPDATE runs SET status='failed', error=?, finished=? WHERE grid_id=? "
                          "AND status='running'", (error, now, int(grid_id))).rowcount
            c.execute("UPDATE grids SET status='failed', finished=? WHERE id=? AND status IN "
                      "('queued','running')", (now, int(grid_id)))
            c.execute("COMMIT")
        except BaseException:
            c.rollback()
            raise
        return n

    def reap_stale(self) -> int:
        """Grids whose worker stopped beating: their running run failed, the grid failed
        (queued or failed runs left: resumable) or done; returns how many runs failed."""
        c, failed = self._conn, 0
        cutoff = time.time() - HEARTBEAT_TIMEOUT
        for gid, in c.execute(f"SELECT id FROM grids WHERE {_STALE}", (cutoff,)).fetchall():
            c.execute("BEGIN IMMEDIATE")
            try:
                row = c.execute(f"SELECT pid FROM grids WHERE id=? AND {_STALE}", (gid, cutoff)).fetchone()
                if row is not None:  # still stale (no beat came meanwhile)
                    now = time.time()
                    failed += c.execute(
                        "UPDATE runs SET status='failed', error=?, finished=? WHERE grid_id=? AND "
                        "status='running'", (f"worker process {row[0]} died mid-run (no heartbeat "
                                             f"for {HEARTBEAT_TIMEOUT:.0f} s)", now, gid)).rowcount
                    left = c.execute("SELECT COUNT(*) FROM runs WHERE grid_id=? AND status IN "
                                     "('queued','failed')", (gid,)).fetchone()[0]
                    c.execute("UPDATE grids SET status=?, finished=? WHERE id=?",
                              ("failed" if left else "done", now, gid))
                c.execute("COMMIT")
            except BaseException:
                c.rollback()
                raise
        return failed
