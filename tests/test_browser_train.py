"""Real browser: open /train, start a short run and see the UMAP map of embeddings and
proxies appear (chromium + Playwright against a real `streamlit run app.py`)."""
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _set_number(page, label, value):
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(500)


def test_short_training_shows_umap(app_url, page):
    page.goto(f"{app_url}/train")
    page.get_by_text("Choose data, model and loss").wait_for(timeout=90_000)
    _set_number(page, "Epochs", 1)
    _set_number(page, "Batches per epoch (0 = all)", 2)
    page.get_by_role("button", name="Start").click()
    # PCA first, then the UMAP map once it is computed (numba may compile on first use)
    page.get_by_text("finished 1 epochs").wait_for(timeout=180_000)
    page.locator("text=/UMAP of embeddings and proxies · epoch 1/").wait_for(timeout=240_000)
    assert page.locator(".js-plotly-plot").count() >= 2
    # neighbours marked right or wrong, drawn just after the map (wait: no race with Plotly)
    page.locator("text=/✓|✗/").first.wait_for(timeout=60_000)
