"""Real browser (Debian chromium + Playwright): the playground plays in the browser itself,
Step and Reset move to the right frames, a slider change redraws and reaches the URL, and a
hostile link renders no link."""
import io
import re
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser]

FRAMES_IN = ("() => { const g = document.querySelector('.js-plotly-plot'); "
             "return g && g._transitionData && g._transitionData._frames.length > 1; }")
MIN_FPS = 8  # far below the >= 20 bench/playground_fps.py measures, far above a rerun slideshow (1-3)
SAMPLE_MOTION = """(ms) => new Promise(done => {
  const seen = new Set(); const t0 = performance.now();
  const tick = () => {
    const gd = document.querySelector('.js-plotly-plot');
    const p = gd && gd.querySelector('.scatterlayer .trace .points path');
    seen.add(p ? p.getAttribute('transform') : '');
    if (performance.now() - t0 < ms) requestAnimationFrame(tick); else done(seen.size);
  };
  requestAnimationFrame(tick);
})"""
SHOWN = """() => { const gd = document.querySelector('.js-plotly-plot');
  const i = gd._fullData.findIndex(t => t.name === 'proxies');
  return [gd._fullLayout._currentFrame || null, Array.from(gd._fullData[i].x)]; }"""
FRAME_X = """(name) => { const gd = document.querySelector('.js-plotly-plot');
  const i = gd._fullData.findIndex(t => t.name === 'proxies'); const f = gd._transitionData._frameHash[name];
  const d = f.data[f.traces.indexOf(i)].x;
  return Array.from(d.bdata ? new Float32Array(Uint8Array.from(atob(d.bdata), c => c.charCodeAt(0)).buffer) : d); }"""


def _button(page, label):
    return page.locator(".updatemenu-button").filter(has_text=label).first


def test_play_animates_in_the_browser_at_many_frames_per_second(app_url, page):
    page.goto(f"{app_url}/playground?pg_preset=label_noise")
    page.wait_for_function(FRAMES_IN, timeout=120_000)
    _button(page, "Play").click()
    distinct = page.evaluate(SAMPLE_MOTION, 3000)  # on-screen positions of a point, every paint
    assert distinct / 3.0 >= MIN_FPS, f"only {distinct / 3.0:.1f} distinct frames per second"
    _button(page, "Pause").click()
    time.sleep(0.5)
    held = page.evaluate(SHOWN)
    time.sleep(0.7)
    assert page.evaluate(SHOWN) == held  # paused: nothing moves
    assert held[0] not in (None, "0")  # and it had moved on


def test_step_and_reset_show_the_next_and_the_first_computed_step(app_url, page):
    page.goto(f"{app_url}/playground?pg_points_per_class=10")
    page.get_by_text(re.compile(r"^Step 0")).wait_for(timeout=60_000)
    page.wait_for_function(FRAMES_IN, timeout=120_000)
    for want in ("1", "2", "3"):
        _button(page, "Step").click()
        page.wait_for_function(
            "(w) => document.querySelector('.js-plotly-plot')._fullLayout._currentFrame === w", arg=want)
        name, xs = page.evaluate(SHOWN)
        np.testing.assert_allclose(xs, page.evaluate(FRAME_X, want), rtol=1e-6)  # on screen: that step
    _button(page, "Reset").click()
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')._fullLayout._currentFrame === '0'")
    np.testing.assert_allclose(page.evaluate(SHOWN)[1], page.evaluate(FRAME_X, "0"), rtol=1e-6)
    assert not np.allclose(page.evaluate(FRAME_X, "0"), page.evaluate(FRAME_X, "3"))


def test_a_slider_change_redraws_the_field_and_reaches_the_url(app_url, page):
    page.goto(f"{app_url}/playground?pg_points_per_class=10")
    page.wait_for_function(FRAMES_IN, timeout=120_000)
    before = page.evaluate("() => document.querySelector('.js-plotly-plot image').getAttribute('href')")
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="decay alpha").get_by_role("slider").first
    thumb.focus()
    thumb.press("ArrowRight")
    page.wait_for_url(re.compile(r"pg_alpha=3\.5"), timeout=30_000)  # the URL holds the state
    page.wait_for_function("(b) => { const i = document.querySelector('.js-plotly-plot image');"
                           " return i && i.getAttribute('href') !== b; }", arg=before, timeout=60_000)
    page.wait_for_function(FRAMES_IN, timeout=120_000)
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=float)
    assert shot.std() > 20  # not a blank page
    blue = (shot[..., 2] > shot[..., 0] + 40).mean()  # the field's blue wells are drawn
    assert blue > 0.005


def test_markdown_in_a_link_is_shown_not_rendered(app_url, page):
    page.goto(f"{app_url}/playground?pg_preset=[Click%20here](https://evil.example)")
    notice = page.get_by_text("URL value ignored")
    notice.wait_for(timeout=60_000)
    assert "[Click here](https://evil.example)" in notice.inner_text()  # shown as text
    assert page.locator('a[href*="evil.example"]').count() == 0  # and never a link
