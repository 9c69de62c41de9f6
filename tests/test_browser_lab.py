"""Both lab pages in Debian chromium against a real `streamlit run app.py`: a tiny grid is
started from the form, runs in a background worker, its results appear, and a reload (a
browser refresh) still lists the finished grid."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser
DEADLINE_MS = 180_000


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True).first
    box.fill(value)
    box.press("Tab")


def test_noise_lab_tiny_grid_in_browser(app_url, page):
    page.goto(f"{app_url}/noise_lab")
    page.get_by_text("Label-noise lab").first.wait_for()
    choose(page, "Data", "digits")
    fill(page, "Seeds", "0")
    fill(page, "Epochs", "1")
    fill(page, "Batches per epoch (0 = all)", "2")
    page.get_by_role("button", name="Run grid").click()
    page.get_by_text(re.compile(r"Grid #\d+: done — 4 done")).first.wait_for(timeout=DEADLINE_MS)
    page.get_by_text("Measured PFML − Proxy Anchor (R@1):").first.wait_for()
    assert page.locator(".js-plotly-plot").count() >= 5  # R@1, R@2, flip, W2, paper
    assert "R@1 vs label noise" in page.content()
    page.reload()
    page.get_by_text(re.compile(r"Grid #\d+: done — 4 done")).first.wait_for()
    page.get_by_text("Download CSV").first.wait_for()


def test_sweep_tiny_grid_in_browser(app_url, page):
    page.goto(f"{app_url}/sweep")
    page.get_by_text("Hyperparameter sweep").first.wait_for()
    choose(page, "Data", "digits")
    fill(page, "alpha", "1,3")
    fill(page, "delta", "0.2")
    fill(page, "Epochs", "1")
    fill(page, "Batches per epoch (0 = all)", "2")
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_text(re.compile(r"Grid #\d+: done — 2 done")).first.wait_for(timeout=DEADLINE_MS)
    page.get_by_text(re.compile("R@1 vs alpha")).first.wait_for()
    assert "paper Cars R@1" in page.content()
    page.reload()
    page.get_by_text(re.compile(r"Grid #\d+: done — 2 done")).first.wait_for()
