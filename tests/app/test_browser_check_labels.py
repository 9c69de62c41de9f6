"""Issue 20 in Debian chromium against a real `streamlit run app.py`: scikit-learn's digits
uploaded as a .npz with 15% of its labels flipped over all 10 classes (the app is not told
which); the preview counts it, "Check my labels" ranks every row, the ringed points on the
map (read from gd._fullData) are the CSV's top rows and mostly the real flips, and "Clean and
retrain" gives R@1 in points and the cleaned .npz. The digits uploaded as a .zip of 8x8 PNGs
draw the map in studio/live_plot.py's frame: hovering a ringed suspect shows that file's
image next to the pointer (the #thumb canvas, read back pixel by pixel), a click keeps it."""
from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pfml_core.data.bundled import load_dataset
from pfml_core.data.dataset import flip_labels
from pfml_core.viz import check_map
from tests.app.browser import fill
from tests.app.test_browser_names import choose, train_mlp_with_pca

pytestmark = [pytest.mark.browser, pytest.mark.slow]
RINGED = """() => { const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => ((g.layout.title || {}).text || '').includes('suspects ringed'));
  const t = gd._fullData.find(t => t.name.startsWith('suspects'));
  return {name: t.name, rows: Array.from(t.customdata).map(c => c[0]),
          hover: t.hovertemplate}; }"""


def settled(page, name: str):
    """The button once Streamlit's rerun has removed its stale copy."""
    button = page.get_by_role("button", name=name)
    for _ in range(60):
        if button.count() == 1:
            break
        page.wait_for_timeout(500)
    return button


def upload(page, app_url: str, path, preview: str) -> None:
    """Open the Train page and upload `path`; returns once the preview says `preview`."""
    page.goto(f"{app_url}/train")
    page.get_by_text("Choose data, model and loss").wait_for(timeout=120_000)
    choose(page, "Data", "upload")
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_text(preview).wait_for(timeout=60_000)


def suspects_csv(page, ringed: dict, k: int) -> pd.DataFrame:
    """Checks that the map's suspects trace (RINGED's reading) rings the top k with their given
    label and score on hover; returns the downloaded CSV of every row."""
    assert ringed["name"] == f"suspects (top {k})" and len(ringed["rows"]) == k
    assert "given %{customdata[1]}" in ringed["hover"] and "score" in ringed["hover"]
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download every row (CSV)").click()
    return pd.read_csv(dl.value.path())


def check_labels(page) -> int:
    """Run Check my labels (an MLP, 3 epochs) to its end; the estimated number of errors."""
    choose(page, "Model", "mlp")
    fill(page, "Epochs", "3")
    settled(page, "Check my labels").click()
    said = page.get_by_text("Estimated label errors")
    said.wait_for(timeout=300_000)
    return int(re.search(r"Estimated label errors: (\d+)", said.inner_text())[1])


def test_check_my_labels_rings_the_flips_and_cleans(app_url, page, tmp_path):
    digits = load_dataset("digits")
    y, flipped = flip_labels(digits.y, 0.15, 3, 10)
    np.savez(tmp_path / "noisy_digits.npz", X=digits.X.reshape(len(y), -1), y=y)
    upload(page, app_url, tmp_path / "noisy_digits.npz",
           "Your data: 1797 samples, 10 classes (64 features)")
    page.get_by_text(re.compile(r"The zero-shot split trains on classes 0, 1, 2, 3, 4 \(\d+ "
                                r"samples\)")).wait_for()
    k = check_labels(page)
    page.locator("text=/suspects ringed/").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # Plotly finishes drawing
    ringed = page.evaluate(RINGED)
    csv = suspects_csv(page, ringed, k)
    assert sorted(csv["row"]) == list(range(len(y)))  # every row of the file
    assert sorted(int(r) for r in ringed["rows"]) == sorted(csv["row"][:k])
    assert abs(k - flipped.sum()) < 0.3 * flipped.sum()
    assert flipped[csv["row"][:k]].mean() > 0.85  # the ringed rows are the real flips
    by_row = csv.set_index("row").sort_index()
    assert list(by_row["given_label"]) == list(y)

    settled(page, "Clean and retrain").click()
    page.get_by_role("button", name=re.compile(r"Download the cleaned data")).wait_for(timeout=300_000)
    table = page.locator('[data-testid="stDataFrame"]').last.inner_text()
    assert "±" not in table
    with page.expect_download() as dl:
        page.get_by_role("button", name=re.compile(r"Download the cleaned data")).click()
    with np.load(io.BytesIO(open(dl.value.path(), "rb").read())) as f:
        assert len(f["y"]) == len(y) - k
    page.screenshot(path=str(tmp_path / "check.png"), full_page=True)


def test_map_title_follows_the_epoch_slider(app_url, page):
    page.goto(f"{app_url}/train")
    page.get_by_text("Choose data, model and loss").wait_for(timeout=120_000)
    choose(page, "Data", "digits")
    train_mlp_with_pca(page, 2)
    page.locator("text=/PCA of embeddings and proxies · epoch 2/").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    rail = page.evaluate("""() => { const gd = [...document.querySelectorAll('.js-plotly-plot')]
        .find(g => ((g.layout.title || {}).text || '').includes('of embeddings and proxies'));
      gd.scrollIntoView({block: 'center'});
      const r = gd.querySelector('.slider-rail-rect').getBoundingClientRect();
      return {x: r.left, y: r.top + r.height / 2, w: r.width}; }""")
    page.mouse.click(rail["x"] + 2, rail["y"])  # the slider's first step: epoch 0
    page.wait_for_timeout(1500)
    title = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .map(g => g._fullLayout.title.text).find(t => t.includes('of embeddings and proxies'))""")
    assert title.endswith("epoch 0"), title


# inside the image map's frame: the ringed suspect farthest from any point of another row (in
# the frame's pixels), and the ringed trace as RINGED reads it from the page
SUSPECT = """() => { const gd = document.getElementById('plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, pts = [];
  gd._fullData.forEach(t => Array.from(t.customdata).forEach((c, i) => pts.push({
    px: xa._offset + xa.l2p(t.x[i]), py: ya._offset + ya.l2p(t.y[i]), row: c[0], index: c[4],
    ringed: t.name.startsWith('suspects')})));
  const inside = p => p.px > xa._offset + 10 && p.py > ya._offset + 10
    && p.px < xa._offset + xa._length - 10 && p.py < ya._offset + ya._length - 10;
  let best = null, bestGap = 0;
  for (const p of pts.filter(p => p.ringed && inside(p))) {
    let gap = Infinity;
    for (const q of pts) if (q.index !== p.index) gap = Math.min(gap, Math.hypot(p.px - q.px, p.py - q.py));
    if (gap > bestGap) { best = p; bestGap = gap; }
  }
  const t = gd._fullData.find(t => t.name.startsWith('suspects'));
  return {best, gap: bestGap, name: t.name, rows: Array.from(t.customdata).map(c => c[0]),
          hover: t.hovertemplate}; }"""
THUMB = """() => { const c = document.getElementById('thumb'), r = c.getBoundingClientRect();
  return {shown: getComputedStyle(c).display !== 'none', left: r.left, top: r.top,
          right: r.right, bottom: r.bottom, w: c.width, h: c.height,
          pixels: c.width ? Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) : [],
          label: (document.querySelector('.hoverlayer .hovertext') || {}).textContent || ''}; }"""


def digits_zip(path, n: int = 600):
    """The first n digits as 8x8 grey PNGs in class folders, 15% of them in a wrong one;
    returns each file's path -> its 8x8 image in [0, 1]."""
    digits = load_dataset("digits")
    y, _ = flip_labels(digits.y[:n], 0.15, 3, 10)
    with zipfile.ZipFile(path, "w") as zf:
        for i, (img, c) in enumerate(zip(digits.X[:n, 0], y)):
            buf = io.BytesIO()
            Image.fromarray((img * 255).round().astype(np.uint8)).save(buf, "PNG")
            zf.writestr(f"{c}/{i:04d}.png", buf.getvalue())
    return {f"{c}/{i:04d}.png": digits.X[i, 0] for i, c in enumerate(y)}


def tile(ds, row: str, scale: int) -> np.ndarray:
    """What the hover should draw for a row of the upload: its 64x64 image as loaded, shrunk
    to the sprite's 32x32 (box filter), each pixel repeated scale x scale."""
    small = Image.fromarray(check_map._rgb(ds.X[ds.sources.index(row)]))
    return np.asarray(small.resize((32, 32), Image.Resampling.BOX)).repeat(scale, 0).repeat(scale, 1)


def test_hovering_a_suspect_shows_its_image(app_url, page, tmp_path):
    files = digits_zip(tmp_path / "digits.zip")
    upload(page, app_url, tmp_path / "digits.zip", "Your data: 600 samples, 10 classes (images)")
    k = check_labels(page)
    page.get_by_text("Hover over a point on the map to see its image").wait_for()
    box = page.locator(".st-key-check_image_map_box iframe")
    box.wait_for()
    box.scroll_into_view_if_needed()
    frame = box.element_handle().content_frame()
    frame.wait_for_function("() => { const gd = document.getElementById('plot');"
                            " return gd && gd._fullData && gd._fullData.length > 1; }")
    page.wait_for_timeout(500)
    read = frame.evaluate(SUSPECT)
    csv = suspects_csv(page, read, k)
    assert sorted(csv["row"]) == sorted(files)
    assert all(str(g) == r.split("/")[0] for r, g in zip(csv["row"], csv["given_label"]))
    assert sorted(read["rows"]) == sorted(csv["row"][:k])
    assert read["gap"] >= 8, read
    assert not frame.evaluate(THUMB)["shown"]  # nothing hovered yet

    box.scroll_into_view_if_needed()  # the download's click may have scrolled the page
    page.wait_for_timeout(300)
    at = box.bounding_box()
    x, y = at["x"] + read["best"]["px"], at["y"] + read["best"]["py"]
    assert 0 < y < page.viewport_size["height"], (at, read["best"])
    page.mouse.move(x - 40, y - 40)
    page.mouse.move(x, y, steps=4)
    frame.wait_for_function("() => getComputedStyle(document.getElementById('thumb')).display !== 'none'")
    thumb = frame.evaluate(THUMB)
    row = read["best"]["row"]  # "3/0042.png": the file's path in the zip
    assert f"row {row}" in thumb["label"], thumb["label"]  # the point hovered
    # next to the pointer, not under it, and inside the frame
    left, top = at["x"] + thumb["left"], at["y"] + thumb["top"]
    right, bottom = at["x"] + thumb["right"], at["y"] + thumb["bottom"]
    assert at["x"] <= left and right <= at["x"] + at["width"]
    assert at["y"] <= top and bottom <= at["y"] + at["height"]
    assert not (left <= x <= right and top <= y <= bottom)
    assert max(left - x, x - right, top - y, y - bottom) <= 60, (x, y, thumb)
    assert thumb["w"] == thumb["h"] == 96  # the 32x32 tile, 3x
    shown = np.array(thumb["pixels"], np.uint8).reshape(96, 96, 4)[..., :3].astype(int)
    ds = load_dataset(str(tmp_path / "digits.zip"))
    diff = np.abs(shown - tile(ds, row, 3)).max()
    assert diff <= 2, f"the thumbnail is not {row}'s image (pixels off by up to {diff})"
    # and it is that file's digit: of all 600, the nearest to the thumbnail (8x8 means)
    seen = shown.mean(2).reshape(8, 12, 8, 12).mean((1, 3)) / 255
    nearest = min(files, key=lambda r: np.abs(files[r] - seen).sum())
    assert nearest == row
    other = next(r for r in read["rows"] if r != row)
    assert np.abs(shown - tile(ds, other, 3)).mean() > 10  # a wrong row would fail above
    page.screenshot(path=str(tmp_path / "hover.png"))

    page.mouse.move(at["x"] + 5, at["y"] + at["height"] + 40)  # off the map
    frame.wait_for_function("() => getComputedStyle(document.getElementById('thumb')).display === 'none'")
    page.mouse.click(x, y)  # a click keeps the image below the map
    page.get_by_text(f"row {row}:").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stImage"] img').count() >= 1
