"""AppTest of pages/playground.py: what the chart shows, controls, URL state."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from pfml_core.physics import field as physics
from pfml_core.playground import url_state as state
from pfml_core.playground.scene import build_scene

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "playground.py")


def _app(query=None):
    at = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def _spec(at, i=0):
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def _trace(spec, kind):
    return next(t for t in spec["data"] if t["type"] == kind)


def _expected_field(spec, values, cls):
    """physics.class_potential on the chart's own grid, sources from the scene's frame 0."""
    s = build_scene(state.scene_config(values))
    c = _trace(spec, "contour")
    gx, gy = np.meshgrid(np.array(c["x"], dtype=np.float32), np.array(c["y"], dtype=np.float32))
    grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1))
    src = torch.tensor(np.concatenate([s.points, s.proxies]))
    lab = torch.tensor(np.concatenate([s.labels, s.proxy_labels]))
    d = state.dynamics(values)
    psi = physics.class_potential(grid, src, lab, cls, alpha=d.alpha, delta=d.delta, delta_rep=d.delta_rep)
    return psi.numpy().reshape(gx.shape), np.array(c["z"])


def _step_text(at):
    return next(m.value for m in at.markdown if m.value.startswith("**Step"))


def test_chart_holds_the_physics_field_and_force_arrows():
    at = _app()
    assert not at.exception
    spec = _spec(at)
    assert {"contour", "quiver"} <= {t["type"] for t in spec["data"]}
    want, got = _expected_field(spec, state.defaults(), 0)
    assert got.shape == (60, 60)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_alpha_and_field_class_controls_change_the_field():
    at = _app()
    before = np.array(_trace(_spec(at), "contour")["z"])
    at.slider(key="pg_alpha").set_value(5.0)
    at.slider(key="pg_field_class").set_value(1).run()
    spec = _spec(at)
    want, got = _expected_field(spec, dict(state.defaults(), alpha=5.0), 1)
    assert not np.allclose(got, before)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_step_button_advances_the_counter_and_moves_points():
    at = _app()
    q0 = _trace(_spec(at), "quiver")
    assert _step_text(at).startswith("**Step 0")
    at.button(key="pg_step").click().run()
    at.button(key="pg_step").click().run()
    assert _step_text(at).startswith("**Step 2")
    q2 = _trace(_spec(at), "quiver")
    assert not np.allclose(q0["x"], q2["x"])
    at.button(key="pg_reset").click().run()
    assert _step_text(at).startswith("**Step 0")


def test_url_reproduces_the_scene_and_hides_controls():
    query = state.to_query(dict(state.defaults(), preset="label_noise", seed=5, alpha=2.5, noise=0.1),
                           hidden=["alpha"])
    at = _app(query)
    assert not at.exception and not at.warning
    assert "pg_alpha" not in [s.key for s in at.slider]  # classroom mode hides it
    assert at.number_input(key="pg_seed").value == 5
    values = state.parse(query)[0]
    want, got = _expected_field(_spec(at), values, 0)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("query", [{"pg_alpha": "99"}, {"pg_alpha": "abc"}, {"pg_preset": "moon"}])
def test_bad_url_values_fall_back_with_a_notice(query):
    at = _app(query)
    assert not at.exception
    assert len(at.warning) == 1 and "URL value ignored" in at.warning[0].value
    assert at.slider(key="pg_alpha").value == 3.0 and at.selectbox(key="pg_preset").value == "two_classes"
    want, got = _expected_field(_spec(at), state.defaults(), 0)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_compare_mode_draws_both_potentials_and_a_drag_table():
    at = _app({"pg_preset": "label_noise", "pg_compare": "true"})
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # PFML field, contrastive field, energy
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts[:2]]
    assert titles[0].startswith("pfml") and titles[1].startswith("contrastive")
    for _ in range(3):
        at.button(key="pg_step").click().run()
    table = at.dataframe[0].value
    s = build_scene(state.scene_config(dict(state.defaults(), preset="label_noise")))
    assert list(table["sample"]) == list(np.flatnonzero(s.flipped))
    assert (table["dragged under contrastive"] > 0).all()
