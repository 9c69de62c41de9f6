"""Issue 20 in Debian chromium against a real `streamlit run app.py`: scikit-learn's digits
uploaded as a .npz with 15% of its labels flipped over all 10 classes (the app is not told
which); the preview counts it, "Check my labels" ranks every row, the ringed points on the
map (read from gd._fullData) are the CSV's top rows and mostly the real flips, and "Clean and
retrain" gives R@1 in points and the cleaned .npz."""
from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

from pfml_core.data.bundled import load_dataset
from pfml_core.data.dataset import flip_labels
from tests.app.test_browser_lab import fill
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


def test_check_my_labels_rings_the_flips_and_cleans(app_url, page, tmp_path):
    digits = load_dataset("digits")
    y, flipped = flip_labels(digits.y, 0.15, 3, 10)
    np.savez(tmp_path / "noisy_digits.npz", X=digits.X.reshape(len(y), -1), y=y)
    page.goto(f"{app_url}/train")
    page.get_by_text("Choose data, model and loss").wait_for(timeout=120_000)
    choose(page, "Data", "upload")
    page.locator("input[type=file]").set_input_files(str(tmp_path / "noisy_digits.npz"))
    page.get_by_text("Your data: 1797 samples, 10 classes (64 features)").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"The zero-shot split trains on classes 0, 1, 2, 3, 4 \(\d+ "
                                r"samples\)")).wait_for()
    choose(page, "Model", "mlp")
    fill(page, "Epochs", "3")
    settled(page, "Check my labels").click()
    page.get_by_text("Estimated label errors").wait_for(timeout=300_000)
    k = int(re.search(r"Estimated label errors: (\d+)",
                      page.get_by_text("Estimated label errors").inner_text())[1])
    page.locator("text=/suspects ringed/").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # Plotly finishes drawing
    ringed = page.evaluate(RINGED)
    assert ringed["name"] == f"suspects (top {k})" and len(ringed["rows"]) == k
    assert "given %{customdata[1]}" in ringed["hover"] and "score" in ringed["hover"]
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download every row (CSV)").click()
    csv = pd.read_csv(dl.value.path())
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
