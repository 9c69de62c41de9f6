"""pages/noise_lab.py under AppTest: a tiny grid runs in a real background worker and its
results show in the table and figures; bad input is an st.error; Cancel stops a grid;
grids already in the store (a restarted app) are listed."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from pfml_core.lab import grid as lab
from pfml_core.lab import worker
from pfml_core.lab.store import Store
from tests.lab_fakes import expected_r1
from tests.lab_helpers import arr, traces, wait_for

PAGE = "../pages/noise_lab.py"


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    return tmp_path


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


@pytest.fixture
def fake_trainer(monkeypatch):
    """Workers the page starts train with tests.lab_fakes.quick (known R@1, no real training)."""
    start = worker.start
    monkeypatch.setattr(worker, "start", lambda gid, store=None, train_fn=None:
                        start(gid, store, "tests.lab_fakes:quick"))


def test_tiny_grid_runs_and_shows_results(runs_dir, fake_trainer):
    at = page()
    assert not at.exception and at.info[0].value.startswith("No grids yet")
    at.selectbox(key="noise_data").set_value("digits")
    at.multiselect(key="noise_rates").set_value([0, 20])
    at.text_input(key="noise_seeds").set_value("0")
    at.number_input(key="noise_epochs").set_value(1)
    at.number_input(key="noise_batches").set_value(2)
    at.button[0].click().run()
    assert not at.exception and not at.error
    (grid,) = Store().grids("noise")
    wait_for(lambda: Store().grid(grid["id"])["status"] == "done", 150, "grid done")
    at.run()
    runs = Store().runs(grid["id"])
    assert [r["metrics"]["R@1"] for r in runs] == [expected_r1(r["config"]) for r in runs]
    agg = at.dataframe[0].value.set_index(["loss", "noise"])
    for r in runs:
        assert agg.loc[(r["params"]["loss"], r["params"]["noise"]), "R@1 mean"] == pytest.approx(r["metrics"]["R@1"])
    r1 = traces(at.get("plotly_chart")[0].proto.spec)["PFML (potential field)"]
    assert list(arr(r1["x"])) == [0, 20]
    assert at.selectbox(key="noise_grid").value == grid["id"]
    assert any("Measured PFML − Proxy Anchor" in m.value for m in at.markdown)


def test_bad_seeds_are_an_error_not_a_traceback(runs_dir):
    at = page()
    at.text_input(key="noise_seeds").set_value("0, one")
    at.button[0].click().run()
    assert not at.exception and "seeds" in at.error[0].value
    at.text_input(key="noise_seeds").set_value("0")
    at.multiselect(key="noise_losses").set_value([])
    at.button[0].click().run()
    assert "losses" in at.error[0].value and Store().grids() == []


def test_cancel_button_stops_a_running_grid(runs_dir):
    s = Store()
    spec, runs = lab.noise_grid("digits", ["pfml"], [0.0], [1, 2], base={"epochs": 1})
    gid = s.create_grid("noise", spec, runs)
    worker.start(gid, s, "tests.lab_fakes:blocking")  # seed 1 blocks until cancelled
    wait_for(lambda: s.runs(gid)[0]["status"] == "running", 60, "run started")
    at = page()
    at.button(key="noise_cancel").click().run()
    assert not at.exception
    assert s.grid(gid)["status"] == "cancelled"
    assert [r["status"] for r in s.runs(gid)] == ["cancelled", "cancelled"]
    assert at.button(key="noise_resume")  # a stopped grid offers Resume


def test_restarted_app_lists_stored_grids(runs_dir):
    s = Store()
    for _ in range(2):
        spec, runs = lab.noise_grid("digits", ["triplet"], [0.2], [0], base={"epochs": 1})
        gid = s.create_grid("noise", spec, runs)
        r = s.claim_next(gid, 1)
        s.end_run(r["id"], "done", {"R@1": 0.625, "R@2": 0.75})
        s.finalize_grid(gid)
    at = page()
    sb = at.selectbox(key="noise_grid")
    assert sb.options[0].startswith(f"#{gid} · digits · triplet · 1 runs") and len(sb.options) == 2
    assert "Grid #%d: **done**" % gid in at.get("progress")[0].proto.text
    assert at.dataframe[0].value["R@1 mean"].tolist() == [0.625]
