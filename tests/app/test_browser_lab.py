"""Both lab pages in Debian chromium against a real `streamlit run app.py`: a tiny grid is
started from the form, runs in a background worker, its results appear (read back from the
Plotly figures the browser drew, and the suspect-label thumbnails), and a reload (a browser
refresh) still lists the finished grid."""
from __future__ import annotations

import re
import time

import pytest

from tests.app.browser import choose, fill

pytestmark = pytest.mark.browser
DEADLINE_MS = 180_000


FIGURES = """() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')].map(gd =>
  [gd._fullLayout.title.text.replace(/<[^>]+>/g, ''), gd._fullData.map(t => ({name: t.name, x: Array.from(t.x || []),
   y: Array.from(t.y || []), axis: t.xaxis}))]))"""


THUMBS = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => (g._fullData || []).filter(t => t.type === 'image').length >= 16);
  if (!gd) return null;
  const img = gd.querySelector('image');
  return {images: gd._fullData.filter(t => t.type === 'image').length,
          titles: gd._fullLayout.annotations.map(a => a.text),
          width: img ? img.getBoundingClientRect().width : 0};
}"""


def settled_figures(page, timeout_s: float = 60.0) -> dict:
    """The figures once the finished grid's redraw is complete: right after a grid ends, the
    page reruns and a chart can still hold the in-progress draw for a moment."""
    deadline = time.time() + timeout_s
    while True:
        figs = page.evaluate(FIGURES)
        names = {t["name"] for t in figs.get("R@1 vs label noise (mean ± std over seeds)", [])}
        if {"PFML (potential field)", "Proxy Anchor"} <= names or time.time() > deadline:
            return figs
        page.wait_for_timeout(500)


def test_noise_lab_tiny_grid_in_browser(app_url, page, browser):
    other = browser.new_context().new_page()  # a classmate with the lab open, not touching it
    other.goto(f"{app_url}/noise_lab")
    other.get_by_text("Default grid").first.wait_for(timeout=60_000)
    page.goto(f"{app_url}/noise_lab")
    page.get_by_text("Label-noise lab").first.wait_for()
    page.get_by_text("Default grid").first.wait_for()
    choose(page, "Data", "digits")
    fill(page, "Seeds", "0")
    fill(page, "Epochs", "2")
    fill(page, "Batches per epoch (0 = all)", "2")
    page.get_by_role("button", name="Run grid").click()
    page.get_by_text(re.compile(r"Grid #\d+: done — 4 done")).first.wait_for(timeout=DEADLINE_MS)
    grid = re.search(r"Grid #(\d+): done", page.get_by_text(re.compile(r"Grid #\d+: done")).first.inner_text())[1]
    # the classmate's page picks the new grid up by itself (no reload)
    other.get_by_text(re.compile(rf"Grid #{grid}: ")).first.wait_for(timeout=30_000)
    other.context.close()
    page.get_by_text("Measured PFML − Proxy Anchor (R@1):").first.wait_for()
    page.get_by_text(re.compile(r"labels flipped by the run\. Detection AUROC: margin")).first.wait_for()
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 5")
    figs = settled_figures(page)
    r1 = {t["name"]: t for t in figs["R@1 vs label noise (mean ± std over seeds)"]}
    assert r1["PFML (potential field)"]["x"] == [0, 20] and len(r1["Proxy Anchor"]["y"]) == 2
    memo = figs["Memorization at 20% label noise (mean ± std over seeds)"]
    assert {t["name"] for t in memo} == {"PFML (potential field)", "Proxy Anchor"}
    assert all(t["x"] == [0, 1, 2] for t in memo)  # epoch 0 (untrained) and 2 trained epochs
    shares = [y for t in memo if t["axis"] == "x2" for y in t["y"]]
    assert len(shares) == 6 and all(0 <= y <= 1 for y in shares)
    margin = figs["Label margin of flipped vs clean training samples at 20% noise"]
    assert {t["name"] for t in margin} == {"pfml: clean", "pfml: flipped", "proxy_anchor: clean",
                                           "proxy_anchor: flipped"}
    thumbs = page.wait_for_function(THUMBS).json_value()  # one figure: the images travel inside it
    assert thumbs["images"] == 16 and thumbs["width"] > 0
    assert len(thumbs["titles"]) == 16 and all(re.match(r"#\d+: \d → \d · ", s) for s in thumbs["titles"])
    page.get_by_text("Download suspects CSV").first.wait_for()
    page.reload()
    page.get_by_text(re.compile(r"Grid #\d+: done — 4 done")).first.wait_for()
    page.get_by_text("Download CSV").first.wait_for()


def start_sweep(page, app_url: str, epochs: int, delta: str | None = None) -> None:
    """A digits sweep over alpha 1 and 3, 2 batches an epoch, started from the page."""
    page.goto(f"{app_url}/sweep")
    page.get_by_text("Hyperparameter sweep").first.wait_for()
    choose(page, "Data", "digits")
    page.get_by_role("radio", name="grid").check(force=True)
    fill(page, "alpha", "1,3")
    if delta is not None:
        fill(page, "delta", delta)
    fill(page, "Epochs", str(epochs))
    fill(page, "Batches per epoch (0 = all)", "2")
    page.get_by_role("button", name="Run sweep").click()


def test_sweep_tiny_grid_in_browser(app_url, page):
    start_sweep(page, app_url, 1, delta="0.2")
    page.get_by_text(re.compile(r"Grid #\d+: done — 2 done")).first.wait_for(timeout=DEADLINE_MS)
    page.get_by_text(re.compile("R@1 vs alpha")).first.wait_for()
    assert "paper Cars R@1" in page.content()
    page.reload()
    page.get_by_text(re.compile(r"Grid #\d+: done — 2 done")).first.wait_for()


def test_the_owner_keeps_cancel_after_a_reload(app_url, page, browser):
    """F5 opens a new session; the owner token rides in the URL (?lab=...), so the browser
    that started a sweep can still cancel it, and a classmate still cannot."""
    start_sweep(page, app_url, 300)
    status = re.compile(r"Grid #(\d+): (running|queued)")
    page.get_by_text(status).first.wait_for(timeout=60_000)
    grid = status.search(page.get_by_text(status).first.inner_text())[1]
    page.wait_for_url(re.compile(r"[?&]lab=[0-9a-f]{32}"))
    page.reload()
    page.get_by_text(re.compile(rf"Grid #{grid}: (running|queued)")).first.wait_for(timeout=60_000)
    other = browser.new_context().new_page()
    other.goto(f"{app_url}/sweep")
    other.get_by_text(re.compile(rf"Grid #{grid}: ")).first.wait_for(timeout=60_000)
    assert other.get_by_role("button", name="Cancel").is_disabled()
    other.context.close()
    cancel = page.get_by_role("button", name="Cancel")
    assert cancel.is_enabled()
    cancel.click()
    page.get_by_text(re.compile(rf"Grid #{grid}: cancelled")).first.wait_for(timeout=60_000)
