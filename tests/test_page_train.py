"""AppTest of pages/train.py: a one-epoch run on digits shows curves whose values are the
run's metrics and an animated map with one frame per epoch and proxies as stars; the run
is saved and can be reopened."""
import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "train.py")


def _wait(job, seconds=120):
    deadline = time.time() + seconds
    while not job.done and time.time() < deadline:
        time.sleep(0.3)
    assert job.done, "training did not finish"


def _values(arr):
    """Plotly serialises numpy arrays as {dtype, bdata (base64)}: decode to a list."""
    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=arr["dtype"]).tolist()
    return list(arr)


def _charts(at):
    return {json.loads(c.proto.spec)["layout"].get("title", {}).get("text", f"#{i}"):
            json.loads(c.proto.spec) for i, c in enumerate(at.get("plotly_chart"))}


@pytest.mark.slow
def test_one_epoch_run_then_reopen(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception and "press Start" in at.info[0].value
    at.selectbox(key="train_data").select("digits")
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_max_batches").set_value(2)
    at.radio(key="train_map_method").set_value("PCA")
    at.run()
    at.button(key="train_start").click().run()
    job = at.session_state["train_job"]
    _wait(job)
    at.run()
    assert not at.exception and not at.error
    assert "finished 1 epochs" in at.success[0].value
    charts = _charts(at)
    fig = charts["PCA of embeddings and proxies · epoch 1"]
    assert [f["name"] for f in fig["frames"]] == ["0", "1"]
    stars = [t for t in fig["data"] if t["marker"]["symbol"] == "star"]
    assert sum(len(_values(t["x"])) for t in stars) == 5 * 5  # 5 train classes x 5 proxies
    curves = next(c for t, c in charts.items() if t.startswith("#") and any(
        d.get("name") == "R@1" for d in c["data"]))
    r1 = _values(next(d for d in curves["data"] if d["name"] == "R@1")["y"])
    assert r1 == pytest.approx([s.metrics["R@1"] for s in job.snapshots])

    at2 = AppTest.from_file(PAGE, default_timeout=120).run()
    at2.radio(key="train_map_method").set_value("PCA").run()
    at2.button(key="train_open").click().run()
    reopened = at2.session_state["train_job"]
    assert [s.epoch for s in reopened.snapshots] == [0, 1]
    assert not at2.exception and "finished 1 epochs" in at2.success[0].value


def test_bad_settings_show_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="train_loss").select("pfml").run()
    at.number_input(key="train_p_pfml_alpha").set_value(-1.0).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("alpha" in e.value for e in at.error)
