"""Every page, opened directly (its URL typed into the address bar) with no way out of this
machine, renders its title and leaves the console clean: no error, no 4xx/5xx answer (the
frontend once probed /<page>/_stcore/health first), no request and no tab icon elsewhere."""
from __future__ import annotations

import urllib.request

import pytest

from tests.conftest import outside

PAGES = {  # URL path -> the start of the page's title
    "": "PFML Studio", "lesson": "Lesson", "playground": "Field playground",
    "decay_explorer": "Decay explorer", "train": "Train a model",
    "noise_lab": "Label-noise lab", "sweep": "Hyperparameter sweep",
}
# every href the tab icon takes while the page loads, not only the last
ICON_HISTORY = """window.__icons = [];
new MutationObserver(() => {
  const link = document.querySelector("link[rel~='icon']");
  if (link && window.__icons.at(-1) !== link.href) window.__icons.push(link.href);
}).observe(document, {subtree: true, childList: true, attributes: true});"""


@pytest.mark.browser
@pytest.mark.parametrize("path", list(PAGES))
def test_a_page_opened_directly_offline_logs_no_error(app_url, page, browser_watch, path):
    page.context.route(outside, lambda route: route.abort())  # an offline classroom
    page.add_init_script(ICON_HISTORY)
    page.goto(f"{app_url}/{path}")
    title = page.locator('[data-testid="stMain"] h1').first
    title.wait_for()
    assert title.inner_text().startswith(PAGES[path])
    page.wait_for_timeout(2000)  # the run's late requests: media, components, the tab icon
    assert page.title() == "PFML Studio"
    icons = page.evaluate("window.__icons")
    assert icons and not any(outside(href) for href in icons), icons
    assert icons[-1].startswith(f"{app_url}/media/"), icons  # assets/icon.png, served here
    seen = [line for watch in browser_watch for line in watch.seen]
    assert seen == [], "\n".join(seen)


@pytest.mark.slow  # starts a server; the same check without chromium
def test_every_page_answer_tells_the_frontend_where_the_server_is(app_url):
    for path in PAGES:
        with urllib.request.urlopen(f"{app_url}/{path}") as r:
            assert "BACKEND_BASE_URL" in r.read().decode(), path
