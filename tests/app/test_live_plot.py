"""The Train page's live charts (studio/live_plot.py) in chromium against a real server: while
a run trains, the UMAP map and the metrics chart are updated in place. Read back inside the
component's frame (gd._fullData / gd._fullLayout): the points move from epoch to epoch, the
title's epoch follows the data, yet the iframe and the plot div stay the same DOM nodes (a
mark set on them at Start, before epoch 0, is still there later, while "UMAP ... is computing"
comes and goes above them) and each frame loads plotly.js once, Stop's whole-page rerun
included; a click on a held-out point picks the neighbour query, as in the finished run's
map; plotly.js comes from the server."""
from __future__ import annotations

import re
import time
from urllib.parse import urlparse

import pytest

from tests.app.browser import ISOLATED_HELD_OUT, fill
from tests.app.test_browser_names import choose

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # trains on the Train page

PLOT_JS = """() => { const gd = document.getElementById('plot');
    if (!gd || !gd._fullLayout) return null;
    return {title: ((gd._fullLayout.title || {}).text || '').replace(/<[^>]+>/g, ''),
            mark: gd.__mark || null, frameMark: frameElement.dataset.mark || null,
            menus: (gd._fullLayout.sliders || []).length + (gd._fullLayout.updatemenus || []).length,
            traces: gd._fullData.map(t => ({name: t.name, group: t.legendgroup,
                x: Array.from(t.x || []), y: Array.from(t.y || [])}))}; }"""
MARK_JS = "m => { document.getElementById('plot').__mark = m; frameElement.dataset.mark = m; }"


def frame(page, key: str):
    """The live chart's frame (None until it is on the page)."""
    iframe = page.locator(f".st-key-{key}_box iframe")
    return iframe.element_handle().content_frame() if iframe.count() else None


def read(page, key: str) -> dict | None:
    f = frame(page, key)
    return f.evaluate(PLOT_JS) if f is not None else None


def epoch_of(fig: dict | None) -> int:
    m = re.search(r"epoch (\d+)$", fig["title"]) if fig else None
    return int(m[1]) if m else -1


def wait_for(page, key: str, ok, seconds: float = 300) -> dict:
    deadline = time.time() + seconds
    while time.time() < deadline:
        fig = read(page, key)
        if fig is not None and ok(fig):
            return fig
        page.wait_for_timeout(250)
    raise AssertionError(f"{key}: not reached in {seconds} s; last read {read(page, key)}")


def points(fig: dict) -> list[tuple[float, float]]:
    return [(x, y) for t in fig["traces"] for x, y in zip(t["x"], t["y"])]


def test_live_map_and_curves_update_in_place(app_url, page):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{app_url}/train")
    page.get_by_text("Choose data, model and loss").wait_for(timeout=240_000)
    choose(page, "Data", "digits")
    choose(page, "Model", "mlp")
    fill(page, "Epochs", "40")  # stopped below once seen; long enough to watch
    page.get_by_text("UMAP ready").wait_for(timeout=240_000)
    page.get_by_role("button", name="Start").click()

    # both charts are on the page from Start on, before epoch 0 (the training process takes
    # seconds to start): their frames load while it starts, not during an epoch
    waiting = [wait_for(page, key, lambda f: True, 60) for key in ("train_live_curves", "train_live_map")]
    assert waiting[1]["title"].startswith("Map of embeddings and proxies: drawn once"), waiting
    assert waiting[1]["traces"] == [] and waiting[0]["traces"][0]["x"] == []
    for key in ("train_live_map", "train_live_curves"):
        frame(page, key).evaluate(MARK_JS, f"{key} start")
    first = wait_for(page, "train_live_map", lambda f: epoch_of(f) >= 1)
    e1 = epoch_of(first)
    later = wait_for(page, "train_live_map", lambda f: epoch_of(f) >= e1 + 2)
    e2 = epoch_of(later)
    assert first["mark"] == later["mark"] == later["frameMark"] == "train_live_map start", \
        "the map was remounted"
    assert later["title"] == f"UMAP of embeddings and proxies · epoch {e2}"
    assert later["menus"] == 0  # one epoch live: no slider or Play (the finished run has them)
    assert len(points(later)) == len(points(first)) > 100
    moved = sum(a != b for a, b in zip(points(first), points(later)))
    assert moved > 0.9 * len(points(first)), f"only {moved} points moved from epoch {e1} to {e2}"
    curves = wait_for(page, "train_live_curves", lambda f: max(
        next(t for t in f["traces"] if t["name"] == "R@1")["x"]) >= e2)
    assert curves["mark"] == curves["frameMark"] == "train_live_curves start"

    # a click on a held-out point of the live map picks the neighbour query (tried again
    # when the next epoch moved the point between reading and clicking)
    box = page.get_by_label("Query (held-out sample #; or click a diamond in the map)")
    for _ in range(5):
        query = isolated_held_out(page)
        page.mouse.click(query["px"], query["py"])
        for _ in range(10):
            if box.input_value() == str(query["row"]):
                break
            page.wait_for_timeout(500)
        if box.input_value() == str(query["row"]):
            break
    assert box.input_value() == str(query["row"])
    page.get_by_role("button", name="Stop").click()
    page.get_by_text(re.compile(r"stopped after \d+ epochs")).wait_for(timeout=120_000)
    assert not [u for u in requests if urlparse(u).hostname not in (None, "127.0.0.1")], requests
    # one load per chart frame: a frame mounted again would fetch and parse it again (about a
    # CPU-second of the browser's, taken from the training on a small machine)
    assert sum(urlparse(u).path.endswith("/plotly.min.js") for u in requests) == 2, requests


def isolated_held_out(page) -> dict:
    """Page position and row of a held-out point of the live map at least 8 px from any other."""
    page.locator(".st-key-train_live_map_box").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = page.locator(".st-key-train_live_map_box iframe").bounding_box()
    inner = frame(page, "train_live_map").evaluate(
        f"() => ({ISOLATED_HELD_OUT})(document.getElementById('plot'), 0, 0)")
    return {"px": box["x"] + inner["px"], "py": box["y"] + inner["py"], "row": int(inner["row"])}
