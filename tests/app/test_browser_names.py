"""Hostile class names in Debian chromium against a real `streamlit run app.py` (issue 18,
item 2): a zip whose class folders are named as links, images, styled spans, colour
directives and TeX is trained on the Train page (1 epoch, PCA map) and in the Label-noise lab
(one tiny grid); the map's legend, hover templates and neighbour titles and the lab's suspect
captions show the names as written, no <a>, <img> or styled element comes from them, and the
browser asks no host but the server's for anything (favicon included)."""
from __future__ import annotations

import re
import zipfile
from urllib.parse import urlparse

import pytest

from tests.abuse_files import small_png
from tests.app.browser import choose as _choose
from tests.app.browser import fill

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # trains on the Train page and in the lab
LINK = '<a href="https:evil.example" target="_blank">Free exam answers'
SPAN = '<span style="font-size:90px;fill:red">HACKED'
IMG = '<img src="https:evil.example">'
IMAGE, RED, TEX = "![pixel](https:evil.example)", ":red[RED]", "$x^2$"
# sorted, the first three train (zero-shot split) and so are the lab's suspect labels
NAMES = [IMAGE, TEX, RED, LINK, IMG, SPAN]
DOM = """() => ({
  links: [...document.querySelectorAll('a')].map(a =>
    a.getAttribute('href') || a.getAttribute('xlink:href') || ''),
  images: [...document.querySelectorAll('img, image')].map(i =>  // img.src: resolved
    i.src || i.getAttribute('href') || ''),
  styled: document.querySelectorAll('[style*="90px"], [style*="fill:red"]').length,
  icon: (document.querySelector("link[rel~='icon']") || {}).href || '',
  legend: [...document.querySelectorAll('.legendtext')].map(e => e.textContent),
  figures: [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
    title: (gd._fullLayout.title || {}).text || '',
    annotations: (gd._fullLayout.annotations || []).map(a => a.text),
    traces: gd._fullData.map(t => ({name: t.name, hover: t.hovertemplate || ''}))}))})"""
OURS = re.compile(r"<extra></extra>|</?b>|%\{[^}]*\}")


def choose(page, label: str, option: str) -> None:
    _choose(page, label, option, exact=True)


def hostile_zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        for c, name in enumerate(NAMES):
            for i in range(12):
                zf.writestr(f"{name}/{i}.png", small_png(100 * c + i, 16))
    return path


def check_dom(dom: dict) -> None:
    """Nothing from the names became markup: no link or image to another host, no styled
    element, no tag left in what Plotly draws."""
    assert not [h for h in dom["links"] if "evil.example" in h], dom["links"]
    assert not [s for s in dom["images"] if "evil.example" in s
                or urlparse(s).hostname not in (None, "127.0.0.1")], dom["images"]
    assert dom["styled"] == 0
    drawn = [s for f in dom["figures"] for s in (f["title"], *f["annotations"],
                                                  *(t["name"] for t in f["traces"]),
                                                  *(t["hover"] for t in f["traces"]))]
    assert not [s for s in drawn if "<" in OURS.sub("", s or "")], drawn


def train_mlp_with_pca(page, epochs: int, timeout_ms: int = 300_000) -> None:
    """Start the chosen data on the Train page (an MLP, the PCA map) and wait for its end."""
    choose(page, "Model", "mlp")
    fill(page, "Epochs", str(epochs))
    page.get_by_text("PCA", exact=True).click()
    page.get_by_role("button", name="Start").click()
    page.get_by_text(f"finished {epochs} epochs").wait_for(timeout=timeout_ms)


def test_hostile_class_names_show_as_text(app_url, page, tmp_path):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda w: requests.append(w.url))
    page.goto(f"{app_url}/train")
    page.get_by_text("Choose data, model and loss").wait_for(timeout=240_000)
    choose(page, "Data", "upload")
    page.locator("input[type=file]").set_input_files(str(hostile_zip(tmp_path / "names.zip")))
    stored = re.search(r"Stored as (\w+\.zip)", page.get_by_text("Stored as").inner_text())[1]
    train_mlp_with_pca(page, 1, timeout_ms=120_000)
    page.locator("text=/of embeddings and proxies/").wait_for(timeout=60_000)
    page.locator("text=/✓|✗/").first.wait_for(timeout=60_000)  # the neighbour titles
    page.wait_for_timeout(1000)  # Plotly finishes drawing
    dom = page.evaluate(DOM)
    check_dom(dom)
    legend = " | ".join(dom["legend"])
    for name in NAMES:
        assert name in legend, legend  # shown as the characters it is
    assert not urlparse(dom["icon"]).hostname or urlparse(dom["icon"]).hostname == "127.0.0.1"

    page.goto(f"{app_url}/noise_lab")
    page.get_by_text("Default grid").first.wait_for(timeout=60_000)
    fill(page, "…or an upload's stored name, or a path under the data root", stored)
    choose(page, "Model", "mlp")
    losses = page.get_by_label("Losses", exact=True).first
    losses.click()
    losses.press("Backspace")  # PFML alone: 2 runs (0% and 20% noise)
    losses.press("Escape")
    fill(page, "Seeds", "0")
    fill(page, "Epochs", "1")
    fill(page, "Batches per epoch (0 = all)", "1")
    page.get_by_role("button", name="Run grid").click()
    page.get_by_text(re.compile(r"Grid #\d+: done — 2 done")).first.wait_for(timeout=180_000)
    titles = page.wait_for_function("""() => {
      const gd = [...document.querySelectorAll('.js-plotly-plot')]
        .find(g => (g._fullData || []).some(t => t.type === 'image'));
      return gd && [...gd.querySelectorAll('.annotation-text')].map(a => a.textContent);
    }""", timeout=60_000).json_value()  # the suspects' titles, as the browser drew them
    for shown in titles:  # '#row: given → suggested · score'
        parts = re.fullmatch(r"#\d+: (.+) → (.+) · -?\d+\.\d{3}( · flipped)?", shown)
        assert parts and {parts[1], parts[2]} <= {IMAGE, TEX, RED}, shown
    check_dom(page.evaluate(DOM))
    assert requests and all(urlparse(u).scheme in ("data", "blob") or urlparse(u).hostname == "127.0.0.1"
                            for u in requests), [u for u in requests if "127.0.0.1" not in u]
