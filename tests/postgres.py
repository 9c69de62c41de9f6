"""A throwaway PostgreSQL server for the lab's multi-machine test: Debian's `postgresql`
(installed by .ci/run) initialised in a temporary folder on a free port, with trust auth on
127.0.0.1 only; run as the `postgres` user when the tests run as root (initdb refuses root)."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time


def bin_dir() -> str | None:
    found = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))), None)
    return os.path.dirname(found) if found else None


@contextlib.contextmanager
def server(port: int):
    """Yields a SQLAlchemy URL of a fresh database `lab`; stops the server and removes its
    folder afterwards."""
    import psycopg2

    bins = bin_dir()
    root = tempfile.mkdtemp(prefix="pfml-pg-")
    as_user = []
    if os.getuid() == 0:  # initdb refuses root: the server runs as the postgres user
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, run = os.path.join(root, "data"), lambda *cmd: subprocess.run(
        [*as_user, *cmd], check=True, capture_output=True, timeout=120)
    try:
        run(f"{bins}/initdb", "-D", data, "-U", "pfml", "--auth=trust", "-E", "UTF8")
        run(f"{bins}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
        deadline = time.time() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="pfml", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE lab")
        conn.close()
        yield f"postgresql+psycopg2://pfml@127.0.0.1:{port}/lab"
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            run(f"{bins}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
