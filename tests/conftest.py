"""Shared fixtures: a real Streamlit server and Debian chromium driven by Playwright."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
_SKIPPED_BROWSER: list[str] = []

os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
os.environ.setdefault("MPLBACKEND", "Agg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not become healthy at {url}")


@contextlib.contextmanager
def serve_app(runs: Path, log: Path, script: Path = ROOT / "app.py", env: dict | None = None):
    """The app as a shared server runs it (`python -m studio.serve`, the repository's
    .streamlit/config.toml) on a free port with its own runs folder; yields the URL."""
    port = free_port()
    env = dict(os.environ if env is None else env, PFML_RUNS_DIR=str(runs))
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "studio.serve", str(script),
                                 "--server.port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _serve(tmp_path_factory):
    return serve_app(tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("logs") / "streamlit.log")


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """One real app server for the whole session."""
    with _serve(tmp_path_factory) as url:
        yield url


@pytest.fixture
def fresh_app_url(tmp_path_factory):
    """A server nobody has visited yet (first-request behaviour)."""
    with _serve(tmp_path_factory) as url:
        yield url


@pytest.fixture(autouse=True)
def real_main_module():
    """Streamlit's AppTest leaves a page as sys.modules['__main__']; a process spawned later
    (torch's ranks, a spawn pool) would run that page again as its main module."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """The app's runs folder (PFML_RUNS_DIR) for one test."""
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def fake_trainer(monkeypatch):
    """Workers the pages start train with tests.lab_fakes.quick (known R@1, no real training)."""
    from pfml_core.lab import launch

    start = launch.start
    monkeypatch.setattr(launch, "start", lambda lab, gid, train_fn=None: start(lab, gid, "tests.lab_fakes:quick"))


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium; skips (loudly) where it is not installed."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        msg = f"chromium not found at {CHROMIUM}: browser tests SKIPPED (apt-get install chromium)"
        _SKIPPED_BROWSER.append(msg)
        print(f"\n!!! {msg} !!!", file=sys.stderr)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


def outside(url: str) -> bool:
    """A URL on the network that is not this machine (data:, blob:, about: are not)."""
    u = urlparse(url)
    return u.scheme in ("http", "https", "ws", "wss") and u.hostname not in ("127.0.0.1", "localhost", "::1")


class BrowserWatch:
    """What a visitor's console would show for one browser context: errors logged or thrown,
    failed requests, 4xx/5xx answers, and any request to a host other than this machine."""

    def __init__(self, ctx):
        self.seen: list[str] = []
        self.on = True
        self._close, ctx.close = ctx.close, self.close
        ctx.on("console", lambda m: self.add(m.type == "error", f"console error: {m.text} "
                                             f"({m.location.get('url', '')})"))
        ctx.on("weberror", lambda e: self.add(True, f"uncaught: {e.error} ({e.page and e.page.url})"))
        # ERR_ABORTED: a request the page cancelled itself (it moved on), no error to it
        ctx.on("requestfailed", lambda r: self.add(
            r.failure != "net::ERR_ABORTED", f"request failed: {r.url} ({r.failure})"))
        ctx.on("response", lambda r: self.add(r.status >= 400, f"HTTP {r.status}: {r.url}"))
        ctx.on("request", lambda r: self.add(outside(r.url), f"outside host: {r.url}"))

    def add(self, when: bool, line: str) -> None:
        if when and self.on:
            self.seen.append(line)

    def close(self, *args, **kwargs):
        """The context's close, after the watch stops: closing cancels requests in flight."""
        self.on = False
        return self._close(*args, **kwargs)


@pytest.fixture(autouse=True)
def browser_watch(request):
    """In a browser test, watches every context opened through `browser` (`page`'s too, and a
    test's own) and fails the test at teardown on what a console shows, less lines matching
    a regex of @pytest.mark.allow_console(regex, ...) (only for a test that provokes them)."""
    if "browser" not in request.fixturenames:
        yield None
        return
    browser = request.getfixturevalue("browser")
    watches: list[BrowserWatch] = []
    new_context = browser.new_context

    def watched_context(*args, **kwargs):
        ctx = new_context(*args, **kwargs)
        watches.append(BrowserWatch(ctx))
        return ctx

    browser.new_context = watched_context
    yield watches
    del browser.new_context  # the class's method again
    marker = request.node.get_closest_marker("allow_console")
    allowed = [re.compile(p) for p in (marker.args if marker else ())]
    seen = [line for w in watches for line in w.seen if not any(p.search(line) for p in allowed)]
    if seen:
        pytest.fail("the browser showed errors:\n  " + "\n  ".join(dict.fromkeys(seen)),
                    pytrace=False)


@pytest.fixture
def page(browser, browser_watch):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        ctx.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_console(*regexes): console lines the test "
                            "provokes on purpose (browser_watch lets them pass)")


def pytest_terminal_summary(terminalreporter):
    if _SKIPPED_BROWSER:
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED: " + _SKIPPED_BROWSER[0], red=True)


@pytest.fixture(scope="session")
def spawn_ranks():
    """Run fn(rank, *args) in nprocs spawned daemon processes and wait at most `timeout` s.
    A stuck rank fails the test with each rank's state and is killed, instead of hanging the
    run (mp.spawn waits forever, and its non-daemon children keep pytest from exiting)."""
    import torch.multiprocessing as mp

    def run(fn, args: tuple, nprocs: int, timeout: float = 300.0) -> None:
        ctx = mp.start_processes(fn, args=args, nprocs=nprocs, join=False, daemon=True,
                                 start_method="spawn")
        deadline = time.time() + timeout
        try:
            while not ctx.join(timeout=1.0):  # raises if a rank failed
                if time.time() > deadline:
                    states = [f"rank {i}: {'alive' if p.is_alive() else f'exit {p.exitcode}'}"
                              for i, p in enumerate(ctx.processes)]
                    pytest.fail(f"ranks did not finish within {timeout:.0f} s ({', '.join(states)})")
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
                    p.join(5)

    return run


def _children(pid: int) -> list[int]:
    """Direct child processes of pid (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def pytest_sessionfinish(session, exitstatus):
    """Leave no process behind: a child a failed test left running (a worker, a server, a
    rank) would keep this run, and so CI, from ending."""
    import multiprocessing
    import signal

    for p in multiprocessing.active_children():
        p.kill()
        p.join(5)
    for pid in _children(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
