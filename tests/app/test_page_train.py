"""AppTest of pages/train.py: a one-epoch run on digits (in its own process) shows curves whose
values are the run's metrics and a legend without the loss, an animated map with one frame per
epoch whose own view fits its points, proxies as stars, the device; Start is disabled while it
runs; the run is saved and can be reopened; bad settings give a one-line message."""
import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "train.py")


def _wait(job, seconds=180):
    deadline = time.time() + seconds
    while (job.running or job.maps_pending) and time.time() < deadline:
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


def _frame_fits_its_view(frame):
    """Every point inside the frame's axis ranges, and the points spanning most of them."""
    xs = np.concatenate([_values(t["x"]) for t in frame["data"] if len(_values(t["x"]))])
    ys = np.concatenate([_values(t["y"]) for t in frame["data"] if len(_values(t["y"]))])
    for v, (lo, hi) in ((xs, frame["layout"]["xaxis"]["range"]),
                        (ys, frame["layout"]["yaxis"]["range"])):
        assert lo <= v.min() and v.max() <= hi
        assert (v.max() - v.min()) >= 0.8 * (hi - lo)


@pytest.mark.slow
def test_one_epoch_run_then_reopen(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception and "press Start" in at.info[0].value
    assert any("Training runs on: CPU" in c.value or "Training runs on: GPU" in c.value
               for c in at.caption)
    at.selectbox(key="train_data").select("digits")
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_max_batches").set_value(2)
    at.radio(key="train_map_method").set_value("PCA")
    at.run()
    at.button(key="train_start").click().run()
    job = at.session_state["train_view"].job
    assert job.running and at.button(key="train_start").disabled  # one job per session
    _wait(job)
    at.run()
    assert not at.exception and not at.error
    assert "finished 1 epochs · on CPU" in at.success[0].value
    charts = _charts(at)
    fig = charts["PCA of embeddings and proxies · epoch 1"]
    assert [f["name"] for f in fig["frames"]] == ["0", "1"]
    for frame in fig["frames"]:
        _frame_fits_its_view(frame)
    assert fig["layout"]["xaxis"]["range"] == fig["frames"][-1]["layout"]["xaxis"]["range"]
    stars = [t for t in fig["data"] if t["marker"]["symbol"] == "star"]
    assert sum(len(_values(t["x"])) for t in stars) == 5 * 5  # 5 train classes x 5 proxies
    flipped = next(t for t in fig["data"] if t["name"] == "flipped label")
    assert flipped["showlegend"] is False  # no noise: no legend entry for rings
    curves = next(c for t, c in charts.items() if t.startswith("#") and any(
        d.get("name") == "R@1" for d in c["data"]))
    r1 = _values(next(d for d in curves["data"] if d["name"] == "R@1")["y"])
    assert r1 == pytest.approx([s.metrics["R@1"] for s in job.snapshots])
    legend = [d["name"] for d in curves["data"] if d.get("showlegend", True)]
    assert legend == ["R@1", "R@2", "R@4", "R@8", "MAP@R"]

    at2 = AppTest.from_file(PAGE, default_timeout=120).run()
    at2.radio(key="train_map_method").set_value("PCA").run()
    at2.button(key="train_open").click().run()
    reopened = at2.session_state["train_view"].job
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
    assert at.session_state["train_view"].job is None  # nothing started


def test_bad_upload_shows_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="train_data").select("upload").run()
    assert not at.exception
    assert at.button(key="train_start").disabled  # nothing uploaded yet
