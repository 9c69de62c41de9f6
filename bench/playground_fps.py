"""Field playground in a real browser: frames per second under Play, and the time from a
slider change to the redrawn scene. Starts `streamlit run app.py` (or uses --url), drives
Debian chromium with Playwright, presses Play and samples the on-screen position of a point
(its SVG transform) at every paint for 4 s; then moves the alpha slider and times, in the
page, how long until the field image on screen changes (a new scene: not cached yet; a
scene seen before: cached) and until its animation frames have arrived.
Prints each figure beside its target and beside the browser's own paint rate measured in
the same run (the ceiling for distinct frames), with the machine's load average.

Usage: python bench/playground_fps.py [--url http://127.0.0.1:8501] [--query pg_preset=label_noise]"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import report
from appserver import serve

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
FPS_TARGET, LATENCY_TARGET_MS = 20.0, 300.0
FRAMES_IN = ("() => { const g = document.querySelector('.js-plotly-plot');"
             " return !!(g && g._transitionData && g._transitionData._frames.length > 1); }")
SAMPLE = """(ms) => new Promise(done => {
  const seen = new Set(); let paints = 0; const t0 = performance.now();
  const tick = () => { paints++;
    const gd = document.querySelector('.js-plotly-plot');
    const p = gd && gd.querySelector('.scatterlayer .trace .points path');
    seen.add(p ? p.getAttribute('transform') : '');
    if (performance.now() - t0 < ms) requestAnimationFrame(tick); else done([seen.size, paints]); };
  requestAnimationFrame(tick); })"""
WATCH = """() => { const img = () => { const i = document.querySelector('.js-plotly-plot image');
    return i ? i.getAttribute('href') : null; };
  const before = img(); window.__bench = {t0: performance.now(), drawn: null, frames: null};
  const tick = () => { const b = window.__bench, now = performance.now();
    if (b.drawn === null && img() !== before && img() !== null) b.drawn = now - b.t0;
    const g = document.querySelector('.js-plotly-plot');
    if (b.drawn !== null && g && g._transitionData && g._transitionData._frames.length > 1)
      b.frames = now - b.t0;
    if (b.frames === null && now - b.t0 < 60000) requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""


def play_fps(page, seconds: float = 4.0) -> tuple[float, float]:
    """(distinct on-screen positions per second under Play, paints per second idle)."""
    _, paints = page.evaluate(SAMPLE, 2000)  # the browser's own ceiling, same page, idle
    fps = played(page, seconds)
    page.locator(".updatemenu-button").filter(has_text="Pause").first.click()
    return fps, paints / 2.0


def played(page, seconds: float = 4.0) -> float:
    """Press Play and sample for `seconds` (it keeps playing): distinct on-screen positions
    per second."""
    page.locator(".updatemenu-button").filter(has_text="Play").first.click()
    distinct, _ = page.evaluate(SAMPLE, seconds * 1000)
    return distinct / seconds


def slider_latency(page, key: str) -> tuple[float, float]:
    """ms from pressing `key` on the alpha slider to (new field on screen, frames arrived)."""
    page.evaluate(WATCH)
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="decay alpha")
    thumb = slider.get_by_role("slider").first
    thumb.focus()
    page.evaluate("() => { window.__bench.t0 = performance.now(); }")
    thumb.press(key)
    page.wait_for_function("() => window.__bench.frames !== null", timeout=120_000)
    b = page.evaluate("() => window.__bench")
    return b["drawn"], b["frames"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running app (default: start one)")
    ap.add_argument("--query", default="pg_preset=label_noise", help="playground URL parameters")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"chromium not found at {CHROMIUM}: nothing measured")
        return
    from playwright.sync_api import sync_playwright

    load0 = os.getloadavg()
    with serve(args.url) as (url, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/playground?{args.query}")
        page.wait_for_function(FRAMES_IN, timeout=180_000)
        time.sleep(1.0)
        fps, paints = play_fps(page)
        cold = [slider_latency(page, "ArrowRight") for _ in range(3)]  # alpha 3.5, 4.0, 4.5: new scenes
        warm = [slider_latency(page, "ArrowLeft") for _ in range(3)]  # back to 4.0, 3.5, 3.0: seen
        browser.close()
    load1 = os.getloadavg()
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print(f"machine: {os.cpu_count()} CPUs, load average {load0[0]:.1f} before, {load1[0]:.1f} after")
    print(f"play:   {fps:5.1f} distinct frames/s  (target >= {FPS_TARGET:.0f}: ratio {fps / FPS_TARGET:.2f}; "
          f"browser paints {paints:.0f}/s: {fps / paints:.2f} of them)")
    for name, runs in (("new scene", cold), ("seen scene", warm)):
        drawn, frames = [r[0] for r in runs], [r[1] for r in runs]
        print(f"slider -> {name:10s}: redrawn in {med(drawn):5.0f} ms median, {max(drawn):5.0f} max "
              f"(target <= {LATENCY_TARGET_MS:.0f}: ratio {med(drawn) / LATENCY_TARGET_MS:.2f}); "
              f"animation ready in {med(frames):5.0f} ms median")


if __name__ == "__main__":
    sys.exit(report.run(main))
