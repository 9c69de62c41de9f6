"""pages/sweep.py under AppTest: a tiny alpha x delta sweep runs in a background worker;
heatmap and line plots show the measured values with the paper's curve beside them; a sweep
started while the worker slots are full waits in the queue."""
from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pfml_core.lab import grid as lab_grid
from pfml_core.lab import paper as lab_paper
from pfml_core.lab import worker
from pfml_core.lab.store import Store
from tests.lab_fakes import expected_r1
from tests.lab_helpers import arr, traces, wait_for


def page() -> AppTest:
    return AppTest.from_file("../../pages/sweep.py", default_timeout=60).run()


@pytest.mark.slow  # a background worker process
def test_tiny_sweep_heatmap_and_paper_curve(runs_dir, fake_trainer):
    at = page()
    at.selectbox(key="sweep_data").set_value("digits")
    at.text_input(key="sweep_alpha").set_value("1,3")
    at.text_input(key="sweep_delta").set_value("0.1,0.2")
    at.number_input(key="sweep_epochs").set_value(1)
    at.number_input(key="sweep_batches").set_value(2)
    at.button[0].click().run()
    assert not at.exception and not at.error
    (grid,) = Store().grids("sweep")
    wait_for(lambda: Store().grid(grid["id"])["status"] == "done", 150, "sweep done")
    at.run()
    runs = Store().runs(grid["id"])
    assert [r["metrics"]["R@1"] for r in runs] == [expected_r1(r["config"]) for r in runs]
    charts = [traces(c.proto.spec) for c in at.get("plotly_chart")]
    heat = arr(charts[0][None]["z"])  # rows delta, columns alpha
    want = {(r["params"]["delta"], r["params"]["alpha"]): r["metrics"]["R@1"] for r in runs}
    assert np.allclose(heat, [[want[0.1, 1.0], want[0.1, 3.0]], [want[0.2, 1.0], want[0.2, 3.0]]])
    alpha_line = next(c for c in charts if "paper Cars R@1 (%)" in c and
                      list(arr(c["paper Cars R@1 (%)"]["x"])) == lab_paper.ABLATIONS["alpha"][0])
    assert np.allclose(arr(alpha_line["measured R@1"]["y"]),
                       [np.mean([want[d, a] for d in (0.1, 0.2)]) for a in (1.0, 3.0)])


def test_bad_axis_values_are_errors(runs_dir):
    at = page()
    at.text_input(key="sweep_alpha").set_value("1,x")
    at.button[0].click().run()
    assert not at.exception and "alpha" in at.error[0].value
    at.text_input(key="sweep_alpha").set_value("0")
    at.button[0].click().run()
    assert "alpha" in at.error[0].value and Store().grids() == []


def test_run_sweep_queues_behind_a_running_grid(runs_dir, monkeypatch):
    """Cap 1 and a grid running: the new sweep waits (position 1), no second worker starts."""
    import time

    monkeypatch.setenv("PFML_MAX_LAB_WORKERS", "1")
    started = []
    monkeypatch.setattr(worker, "start", lambda *a, **k: started.append(a) or 0)
    s = Store()
    spec, runs = lab_grid.noise_grid("digits", ["pfml"], [0.0], [0], base={"epochs": 1})
    busy = s.create_grid("noise", spec, runs, owner="someone")
    assert s.mark_running(busy, 2**22 + 7)
    s._conn.execute("UPDATE grids SET heartbeat=? WHERE id=?", (time.time() + 3600, busy))
    at = page()
    at.selectbox(key="sweep_data").set_value("digits")
    at.button[0].click().run()
    assert not at.exception and not at.error and started == []
    (grid,) = Store().grids("sweep")
    assert grid["status"] == "queued" and Store().position(grid["id"]) == 1
    assert f"Grid #{grid['id']}: **queued (position 1)**" in at.get("progress")[0].proto.text
    assert grid["owner"] == at.session_state["lab_owner"]
    assert not at.button(key="sweep_cancel").disabled
