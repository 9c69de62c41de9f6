"""Real browser (Debian chromium + Playwright): the playground plays and redraws."""
import io
import re

import numpy as np
import pytest
from PIL import Image


@pytest.mark.browser
def test_playground_moves_alpha_plays_and_draws(app_url, page):
    page.goto(f"{app_url}/playground?pg_points_per_class=10")
    page.get_by_text(re.compile(r"^Step 0")).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for()

    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="alpha").get_by_role("slider").first
    thumb.focus()
    thumb.press("ArrowRight")
    page.wait_for_url(re.compile(r"pg_alpha=3\.5"), timeout=30_000)  # bound to the URL

    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => /Step ([3-9]|\\d\\d+)/.test(document.body.innerText)", timeout=40_000)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("() => !document.body.innerText.includes('(playing)')", timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for()

    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=float)
    assert shot.std() > 20  # not a blank page
    blue = (shot[..., 2] > shot[..., 0] + 40).mean()  # the field's blue wells are drawn
    assert blue > 0.005
