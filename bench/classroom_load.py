"""A class at once against ONE real server: N visitors on the field playground (preset
label_noise, each pressing Play) and M on the noise lab (one of them starts a tiny digits
grid, all of them watch it to "done"), as M + N browser contexts of one headless Debian
chromium on this machine, against one `streamlit run app.py` (or --url).
Measures, in one run:
- each visitor's time from its goto to its first drawn frame (playground: the figure's
  heatmap image; lab: the title and the form), read in the page by a MutationObserver
  (Date.now(), the same clock as this process); p50 and p95, target p95 <= 5 s;
- the distinct frames per second one playground visitor sees under Play while the others
  play and the grid trains (sampled as bench/playground_fps.py: a point's SVG transform at
  every paint for 4 s), target >= 15;
- errors: Streamlit exception boxes, a connection error, console errors (target none);
- the server's memory: RSS summed over its process tree (/proc; the grid worker included)
  as baseline (healthy + one warm-up visit of the playground and the lab), peak (sampled
  every 0.5 s) and after every visitor left and the grid ended (polled up to --settle s;
  Streamlit keeps a closed session up to server.disconnectedSessionTTL = 120 s), target
  within 10% of baseline.
All visitors share this machine's CPUs with the server (a class has a machine each), so the
browser side is pessimistic: the report splits CPU seconds between server and chromium, and
times one visitor alone first (its chromium CPU seconds to a first frame, and the cores its
Play uses), which bounds what N browsers on these cores can reach whatever the server does.
Exits 0 when targets are missed (it reports them); non-zero only if the bench itself fails.

Usage: python bench/classroom_load.py [--visitors-playground 7] [--visitors-lab 3]
       [--url http://127.0.0.1:8501 --pid SERVER_PID] [--settle 150]"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np

import report
from appserver import processes, serve
from playground_fps import CHROMIUM, FRAMES_IN, SAMPLE, played

ARGS = ["--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
TTF_P95_S, FPS_TARGET, MEM_SLACK = 5.0, 15.0, 0.10
PLAYGROUND, LAB = "/playground?pg_preset=label_noise", "/noise_lab"
DRAWN = """(() => { const lab = location.pathname.includes('noise_lab');
  const title = () => document.querySelector('h1');
  const want = lab ? () => { const h = title(); return h && h.textContent.includes('Label-noise lab')
                             && document.querySelector('[data-testid="stForm"]'); }
                   : () => { const i = document.querySelector('.js-plotly-plot image');
                             return i && i.getAttribute('href'); };
  const obs = new MutationObserver(() => { if (!window.__title && title()) window.__title = Date.now();
    if (!window.__drawn && want()) { window.__drawn = Date.now(); obs.disconnect(); } });
  obs.observe(document, {childList: true, subtree: true, attributes: true}); })()"""
# not the app's: the frontend probes /<page>/_stcore/{health,host-config} before the root
# ones (404), and fetches the page icon :material/blur_on: from Google's font server (offline)
BENIGN = re.compile(r"/[a-z_]+/_stcore/(health|host-config)|fonts\.gstatic\.com/s/i/")
DONE = re.compile(r"Grid #\d+: done")


def tree_rss(pid: int | None) -> tuple[float, int, float]:
    """(MB of RSS summed over pid and all its descendants, number of processes, MB of pid's own)."""
    if pid is None:
        return float("nan"), 0, float("nan")
    children: dict[int, list[int]] = {}
    for p in processes():
        if p["state"] != "Z":  # a finished grid worker stays a zombie until the server reaps it
            children.setdefault(p["ppid"], []).append(p["pid"])
    total, todo, n, own = 0, [pid], 0, 0
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            rss = [ln for ln in Path(f"/proc/{p}/status").read_text().splitlines() if ln.startswith("VmRSS:")]
            kb = int(rss[0].split()[1]) if rss else 0
            total, own, n = total + kb, own or kb, n + 1
        todo += children.get(p, [])
    return total / 1024, n, own / 1024


def cpu_by_kind(server: int | None) -> dict[str, float]:
    """CPU seconds so far per kind of process: the server (its tree), chromium, other."""
    out: dict[str, float] = {}
    for p in processes():
        kind = ("server" if server in (p["pid"], p["ppid"]) else
                "chromium" if "chrom" in p["name"] else "other")
        out[kind] = out.get(kind, 0.0) + p["cpu"]
    return out


class Peak(threading.Thread):
    """Samples tree_rss every 0.5 s until stopped; keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.own, self.stop = pid, 0.0, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            tree, _, own = tree_rss(self.pid)
            self.peak, self.own = max(self.peak, tree), max(self.own, own)
            self.stop.wait(0.5)


def visit(browser, url: str, path: str, errors: list, name: str) -> dict:
    """A new visitor (own context) going to path without waiting for the load."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.add_init_script(DRAWN)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    v = {"ctx": ctx, "page": page, "kind": name}
    page.on("console", lambda m: m.type == "error" and not BENIGN.search(f"{m.location.get('url')} {m.text}")
            and errors.append(f"{name}: console: {m.text[:200]} ({m.location.get('url')})"))
    page.on("pageerror", lambda e: errors.append(f"{name}: page error: {str(e)[:200]}"))
    v["t0"] = time.time()
    page.goto(url + path, wait_until="commit")
    return v


def start_grid(page) -> None:
    """The lab form as tests/app/test_browser_lab.py fills it: a 4-run digits grid."""
    page.get_by_label("Data").first.click()
    page.get_by_role("option", name="digits", exact=True).click()
    for label, value in (("Seeds", "0"), ("Epochs", "2"), ("Batches per epoch (0 = all)", "2")):
        box = page.get_by_label(label, exact=True).first
        box.fill(value)
        box.press("Tab")
    page.get_by_role("button", name="Run grid").click()


def page_errors(v: dict, errors: list) -> None:
    boxes = v["page"].locator('[data-testid="stException"]')
    if boxes.count():
        errors.append(f"{v['kind']}: {boxes.count()} exception box(es): {boxes.first.inner_text()[:200]!r}")
    if v["page"].get_by_text("Connection error").count():
        errors.append(f"{v['kind']}: connection error shown")


def one_visitor(browser, url: str, pid: int | None) -> dict:
    """One playground visitor alone (the scene already built): its first drawn frame, the
    chromium CPU seconds that cost, and Play's frames per second and chromium cores."""
    v = visit(browser, url, PLAYGROUND, [], "alone")
    c0 = cpu_by_kind(pid)
    v["page"].wait_for_function("() => window.__drawn")
    ttf = v["page"].evaluate("window.__drawn") / 1000 - v["t0"]
    v["page"].wait_for_function(FRAMES_IN)
    time.sleep(1.0)  # what the page does right after its first frame
    c1 = cpu_by_kind(pid)
    fps = played(v["page"], 4.0)
    c2 = cpu_by_kind(pid)
    v["ctx"].close()
    return {"ttf": ttf, "load_cpu": c1.get("chromium", 0) - c0.get("chromium", 0),
            "fps": fps, "play_cores": (c2.get("chromium", 0) - c1.get("chromium", 0)) / 4.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visitors-playground", type=int, default=7)
    ap.add_argument("--visitors-lab", type=int, default=3)
    ap.add_argument("--url", help="a running app (default: start one)")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid (for memory)")
    ap.add_argument("--settle", type=float, default=150.0, help="s to wait for memory to return")
    ap.add_argument("--grid-deadline", type=float, default=200.0)
    a = ap.parse_args()
    from playwright.sync_api import TimeoutError as Timeout
    from playwright.sync_api import sync_playwright

    load0, errors, t_start = os.getloadavg(), [], time.time()
    with serve(a.url, a.pid, log="/tmp/classroom_server.log") as (url, pid), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        warm = browser.new_context()
        warm.new_page().goto(url + PLAYGROUND)
        warm.pages[0].wait_for_function(FRAMES_IN, timeout=180_000)
        warm.pages[0].goto(url + LAB)  # the lab's modules load once per server, not per visitor
        warm.pages[0].get_by_role("button", name="Run grid").wait_for(timeout=180_000)
        warm.close()
        alone = one_visitor(browser, url, pid)
        time.sleep(2.0)
        base, nproc0, base_own = tree_rss(pid)
        peak = Peak(pid)
        peak.start()
        cpu0, t_load = cpu_by_kind(pid), time.time()
        vs = [visit(browser, url, PLAYGROUND, errors, f"playground {i}")
              for i in range(a.visitors_playground)]
        vs += [visit(browser, url, LAB, errors, f"lab {i}") for i in range(a.visitors_lab)]
        for v in vs:  # times are read in the page: waiting in turn does not add to them
            try:
                v["page"].wait_for_function("() => window.__drawn", timeout=120_000)
                v["ttf"] = v["page"].evaluate("window.__drawn") / 1000 - v["t0"]
                v["title"] = v["page"].evaluate("window.__title") / 1000 - v["t0"]
            except Timeout:
                v["ttf"] = v["title"] = float("inf")
                errors.append(f"{v['kind']}: nothing drawn within 120 s")
        cpu1, t_load = cpu_by_kind(pid), time.time() - t_load
        pgs = [v for v in vs if v["kind"].startswith("playground")]
        labs = [v for v in vs if v["kind"].startswith("lab")]
        t_grid = time.time()
        if labs:
            start_grid(labs[0]["page"])
        for v in pgs[1:]:
            v["page"].wait_for_function(FRAMES_IN, timeout=120_000)
            v["page"].locator(".updatemenu-button").filter(has_text="Play").first.click()
        fps = paints = float("nan")
        if pgs:
            p = pgs[0]["page"]
            p.wait_for_function(FRAMES_IN, timeout=120_000)
            paints = p.evaluate(SAMPLE, 2000)[1] / 2.0  # idle, before Play
            fps = played(p, 4.0)
            p.screenshot(path="/tmp/classroom_playground.png")
        reloaded, grid_s = 0, None
        for v in labs:  # a lab page opened before the grid started lists it only after a rerun
            with contextlib.suppress(Timeout):
                v["page"].get_by_text(re.compile(r"Grid #\d+:")).first.wait_for(timeout=5_000)
                continue
            v["page"].reload()
            reloaded += 1
        for v in labs:
            left = max(1.0, t_grid + a.grid_deadline - time.time())
            try:
                v["page"].get_by_text(DONE).first.wait_for(timeout=left * 1000)
                grid_s = grid_s or time.time() - t_grid
            except Timeout:
                errors.append(f"lab: grid not done within {a.grid_deadline:.0f} s")
                break
        if labs:
            labs[0]["page"].wait_for_timeout(1500)
            labs[0]["page"].screenshot(path="/tmp/classroom_lab.png")
        for v in vs:
            page_errors(v, errors)
            v["ctx"].close()
        t_closed = time.time()
        peak.stop.set()
        peak.join()
        after, nproc, own = tree_rss(pid)
        while pid and time.time() - t_closed < a.settle and (
                after > base * (1 + MEM_SLACK) or nproc > nproc0):
            time.sleep(2.0)
            after, nproc, own = tree_rss(pid)
        settled = time.time() - t_closed
        browser.close()
    load1 = os.getloadavg()

    ttf = [v["ttf"] for v in vs]
    p50, p95 = (float(np.percentile(ttf, q)) for q in (50, 95))
    ok = lambda good: "OK" if good else "MISSED"  # noqa: E731
    print(f"machine: {os.cpu_count()} CPUs, load average {load0[0]:.1f} before, {load1[0]:.1f} after; "
          f"bench {time.time() - t_start:.0f} s")
    print(f"visitors: {len(pgs)} playground ({PLAYGROUND}, Play), {len(labs)} noise lab "
          f"(one runs a 4-run digits grid), one chromium, {len(vs)} contexts opened together")
    print(f"first drawn frame: p50 {p50:.1f} s, p95 {p95:.1f} s (target p95 <= {TTF_P95_S:.0f} s: "
          f"ratio {p95 / TTF_P95_S:.2f}) {ok(p95 <= TTF_P95_S)}")
    titles = [v["title"] for v in vs]
    print(f"  title on screen (the server's first answer): p50 {np.percentile(titles, 50):.1f} s, "
          f"p95 {np.percentile(titles, 95):.1f} s (then: the chart's script run, Plotly's JS, drawing)")
    print(f"  CPU s while they loaded ({t_load:.0f} s x {os.cpu_count()} cores): " + ", ".join(
        f"{k} {cpu1.get(k, 0) - cpu0.get(k, 0):.1f}" for k in ("server", "chromium", "other")))
    print("  each (s): playground " + " ".join(f"{v['ttf']:.1f}" for v in pgs)
          + " | lab " + " ".join(f"{v['ttf']:.1f}" for v in labs))
    n, cores = len(vs), os.cpu_count()
    print(f"  one visitor alone: first frame {alone['ttf']:.1f} s, "
          f"{alone['load_cpu']:.1f} CPU s of chromium; "
          f"so {n} browsers on {cores} cores need >= {n * alone['load_cpu'] / cores:.0f} s for their "
          f"first frames before the server does anything")
    print(f"  one visitor alone: Play {alone['fps']:.1f} frames/s using {alone['play_cores']:.2f} cores of "
          f"chromium; {len(pgs)} players on {cores} cores can reach at most "
          f"{alone['fps'] * min(1.0, cores / max(len(pgs) * alone['play_cores'], 1e-9)):.1f} frames/s")
    print(f"Play under load: {fps:.1f} distinct frames/s (target >= {FPS_TARGET:.0f}: ratio "
          f"{fps / FPS_TARGET:.2f}) {ok(fps >= FPS_TARGET)}; browser paints {paints:.0f}/s before Play")
    if labs:
        print("grid: " + (f"seen done {grid_s:.0f} s after Run grid" if grid_s else "NOT done")
              + f"; {reloaded} of {len(labs)} lab visitors listed it only after a reload")
    print(f"errors: {len(errors)} (target none) {ok(not errors)}")
    for e in errors:
        print(f"  - {e}")
    if pid:
        print(f"server memory (RSS, process tree): baseline {base:.0f} MB ({nproc0} proc), peak "
              f"{peak.peak:.0f} MB ({peak.peak / base:.2f}x; server process alone {base_own:.0f} -> peak "
              f"{peak.own:.0f} -> {own:.0f} MB), {settled:.0f} s after the last visitor left "
              f"{after:.0f} MB ({nproc} proc): {after / base:.2f}x baseline "
              f"(target <= {1 + MEM_SLACK:.2f}x) {'OK' if after <= base * (1 + MEM_SLACK) else 'OVER'}")
    else:
        print("server memory: not measured (--url without --pid)")
    print("screenshots: /tmp/classroom_playground.png, /tmp/classroom_lab.png")
    return 0


if __name__ == "__main__":
    sys.exit(report.run(main))
