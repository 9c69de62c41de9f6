"""The sweep page in Debian chromium against a real app server: a small TPE sweep on digits
(real training, 3 epochs of 5 batches) started from the form prunes trials; once done, the
page shows them as pruned (progress line, heatmap cells, exported runs), Optuna's importance
(bars for the varied params) and contour (with data) beside the heatmap, and a best-setting
command the CLI parses. PFML_TEST_SHOTS=folder keeps the finished page's screenshot."""
from __future__ import annotations

import os
import re
import shlex
import shutil

import pandas as pd
import pytest

from pfml_core.cli import build_parser
from tests.app.browser import choose, fill

pytestmark = pytest.mark.browser
DEADLINE_MS = 180_000
DONE = re.compile(r"Grid #(\d+): done — (\d+) done, (\d+) pruned")
# 12 TPE trials over alpha 1,3,5 x delta 0.1,0.3, 3 epochs of 5 batches: training is seeded
# and TPE too, so this prunes 4 trials and finishes 8 over both alpha and delta
FORM = {"alpha": "1,3,5", "delta": "0.1,0.3", "Trials (TPE, random)": "12", "Epochs": "3",
        "Batches per epoch (0 = all)": "5"}

FIGURES = """() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')].map(gd =>
  [gd._fullLayout.title.text.replace(/<[^>]+>/g, ''), {
    data: gd._fullData.map(t => ({type: t.type, name: t.name, x: Array.from(t.x || []),
      y: Array.from(t.y || []), z: Array.from(t.z || []).map(r => Array.from(r || [])),
      text: Array.from(t.text || []).map(r => typeof r === 'string' ? r : Array.from(r || []))})),
    shapes: (gd._fullLayout.shapes || []).map(s => ({x0: s.x0, x1: s.x1, y0: s.y0, y1: s.y1}))}]))"""


def figure(figs: dict, start: str) -> dict:
    return next(f for title, f in figs.items() if title.startswith(start))


def settled(page, done: int, timeout_ms: int = 180_000) -> dict:
    """The figures once the page drew the finished sweep: until that run's redraw replaces
    them, the charts of an earlier poll (fewer finished trials) are still on the page. The
    contour's points tell the finished trials; no element may still be stale."""
    page.wait_for_function("""done => [...document.querySelectorAll('.js-plotly-plot')].some(gd =>
        gd._fullLayout.title.text.replace(/<[^>]+>/g, '').startsWith('R@1 contour') &&
        gd._fullData.some(t => t.name === 'Feasible Trial' && t.x.length === done))
        && [...document.querySelectorAll('.js-plotly-plot')].some(gd =>
        gd._fullLayout.title.text.replace(/<[^>]+>/g, '').startsWith('Parameter importance'))
        && document.querySelectorAll('[data-stale]').length > 0
        && document.querySelectorAll('[data-stale="true"]').length === 0""",
                           arg=done, timeout=timeout_ms)
    return page.evaluate(FIGURES)


def test_tpe_sweep_prunes_and_shows_importance_contour_and_best(app_url, page, tmp_path):
    page.goto(f"{app_url}/sweep")
    page.get_by_text("Hyperparameter sweep").first.wait_for()
    assert page.get_by_role("radio", name="TPE").is_checked()  # the default search
    choose(page, "Data", "digits")
    for label, value in FORM.items():
        fill(page, label, value)
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_text(DONE).first.wait_for(timeout=DEADLINE_MS)
    _, done, pruned = map(int, DONE.search(page.get_by_text(DONE).first.inner_text()).groups())
    assert done + pruned == 12 and done >= 2 and pruned > 0
    s = "s were" if pruned > 1 else " was"
    page.get_by_text(f"{pruned} trial{s} pruned: TPE's median pruner stopped").first.wait_for()

    figs = settled(page, done)
    (bar,) = figure(figs, "Parameter importance")["data"]
    assert bar["type"] == "bar" and sorted(bar["y"]) == ["alpha", "delta"]
    assert abs(sum(bar["x"]) - 1) < 1e-6 and all(v >= 0 for v in bar["x"])
    contour = figure(figs, "R@1 contour: delta (attraction radius) by alpha")["data"]
    z = [v for t in contour if t["type"] == "contour" for row in t["z"] for v in row
         if v is not None and v == v]  # NaN: the padding around the trials' range
    assert z and all(0 < v <= 1 for v in z)
    assert len(next(t for t in contour if t["name"] == "Feasible Trial")["x"]) == done
    heat = figure(figs, "R@1 (%): delta (attraction radius) by alpha")
    tr = heat["data"][0]
    cells = {(x, y): tr["text"][i][j] for i, y in enumerate(tr["y"]) for j, x in enumerate(tr["x"])}
    assert sum(c.endswith("<br>best") for c in cells.values()) == 1 and len(heat["shapes"]) == 1
    assert not any("±" in c or "≈" in c for c in cells.values())  # one seed: no spread, no ties

    with page.expect_download() as dl:  # the grid's runs as the page exports them
        page.get_by_role("button", name="Download CSV").click()
    runs = pd.read_csv(dl.value.path())
    assert (runs["status"] == "pruned").sum() == pruned and (runs["status"] == "done").sum() == done
    point = lambda r: (f"{r.alpha:g}", f"{r.delta:g}")  # noqa: E731
    finished = {point(r) for r in runs.itertuples() if r.status == "done"}
    only_pruned = {point(r) for r in runs.itertuples() if r.status == "pruned"} - finished
    assert {k for k, c in cells.items() if c == "pruned"} == only_pruned
    page.get_by_text("One seed per setting: there is no spread").first.wait_for()

    cmd = page.locator("[data-testid='stCode'] code").first.inner_text().strip()
    args = build_parser().parse_args(shlex.split(cmd)[3:])
    assert cmd.startswith("python -m pfml_core train ") and args.command == "train"
    assert args.data == "digits" and args.epochs == 3 and args.max_batches == 5
    assert cells[f"{args.alpha:g}", f"{args.delta:g}"].endswith("<br>best")  # the outlined cell
    said = page.get_by_test_id("stMarkdown").filter(has_text="Best:").first.inner_text().replace("\u200b", "")
    assert f"alpha {args.alpha}, delta {args.delta}, " in said and "(one seed, no spread)" in said

    page.set_viewport_size({"width": 1400, "height": 4200})  # the app scrolls inside its main
    page.wait_for_timeout(1500)  # block: a tall window shows it whole; let the charts resize
    shot = tmp_path / "sweep_done.png"
    page.screenshot(path=str(shot))
    if os.environ.get("PFML_TEST_SHOTS"):
        shutil.copy(shot, os.environ["PFML_TEST_SHOTS"])
