"""Real browser: a lesson scene is a URL a teacher can share; Next and Back move through the
scenes and the URL follows; the scene animates with the playground's Play button."""
import re

import pytest

pytestmark = [pytest.mark.browser]

FRAMES_IN = ("() => { const g = document.querySelector('.js-plotly-plot'); "
             "return g && g._transitionData && g._transitionData._frames.length > 1; }")


def test_lesson_scene_url_round_trip_and_play(app_url, page):
    page.goto(f"{app_url}/lesson?scene=3")
    page.get_by_text("Scene 3 of 5: The repulsion margin").wait_for(timeout=90_000)
    page.get_by_role("button", name="Next").click()
    page.get_by_text("Scene 4 of 5").wait_for(timeout=60_000)
    page.wait_for_url(re.compile(r"/lesson\?scene=4$"), timeout=30_000)
    page.go_back()  # the browser's own Back shows scene 3 again
    page.get_by_text("Scene 3 of 5").wait_for(timeout=60_000)
    page.goto(f"{app_url}/lesson?scene=4")  # a shared link to scene 4
    page.get_by_text("Scene 4 of 5: A far mislabeled sample is left alone").wait_for(timeout=60_000)
    page.wait_for_function(FRAMES_IN, timeout=120_000)
    page.locator(".updatemenu-button").filter(has_text="Play").first.click()
    page.wait_for_function("() => +document.querySelector('.js-plotly-plot')._fullLayout._currentFrame >= 20",
                           timeout=30_000)
    assert page.locator(".js-plotly-plot").first.locator("image").count() == 2  # PFML and contrastive


def test_scene_5_shows_one_colour_bar_in_words_and_the_stars_on_top(app_url, page):
    page.goto(f"{app_url}/lesson?scene=5")
    page.wait_for_function(FRAMES_IN, timeout=120_000)
    plot = page.locator(".js-plotly-plot").first
    assert plot.locator(".colorbar").count() == 1  # PFML and contrastive share one scale
    assert "potential of class 0" in plot.locator(".colorbar .cbtitle").text_content()
    order = page.evaluate("""() => Array.from(document.querySelector('.js-plotly-plot')
        .querySelectorAll('.subplot.xy .scatterlayer .trace')).map(t => t.__data__[0].trace.name)""")
    assert order.index("proxies") > order.index("force") > order.index("samples")  # drawn last
