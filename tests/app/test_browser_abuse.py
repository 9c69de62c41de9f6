"""Markdown injection read back from the DOM of Debian chromium against a real `streamlit
run app.py`: a hostile playground link (reflected) and a hostile error stored in the run
store (shown to every later visitor of the lab page) render as text, with no link, no
image and no request to the attacker's host; a repeated URL key gets a notice."""
from __future__ import annotations

import os
import re
from urllib.parse import urlparse

import pytest

from pfml_core.lab import grid as lab_grid
from pfml_core.lab import worker
from pfml_core.lab.studies import Lab
from tests.conftest import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.abuse]
EVIL_LINK = "[Click here to log in](https://evil.example)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with a lab storage this test writes to; yields (url, runs folder)."""
    runs = tmp_path_factory.mktemp("abuse_runs")
    env = {k: v for k, v in os.environ.items() if k != "PFML_DATA_ROOT"}
    with serve_app(runs, tmp_path_factory.mktemp("abuse_logs") / "streamlit.log", env=env) as url:
        yield url, runs


def alerts(page) -> list[dict]:
    """Each alert's text, and the links and images inside it."""
    return page.eval_on_selector_all('[data-testid="stAlert"]', """els => els.map(e => ({
        text: e.innerText,
        links: [...e.querySelectorAll('a')].map(a => a.href),
        images: [...e.querySelectorAll('img')].map(i => i.src)}))""")


def test_hostile_url_shows_as_text(server, page):
    url, _ = server
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{url}/playground?pg_preset={EVIL_LINK}&pg_alpha=2.5&pg_alpha=4")
    page.get_by_text("URL key pg_alpha is given 2 times").first.wait_for(timeout=90_000)
    shown = alerts(page)
    texts = " | ".join(a["text"] for a in shown)
    assert EVIL_LINK in texts  # the link's Markdown is shown, as written
    assert "URL key pg_alpha is given 2 times; using the last, 4." in texts
    assert not any(a["links"] or a["images"] for a in shown), shown
    assert not page.locator('a[href*="evil.example"]').count()
    assert not [r for r in requests if urlparse(r).hostname == "evil.example"]


def test_hostile_stored_error_shows_as_text(server, page):
    url, runs = server
    bait = f"![x]({url}/t.png) {EVIL_LINK} <img src='{url}/u.png'> :red[styled] $x^2$"
    lab = Lab(f"sqlite:///{runs / 'studies.sqlite'}")  # the server's default storage
    spec = lab_grid.noise_grid("digits", ["pfml"], [0.0], [0], base={"epochs": 1})
    gid = lab.create_grid("noise", {**spec, "data": "/srv/secret/place/data.csv"})

    def hostile(config, should_stop=None, on_epoch=None):  # what a worker stores of a run's error
        raise ValueError(f"data.csv: columns {bait}")

    assert worker.run_grid(gid, lab, hostile) == "failed"
    (run,) = lab.runs(gid)
    assert run["error"].startswith(f"ValueError: data.csv: columns {bait}\nTraceback")
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{url}/noise_lab")
    page.get_by_text(re.compile(r"run \d+ failed")).first.wait_for(timeout=90_000)
    (failure,) = [a for a in alerts(page) if "failed" in a["text"]]
    shown = failure["text"].strip().replace("\u200b", "")  # zero-width spaces stop autolinks
    assert shown == f"run {run['id']} failed: ValueError: data.csv: columns {bait}"
    assert not failure["links"] and not failure["images"]
    assert not page.locator('img[src$="t.png"], img[src$="u.png"]').count()
    assert not [r for r in requests if r.endswith(("/t.png", "/u.png"))]
    body = page.inner_text("body")
    assert "/srv/secret" not in body and "data.csv" in body  # the grid list: base name only
