"""Real browser: a fresh server whose FIRST visitor opens a shared playground link still
shows the app's own navigation (sections and titles from app.py, wide layout), the page the
link names, and the link's settings, including the notice for a bad value."""
import pytest

pytestmark = [pytest.mark.browser]


def test_first_visit_by_shared_link_keeps_app_navigation(fresh_app_url, page):
    page.goto(f"{fresh_app_url}/playground?pg_preset=label_noise&pg_alpha=9")
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_text("Field playground").wait_for(timeout=90_000)  # app.py's title, not a file name
    page.get_by_text("Step 0").wait_for(timeout=90_000)
    assert nav.get_by_text("Label-noise lab").count() == 1
    assert nav.get_by_text("app", exact=True).count() == 0  # not the pages/ folder listing
    page.get_by_text("URL value ignored: alpha").wait_for(timeout=30_000)
    page.get_by_text("Far mislabeled points").wait_for(timeout=30_000)  # the label_noise preset
    assert "pg_preset=label_noise" in page.url and "/playground" in page.url
