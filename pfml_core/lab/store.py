"""The lab's run store: one SQLite file (WAL mode) at runs_dir()/lab.sqlite holding grids
(noise grids, sweeps) and their runs, shared by background workers, the app and the CLI.
Short transactions; run claims are atomic. A running run reports its finished epochs (the
ETA); a finished run may keep a per-sample table (its suspect labels). Liveness, the launch
queue and owners: pfml_core.lab.store_queue; a visitor's budget: pfml_core.lab.budget. A
full or read-only disk raises data.faults.Fault (one line). A store lacking a column gains it."""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

from pfml_core.data import faults
from pfml_core.lab import budget
from pfml_core.lab.store_file import open_store
from pfml_core.lab.store_queue import QueueMixin
from pfml_core.training.run_folder import runs_dir

RUN_STATES = ("queued", "running", "done", "failed", "cancelled")
GRID_KINDS = ("noise", "sweep")
SCHEMA = """
CREATE TABLE IF NOT EXISTS grids (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT, spec TEXT NOT NULL,
  status TEXT NOT NULL, created REAL NOT NULL, pid INTEGER, finished REAL);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, grid_id INTEGER NOT NULL REFERENCES grids(id),
  idx INTEGER NOT NULL, params TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,
  metrics TEXT, started REAL, finished REAL, error TEXT, worker_pid INTEGER);
CREATE INDEX IF NOT EXISTS runs_grid ON runs(grid_id, status, idx);
CREATE TABLE IF NOT EXISTS run_samples (run_id INTEGER PRIMARY KEY REFERENCES runs(id),
  data TEXT NOT NULL);
"""


def default_path() -> Path:
    return runs_dir() / "lab.sqlite"


def pid_alive(pid: int | None) -> bool:
    """True while process `pid` exists and is not a zombie (a dead, unreaped child). Never a
    grid's liveness (a pid is reused): that is its heartbeat, store_queue.alive."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _row(cur: sqlite3.Cursor, row: tuple) -> dict:
    d = {c[0]: v for c, v in zip(cur.description, row)}
    for key in ("spec", "params", "config", "metrics"):
        if key in d:
            d[key] = json.loads(d[key]) if d[key] else ({} if key != "metrics" else None)
    return d


class Store(QueueMixin):
    """One connection per process (and per Store); every write is its own short transaction.
    Never carry a Store across fork(): SQLite forbids it (workers are fresh interpreters).
    A damaged file is moved aside (kept as lab.sqlite.damaged-STAMP, never deleted) and a
    fresh store started: `recovered` is then the kept file's path, for a one-line notice."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()
        with faults.said("the lab store could not be opened"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn, self.recovered = open_store(self.path, SCHEMA)  # Path | None
        self._conn = faults.Guarded(conn, "the lab store could not be written")
        self._add_column("runs", "progress", "INTEGER")  # the ETA, where a store lacks it
        for column, kind in (("heartbeat", "REAL"), ("owner", "TEXT"), ("queued_at", "REAL")):
            self._add_column("grids", column, kind)  # heartbeats and the queue, where missing

    def _add_column(self, table: str, column: str, kind: str) -> None:
        if column not in {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}:
            with contextlib.suppress(sqlite3.OperationalError):  # another process added it
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self._conn.close()

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)

    def _query(self, sql: str, args: tuple = ()) -> list[dict]:
        cur = self._conn.execute(sql, args)
        return [_row(cur, r) for r in cur.fetchall()]

    # --- grids ---
    def create_grid(self, kind: str, spec: dict, runs: list[tuple[dict, dict]],
                    name: str | None = None, owner: str | None = None) -> int:
        """Insert a grid and its runs (params, config) as 'queued', atomically; returns its id.
        owner: a token of the session starting it, the only one that may cancel it, and
        whose grids together stay within budget.limit() (budget.OverBudget otherwise)."""
        if kind not in GRID_KINDS:
            raise ValueError(f"kind must be one of {list(GRID_KINDS)}, got {kind!r}")
        if not runs:
            raise ValueError("runs must hold at least one (params, config) pair, got none")
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            if owner is not None:
                budget.check(c, owner, [cfg for _, cfg in runs])
            gid = c.execute("INSERT INTO grids(kind, name, spec, status, created, owner) "
                            "VALUES (?,?,?,?,?,?)", (kind, name, json.dumps(spec), "queued",
                                                     time.time(), owner)).lastrowid
            c.executemany(
                "INSERT INTO runs(grid_id, idx, params, config, status) VALUES (?,?,?,?,'queued')",
                [(gid, i, json.dumps(p), json.dumps(cfg)) for i, (p, cfg) in enumerate(runs)])
            c.execute("COMMIT")
        except BaseException:
            c.rollback()
            raise
        return int(gid)

    def grid(self, grid_id: int) -> dict:
        rows = self._query("SELECT * FROM grids WHERE id=?", (int(grid_id),))
        if not rows:
            raise ValueError(f"grid_id {grid_id!r} is not in the store {self.path.name}")
        return rows[0]

    def grids(self, kind: str | None = None) -> list[dict]:
        """All grids, newest first, each with run counts per state."""
        where, args = ("WHERE kind=?", (kind,)) if kind else ("", ())
        grids = self._query(f"SELECT * FROM grids {where} ORDER BY id DESC", args)
        counts = self._query("SELECT grid_id, status, COUNT(*) AS n FROM runs GROUP BY grid_id, status")
        for g in grids:
            g["counts"] = {r["status"]: r["n"] for r in counts if r["grid_id"] == g["id"]}
        return grids

    def set_grid(self, grid_id: int, *, status: str | None = None, pid: int | None = None) -> None:
        if status is not None:
            ended = time.time() if status in ("done", "failed", "cancelled") else None
            self._write("UPDATE grids SET status=?, finished=? WHERE id=?", (status, ended, int(grid_id)))
        if pid is not None:
            self._write("UPDATE grids SET pid=? WHERE id=?", (int(pid), int(grid_id)))

    def mark_running(self, grid_id: int, pid: int) -> bool:
        """Claim a queued grid (or one reserved for it) for worker `pid`, with a first
        heartbeat; False if it was cancelled, finished or taken meanwhile."""
        cur = self._write("UPDATE grids SET status='running', pid=?, heartbeat=? WHERE id=? AND "
                          "(status='queued' OR (status='running' AND (pid IS NULL OR pid=?)))",
                          (int(pid), time.time(), int(grid_id), int(pid)))
        return cur.rowcount == 1

    # --- runs ---
    def runs(self, grid_id: int) -> list[dict]:
        return self._query("SELECT * FROM runs WHERE grid_id=? ORDER BY idx", (int(grid_id),))

    def claim_next(self, grid_id: int, pid: int) -> dict | None:
        """Atomically move the grid's first queued run to 'running' for worker `pid`."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            cur = c.execute("SELECT * FROM runs WHERE grid_id=? AND status='queued' ORDER BY idx "
                            "LIMIT 1", (int(grid_id),))
            row = cur.fetchone()
            run = _row(cur, row) if row else None
            if run:
                c.execute("UPDATE runs SET status='running', started=?, worker_pid=?, progress=0 "
                          "WHERE id=?",
                          (time.time(), int(pid), run["id"]))
            c.execute("COMMIT")
        except BaseException:
            c.rollback()
            raise
        return run

    def end_run(self, run_id: int, status: str, metrics: dict | None = None,
                error: str | None = None) -> bool:
        """Record a running run's outcome; False (and no change) if it was no longer running."""
        if status not in ("done", "failed", "cancelled"):
            raise ValueError(f"status must be done, failed or cancelled, got {status!r}")
        cur = self._write("UPDATE runs SET status=?, metrics=?, error=?, finished=? "
                          "WHERE id=? AND status='running'",
                          (status, json.dumps(metrics) if metrics is not None else None, error,
                           time.time(), int(run_id)))
        return cur.rowcount == 1

    def set_progress(self, run_id: int, epochs_done: int) -> None:
        """A running run's finished epochs (what the ETA counts)."""
        self._write("UPDATE runs SET progress=? WHERE id=? AND status='running'",
                    (int(epochs_done), int(run_id)))

    def put_samples(self, run_id: int, table: dict) -> None:
        """A run's per-sample table ({column: list}), e.g. its ranked suspect labels."""
        self._write("INSERT OR REPLACE INTO run_samples(run_id, data) VALUES (?, ?)",
                    (int(run_id), json.dumps(table)))

    def samples(self, run_id: int) -> dict | None:
        row = self._conn.execute("SELECT data FROM run_samples WHERE run_id=?",
                                 (int(run_id),)).fetchone()
        return json.loads(row[0]) if row else None

    def run_status(self, run_id: int) -> str:
        return self._conn.execute("SELECT status FROM runs WHERE id=?", (int(run_id),)).fetchone()[0]

    # --- lifecycle ---
    def cancel_grid(self, grid_id: int, owner: str | None = None) -> bool:
        """Mark the grid and its unfinished runs cancelled (the worker notices and stops).
        With an owner token, only a grid of that owner: False (nothing changed) otherwise."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        row = c.execute("SELECT owner FROM grids WHERE id=?", (int(grid_id),)).fetchone()
        if row is None or (owner is not None and row[0] != owner):
            c.rollback()
            return False
        c.execute("UPDATE runs SET status='cancelled', finished=? WHERE grid_id=? AND "
                  "status IN ('queued','running')", (time.time(), int(grid_id)))
        c.execute("UPDATE grids SET status='cancelled', finished=? WHERE id=? AND "
                  "status IN ('queued','running')", (time.time(), int(grid_id)))
        c.execute("COMMIT")
        return True

    def finalize_grid(self, grid_id: int) -> str:
        """Once no run is queued or running: 'failed' if any run failed, else 'done'."""
        g = self.grid(grid_id)
        counts = {r["status"]: r["n"] for r in self._query(
            "SELECT status, COUNT(*) AS n FROM runs WHERE grid_id=? GROUP BY status", (int(grid_id),))}
        if g["status"] == "cancelled" or counts.get("queued") or counts.get("running"):
            return g["status"]
        status = "failed" if counts.get("failed") else "done"
        self.set_grid(grid_id, status=status)
        return status

    def requeue(self, grid_id: int, owner: str | None = None) -> int:
        """Put a grid's failed and cancelled runs back in the queue (for resume), the grid
        'queued' with no worker (owner: the resuming session's token, else kept, within the
        owner's budget); returns how many runs were requeued."""
        if owner is not None:
            budget.check_resume(self._conn, owner, grid_id)
        self._write("DELETE FROM run_samples WHERE run_id IN (SELECT id FROM runs WHERE "
                    "grid_id=? AND status IN ('failed','cancelled'))", (int(grid_id),))
        cur = self._write("UPDATE runs SET status='queued', metrics=NULL, error=NULL, started=NULL, "
                          "finished=NULL, worker_pid=NULL, progress=NULL WHERE grid_id=? AND "
                          "status IN ('failed','cancelled')", (int(grid_id),))
        self._write("UPDATE grids SET status='queued', finished=NULL, pid=NULL, heartbeat=NULL, "
                    "queued_at=NULL, owner=COALESCE(?, owner) WHERE id=?", (owner, int(grid_id)))
        return cur.rowcount
