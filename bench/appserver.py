"""What the browser benchmarks share: a real `streamlit run app.py` on a free port, and a
reading of every process's CPU time from /proc (Linux), so a bench can say where the CPU went."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(url: str | None = None, pid: int | None = None, runs: Path | None = None,
          log: str | None = None):
    """Yields (url, server pid): the given URL (and pid, when known), or a fresh server on a free
    port with its own runs folder (`runs`, else a temp one removed afterwards) and its output
    in `log` (else discarded). The file watcher is off: in a shared checkout it would follow
    every file other people change, which a user's server does not."""
    if url:
        yield url, pid
        return
    port, own = free_port(), runs is None
    runs = Path(tempfile.mkdtemp(prefix="pfml-bench-runs-")) if own else Path(runs)
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio.serve", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=dict(os.environ, PFML_RUNS_DIR=str(runs)), stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(240):
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status == 200:
                    break
            time.sleep(0.5)
        else:
            raise SystemExit("streamlit did not start" + (f" (see {log})" if log else ""))
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
        if log:
            out.close()
        if own:
            shutil.rmtree(runs, ignore_errors=True)


def processes() -> list[dict]:
    """Every process now: pid, ppid, state, name (its comm), cmd (its command line) and cpu
    (user + system seconds so far)."""
    out, tick = [], os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        f = raw.rsplit(")", 1)[1].split()
        out.append({"pid": int(stat.parent.name), "ppid": int(f[1]), "state": f[0],
                    "name": raw[raw.index("(") + 1:raw.rindex(")")], "cmd": cmd,
                    "cpu": (int(f[11]) + int(f[12])) / tick})
    return out
