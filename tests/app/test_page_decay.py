"""AppTest of pages/decay_explorer.py."""
import base64
import json
from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from pfml_core.physics import field as physics
from pfml_core.viz import decay

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "decay_explorer.py")


def _arr(v):
    """A spec array: a plain list or Plotly's base64 typed array {"dtype", "bdata"}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.array(v, dtype=float)


def _spec(at):
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _pfml_traces(at):
    """d, the first PFML attraction curve in real values (the axis shows symlog of them)."""
    pf = [t for t in _spec(at)["data"] if t.get("legendgroup") == "pfml"]
    return _arr(pf[0]["x"]), _arr(pf[0]["customdata"]), pf


def test_curves_are_physics_attraction_and_change_with_alpha():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    d, att, _ = _pfml_traces(at)
    np.testing.assert_allclose(att, physics.attraction(torch.tensor(d), alpha=3.0, delta=0.3).numpy())
    at.slider(key="decay_alpha").set_value(5.0).run()
    d, att5, pf = _pfml_traces(at)
    np.testing.assert_allclose(att5, physics.attraction(torch.tensor(d), alpha=5.0, delta=0.3).numpy())
    assert len(pf) == 3 and "alpha = 5" in at.markdown[0].value + json.dumps(
        json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"])


def test_bad_url_value_warns_and_uses_the_default():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["decay_delta"] = "-3"
    at.run()
    assert not at.exception and "URL value ignored" in at.warning[0].value
    assert at.slider(key="decay_delta").value == 0.3


def _span(spec, trace) -> float:
    """The fraction of its axis's range that a curve's plotted values cover."""
    axis = spec["layout"]["yaxis" + trace.get("yaxis", "y")[1:]]
    y = _arr(trace["y"])
    return (np.nanmax(y) - np.nanmin(y)) / (axis["range"][1] - axis["range"][0])


def test_every_curve_stays_readable_at_extreme_alpha_and_delta():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["decay_alpha"], at.query_params["decay_delta"] = "6.0", "0.1"
    at.run()
    spec = _spec(at)
    potentials = [t for t in spec["data"] if t.get("yaxis", "y") in ("y", "y2")]
    assert len(potentials) == 6
    for t in potentials:
        assert _span(spec, t) > 0.05, t["name"]  # e.g. contrastive d^2 beside PFML's 1e6 floor
        lin = _lin(spec["layout"]["yaxis" + t.get("yaxis", "y")[1:]]["title"]["text"])
        np.testing.assert_allclose(_arr(t["y"]), decay.symlog(_arr(t["customdata"]), lin))
    for axis in ("yaxis", "yaxis2"):  # the axis says how it is drawn, its ticks name real values
        title = spec["layout"][axis]["title"]["text"]
        assert "symmetric log" in title
        ticks, lin = spec["layout"][axis], _lin(title)
        real = [_value(t) for t in ticks["ticktext"]]
        np.testing.assert_allclose(ticks["tickvals"], decay.symlog(real, lin))


def _value(label: str) -> float:
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}
    return float(label[:-1]) * scale[label[-1]] if label[-1] in scale else float(label)


def test_up_to_three_alphas_overlay_and_reach_the_url():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    at.multiselect(key="decay_more").set_value([1.0, 6.0]).run()
    assert not at.exception
    pf = [t for t in _spec(at)["data"] if t.get("legendgroup") == "pfml" and t.get("yaxis", "y") == "y"]
    assert [t["name"].rsplit(", ", 1)[1] for t in pf] == [f"alpha = {a}" for a in ("1", "3", "6")]
    for t, a in zip(pf, (1.0, 3.0, 6.0)):
        d = torch.tensor(_arr(t["x"]))
        np.testing.assert_allclose(_arr(t["customdata"]), physics.attraction(d, alpha=a, delta=0.3).numpy())
    assert at.multiselect(key="decay_more").max_selections == 2  # with the slider's alpha: 3 at most
    link = AppTest.from_file(PAGE, default_timeout=60)
    link.query_params["decay_more"] = ["1", "6"]  # a shared link brings the overlay back
    link.run()
    assert link.multiselect(key="decay_more").value == [1.0, 6.0]


def _lin(title: str) -> float:
    """The linear range a symlog axis title names: '... (linear below 0.001)' -> 0.001."""
    return float(title.rsplit("below ", 1)[1].rstrip(")"))
