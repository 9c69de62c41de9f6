"""Real browser, the page's defaults (MNIST-5k, 5 epochs, UMAP): what a person sees, read back
from the rendered figures (gd._fullData / gd._fullLayout of a real `streamlit run app.py` in
chromium with SwiftShader WebGL).
- the UMAP map is on screen before the run ends;
- at every epoch (each animation frame) the map shows the data: the train points together cover
  most of each axis, every class's train points at least 5% of each (a trained class is a
  tight cluster, about 10% of an axis; today's bug squeezed them to 0.5%), and the classes
  sit apart;
- legends hold only what they should (no "loss" entry among the retrieval curves, no
  "flipped label" entry without flipped labels);
- clicking a held-out diamond picks it as the neighbour query."""
import re
import time

import pytest

from tests.app.browser import ISOLATED_HELD_OUT, choose, fill

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# the page's charts and, while a run trains, the live charts' frames (studio/live_plot.py)
FIGURES_JS = """() => [document, ...[...document.querySelectorAll('iframe')].map(f => {
    try { return f.contentDocument; } catch (e) { return null; } }).filter(d => d)]
  .flatMap(d => [...d.querySelectorAll('.js-plotly-plot')]).map(gd => ({
    title: (gd.layout.title && gd.layout.title.text) || '',
    xrange: gd._fullLayout.xaxis ? gd._fullLayout.xaxis.range : null,
    yrange: gd._fullLayout.yaxis ? gd._fullLayout.yaxis.range : null,
    traces: gd._fullData.map(t => ({name: t.name, type: t.type, showlegend: t.showlegend,
        group: t.legendgroup, x: Array.from(t.x || []), y: Array.from(t.y || []),
        rows: Array.from(t.customdata || []).map(c => c[0])}))}))"""
MAP = "of embeddings and proxies"
FRAMES_JS = """() => { const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => ((g.layout.title || {}).text || '').includes('of embeddings and proxies'));
    const T = {f4: Float32Array, f8: Float64Array, i1: Int8Array, i2: Int16Array, i4: Int32Array,
               u1: Uint8Array, u2: Uint16Array, u4: Uint32Array};
    const dec = v => {  // frames keep plotly.py's base64 arrays ({dtype, bdata}) undecoded
      if (!v || !v.bdata) return Array.from(v || []);
      const bin = atob(v.bdata), buf = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
      return Array.from(new T[v.dtype](buf.buffer)); };
    return gd._transitionData._frames.map(f => ({title: f.name,
      xrange: f.layout.xaxis.range, yrange: f.layout.yaxis.range,
      traces: f.data.map((d, i) => ({name: gd._fullData[(f.traces || [])[i] ?? i].name,
        group: gd._fullData[(f.traces || [])[i] ?? i].legendgroup,
        x: dec(d.x), y: dec(d.y)}))})); }"""


def figures(page) -> list[dict]:
    """Every Plotly figure on the page as drawn (titles without the theme's <b> tags)."""
    figs = page.evaluate(FIGURES_JS)
    for f in figs:
        f["title"] = re.sub(r"<[^>]+>", "", f["title"])
    return figs


def the_map(page) -> dict | None:
    return next((f for f in figures(page) if MAP in f["title"]), None)


def coverage(fig: dict, group: str) -> dict[str, tuple[float, float]]:
    """Per trace of a group: the fraction of the x and of the y axis range its points span."""
    (x0, x1), (y0, y1) = fig["xrange"], fig["yrange"]
    return {t["name"]: ((max(t["x"]) - min(t["x"])) / (x1 - x0),
                        (max(t["y"]) - min(t["y"])) / (y1 - y0))
            for t in fig["traces"] if t["group"] == group and len(t["x"]) > 1}


def shows_the_data(fig: dict) -> list[str]:
    """What is wrong with how the map shows its points (empty: nothing)."""
    wrong = []
    (x0, x1), (y0, y1) = fig["xrange"], fig["yrange"]
    every = [(x, y) for t in fig["traces"] for x, y in zip(t["x"], t["y"])]
    if any(not (x0 <= x <= x1 and y0 <= y <= y1) for x, y in every):
        wrong.append("points outside the view")
    train = [t for t in fig["traces"] if t["group"] == "train"]
    xs = [x for t in train for x in t["x"]]
    ys = [y for t in train for y in t["y"]]
    if (max(xs) - min(xs)) < 0.5 * (x1 - x0) or (max(ys) - min(ys)) < 0.5 * (y1 - y0):
        wrong.append(f"train points squeezed: x {min(xs):.3g}..{max(xs):.3g} in {x0:.3g}..{x1:.3g}, "
                     f"y {min(ys):.3g}..{max(ys):.3g} in {y0:.3g}..{y1:.3g}")
    # a trained embedding puts each of the 10 classes in its own tight cluster (about 10% of
    # an axis each, as in a good UMAP); the defect was a class squeezed to a dot (0.5%)
    for name, (cx, cy) in coverage(fig, "train").items():
        if cx < 0.05 or cy < 0.05:
            wrong.append(f"{name} covers only {cx:.0%} of x, {cy:.0%} of y")
    centres = [(sum(t["x"]) / len(t["x"]), sum(t["y"]) / len(t["y"])) for t in train]
    if len({(round(5 * (x - x0) / (x1 - x0)), round(5 * (y - y0) / (y1 - y0))) for x, y in centres}) < 3:
        wrong.append(f"the train classes sit on top of each other: centres {centres}")
    return wrong


def legend(fig: dict) -> list[str]:
    return [t["name"] for t in fig["traces"] if t["showlegend"]]


def test_defaults_run_shows_umap_live_and_the_data(app_url, page):
    page.goto(f"{app_url}/train")
    page.get_by_text("Choose data, model and loss").wait_for(timeout=120_000)
    # the UMAP worker warms up when the page opens (numba compiles once per server)
    page.get_by_text("UMAP ready").wait_for(timeout=400_000)
    page.get_by_role("button", name="Start").click()
    umap_while_running = None
    deadline = time.time() + 600
    while time.time() < deadline:
        running = page.get_by_text("finished 5 epochs").count() == 0
        fig = the_map(page)
        if fig and fig["title"].startswith("UMAP") and running and umap_while_running is None:
            umap_while_running = fig["title"]
        if not running:
            break
        page.wait_for_timeout(500)
    assert umap_while_running, "no UMAP map on screen before the run ended"
    page.locator(f"text=/UMAP {MAP} · epoch 5/").wait_for(timeout=120_000)
    page.wait_for_timeout(1500)  # let Plotly finish drawing
    fig = the_map(page)
    assert fig["title"] == f"UMAP {MAP} · epoch 5"
    assert shows_the_data(fig) == []
    frames = page.evaluate(FRAMES_JS)  # every epoch the slider and Play can show
    assert [f["title"] for f in frames] == ["0", "1", "2", "3", "4", "5"]
    assert {f["title"]: shows_the_data(f) for f in frames} == {str(e): [] for e in range(6)}

    curves = next(f for f in figures(page) if any(t["name"] == "R@1" for t in f["traces"]))
    assert legend(curves) == ["R@1", "R@2", "R@4", "R@8", "MAP@R"]
    want = {f"{g} {c}" for g, cs in (("train", "01234"), ("proxy", "01234"),
                                     ("held-out", "56789")) for c in cs}
    # no "flipped label" entry without noise; the run's own suspects (if any) are ringed
    assert sorted(n for n in legend(fig) if not n.startswith("suspect label (")) == sorted(want)

    # click a held-out diamond with no other mark nearby: it becomes the neighbour query
    query = pick_isolated_held_out(page, fig)
    page.mouse.click(query["px"], query["py"])
    box = page.get_by_label("Query (held-out sample #; or click a diamond in the map)")
    for _ in range(60):
        if box.input_value() == str(query["row"]):
            break
        page.wait_for_timeout(500)
    assert box.input_value() == str(query["row"])
    page.locator("text=/✓|✗/").first.wait_for(timeout=60_000)


def pick_isolated_held_out(page, fig: dict) -> dict:
    """Screen position and row of a held-out point at least 8 px from every other point."""
    return page.evaluate(f"""() => {{
        const gd = [...document.querySelectorAll('.js-plotly-plot')]
            .find(g => ((g.layout.title || {{}}).text || '').includes('of embeddings and proxies'));
        gd.scrollIntoView({{block: 'center'}});  // a click lands only inside the window
        const box = gd.getBoundingClientRect();
        return ({ISOLATED_HELD_OUT})(gd, box.left, box.top); }}""")


def test_the_finished_run_rings_its_own_suspect_labels(app_url, page):
    """digits with 20% of the labels flipped: the finished map rings the run's suspects in
    black, mostly on the flipped points the red rings mark, every ring on a training point,
    hover naming row, given and suggested label and score; the toggle takes them away."""
    page.goto(f"{app_url}/train")
    page.get_by_text("Choose data, model and loss").wait_for(timeout=120_000)
    choose(page, "Data", "digits", exact=True)
    choose(page, "Model", "mlp", exact=True)
    fill(page, "Epochs", "8")
    page.get_by_text("PCA", exact=True).click()
    thumb = page.locator('[data-testid="stSlider"]').filter(
        has_text="Label noise").get_by_role("slider").first
    for _ in range(4):  # 0.05 a step
        thumb.press("ArrowRight")
    page.get_by_text("0.20", exact=True).wait_for()
    page.get_by_role("button", name="Start").click()
    page.get_by_text("finished 8 epochs").wait_for(timeout=300_000)
    said = page.get_by_text(re.compile(r"Ringed in black: \d+ of the \d+ training labels"))
    said.wait_for()
    page.wait_for_timeout(1500)
    fig = the_map(page)
    ring = next(t for t in fig["traces"] if t["name"].startswith("suspect label"))
    flipped = next(t for t in fig["traces"] if t["name"] == "flipped label")
    train = {(x, y) for t in fig["traces"] if t["group"] == "train" for x, y in zip(t["x"], t["y"])}
    ringed, red = set(zip(ring["x"], ring["y"])), set(zip(flipped["x"], flipped["y"]))
    n = int(re.search(r"\((\d+)\)", ring["name"])[1])
    assert len(ringed) == n > 10 and ringed <= train
    on_map, found = map(int, re.search(r"(\d+) of the (\d+)", said.inner_text()).groups())
    assert on_map == n <= found  # the caption counts the rings the map shows
    assert len(ringed & red) / n >= 0.6, (len(ringed & red), n, len(red))  # mostly real flips
    texts = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(gd => gd._fullData).filter(t => (t.name || '').startsWith('suspect'))
        .flatMap(t => Array.from(t.text))""")
    assert all(re.fullmatch(r"row \d+ · given \d → suggested \d · score \d\.\d{3}", s) for s in texts)
    page.get_by_text("Ring suspect labels").click()
    page.wait_for_timeout(2000)
    assert not [t for t in the_map(page)["traces"] if t["name"].startswith("suspect")]
