"""AppTest of pages/decay_explorer.py."""
import base64
import json
from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from pfml_core.physics import field as physics

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "decay_explorer.py")


def _arr(v):
    """A spec array: a plain list or Plotly's base64 typed array {"dtype", "bdata"}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.array(v, dtype=float)


def _pfml_traces(at):
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    pf = [t for t in spec["data"] if t.get("legendgroup") == "pfml"]
    return _arr(pf[0]["x"]), _arr(pf[0]["y"]), pf


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
