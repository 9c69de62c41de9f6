"""Write the pictures the app and the README show, from the library (run by `make assets`):

    assets/hero.webp       the home page's animation: the label-noise scene under PFML beside
                           the contrastive loss (pfml_core.playground.export, no browser)
    assets/playground.webp the field playground mid-descent, and
    assets/train.webp      the train page after a short run on the digits set: screenshots of
                           a Streamlit server this script starts, taken with chromium

Screenshots need /usr/bin/chromium and Playwright; without them the old ones are left as
they are (the script says so). Usage: python assets/build.py [--only hero|playground|train]"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pfml_core.playground import build_scene, descent, export, preset_config  # noqa: E402

OUT = ROOT / "assets"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
HERO_STEPS, HERO_FRAMES = 90, 24


def hero() -> Path:
    """The label-noise scene, PFML beside the contrastive loss, as a small looping WebP."""
    scene = build_scene(preset_config("label_noise"))
    view = descent.bounds(scene)
    runs = {}
    for title, potential in (("PFML, ", "pfml"), ("contrastive, ", "contrastive")):
        dyn = descent.Dynamics(potential=potential)
        runs[title] = (descent.simulate(scene, dyn, HERO_STEPS), dyn)
    data = export.animation_bytes(scene, runs, 0, view, max_frames=HERO_FRAMES, ms_per_frame=160,
                                  dpi=60, fmt="WEBP")
    path = OUT / "hero.webp"
    path.write_bytes(data)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server():
    """`streamlit run app.py` on a free port with an empty runs folder; yields the URL and
    that folder."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as runs:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=dict(os.environ, PFML_RUNS_DIR=runs), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(240):
                with contextlib.suppress(OSError):
                    if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                        break
                time.sleep(0.5)
            yield url, Path(runs)
        finally:
            proc.terminate()
            proc.wait(10)


def _save(png: bytes, name: str, width: int = 1100) -> Path:
    """A screenshot, scaled to `width`, as lossless WebP (exact colours, a third of a PNG)."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    path = OUT / name
    img.save(path, format="WEBP", lossless=True, method=6)
    return path


def _playground(page, url: str) -> Path:
    page.goto(f"{url}/playground?pg_preset=label_noise&pg_compare=true")
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot');"
                           " return g && g._transitionData && g._transitionData._frames.length > 1; }",
                           timeout=180_000)
    for _ in range(40):  # forty clicks on Step: the same frame on every machine
        page.locator(".updatemenu-button").filter(has_text="Step").first.click()
    time.sleep(0.5)
    return _save(page.locator('[data-testid="stMain"]').screenshot(), "playground.webp")


def _train(page, url: str, runs: Path) -> Path:
    """Start a 3-epoch PFML run on the digits set from the page, wait for its run folder to
    hold every epoch, then open it as a past run (PCA map) and take the picture."""
    page.set_viewport_size({"width": 1400, "height": 2300})
    page.goto(f"{url}/train")
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Data").click()
    page.get_by_role("option", name="digits", exact=True).click()
    epochs = page.get_by_label("Epochs")
    epochs.fill("3")
    epochs.press("Enter")
    page.get_by_text("PCA", exact=True).click()
    page.locator("button").filter(has_text="Start").first.click()
    for _ in range(600):  # the run folder tells when training is done
        done = [m for m in runs.glob("*/metrics.csv") if len(m.read_text().splitlines()) >= 5]
        if done:
            break
        time.sleep(1)
    page.goto(f"{url}/train")
    page.get_by_text("PCA", exact=True).click()
    page.get_by_text("Past runs").click()
    page.locator("button").filter(has_text="Open").last.click()
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=300_000)
    time.sleep(3)
    return _save(page.locator('[data-testid="stMain"]').screenshot(), "train.webp")


def screenshots(which: list[str]) -> list[Path]:
    if not os.path.exists(CHROMIUM):
        print(f"chromium not found at {CHROMIUM}: screenshots NOT rebuilt", file=sys.stderr)
        return []
    from playwright.sync_api import sync_playwright

    done = []
    with _server() as (url, runs), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name in which:
                page = browser.new_page(viewport={"width": 1400, "height": 1300})
                page.set_default_timeout(120_000)
                try:
                    done.append(_playground(page, url) if name == "playground" else _train(page, url, runs))
                except Exception as err:  # one failed page must not lose the others
                    print(f"{name} screenshot failed ({type(err).__name__}: {err}); kept the old one",
                          file=sys.stderr)
                finally:
                    page.close()
        finally:
            browser.close()
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["hero", "playground", "train"], action="append")
    which = ap.parse_args().only or ["hero", "playground", "train"]
    written = [hero()] if "hero" in which else []
    written += screenshots([w for w in which if w != "hero"]) if set(which) - {"hero"} else []
    for path in written:
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.0f} KiB)")
    total = sum(p.stat().st_size for p in OUT.glob("*") if p.suffix == ".webp")
    print(f"assets/ pictures in all: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
