"""AppTest of pages/playground.py: what the chart shows, presets setting the controls, the
URL holding the state, and notices for bad links."""
import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pngs import read_png_uri
from streamlit.testing.v1 import AppTest

from pfml_core.physics import field as physics
from pfml_core.playground import descent, movie
from pfml_core.playground import url_state as state
from pfml_core.playground.scene import build_scene
from pfml_core.viz import fieldmap

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "playground.py")


def _app(query=None):
    at = AppTest.from_file(PAGE, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def _spec(at, i=0):
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def _arr(v):
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


def _trace(spec, name, frame=None):
    i = next(i for i, t in enumerate(spec["data"]) if t.get("name") == name)
    if frame is None:
        return spec["data"][i]
    f = spec["frames"][frame]
    return f["data"][f["traces"].index(i)]


def _expected_image(spec, values, cls, panel=0, limits=None):
    """physics.class_potential minus the plateau on the image's own pixel grid (frame 0),
    coloured as the app colours it (on `limits`, default: fitted to it)."""
    s = build_scene(state.scene_config(values))
    img = spec["layout"]["images"][panel]
    shown = read_png_uri(img["source"])
    n = shown.shape[0]
    xs = img["x"] + img["sizex"] * (np.arange(n) + 0.5) / n
    ys = img["y"] - img["sizey"] + img["sizey"] * (np.arange(n) + 0.5) / n
    gx, gy = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    src = torch.tensor(np.concatenate([s.points, s.proxies]))
    lab = torch.tensor(np.concatenate([s.labels, s.proxy_labels]))
    d = state.dynamics(values)
    psi = physics.class_potential(torch.tensor(np.c_[gx.ravel(), gy.ravel()]), src, lab, cls,
                                  alpha=d.alpha, delta=d.delta, delta_rep=d.delta_rep).numpy()
    z = psi.reshape(n, n) - descent.plateau(s, cls, d)
    return fieldmap.colorize(z, *(limits or fieldmap.colour_limits(z))), shown


def _close(want, got):
    return np.abs(want.astype(int) - got.astype(int)).max() <= 2


def test_chart_holds_the_physics_field_and_force_arrows():
    at = _app()
    assert not at.exception
    spec = _spec(at)
    want, got = _expected_image(spec, state.defaults(), 0)
    assert got.shape == (descent.GRID, descent.GRID, 3) and _close(want, got)
    s = build_scene(state.scene_config(state.defaults()))
    arrows = np.c_[_arr(_trace(spec, "force")["x"]), _arr(_trace(spec, "force")["y"])].reshape(-1, 6, 2)
    f = physics.forces(torch.tensor(s.points), torch.tensor(s.labels), torch.tensor(s.proxies),
                       torch.tensor(s.proxy_labels), alpha=3.0, delta=0.3).numpy()
    uv = arrows[:, 1] - arrows[:, 0]
    cos = (uv * f).sum(1) / (np.linalg.norm(uv, axis=1) * np.linalg.norm(f, axis=1) + 1e-12)
    assert np.all(cos[np.linalg.norm(f, axis=1) > 0] > 0.999)
    legend = [c.value for c in at.caption if "PFML" in c.value][0]
    assert "Blue: pulled toward class 0" in legend and "pushed out of another class's margin" in legend


def test_alpha_and_field_class_controls_change_the_field():
    at = _app()
    before = read_png_uri(_spec(at)["layout"]["images"][0]["source"])
    at.slider(key="pg_alpha").set_value(5.0)
    at.slider(key="pg_field_class").set_value(1).run()
    want, got = _expected_image(_spec(at), dict(state.defaults(), alpha=5.0), 1)
    assert not np.array_equal(got, before) and _close(want, got)
    assert at.query_params["pg_alpha"] == "5.0" and at.query_params["pg_field_class"] == "1"


def test_frames_are_the_descent_steps_and_steps_sets_how_many():
    at = _app({"pg_steps": "40"})
    spec = _spec(at)
    assert [f["name"] for f in spec["frames"]] == [str(k) for k in range(41)]
    s = build_scene(state.scene_config(state.defaults()))
    frames = descent.simulate(s, state.dynamics(state.defaults()), 40)
    for k in (1, 2, 40):  # the browser shows exactly the library's descent
        got = _trace(spec, "proxies", k)
        np.testing.assert_allclose(np.c_[_arr(got["x"]), _arr(got["y"])], frames[k].proxies, rtol=1e-5, atol=1e-6)
    assert not np.allclose(_arr(_trace(spec, "samples", 0)["x"]), _arr(_trace(spec, "samples", 2)["x"]))
    assert any("steps 0-40" in c.value for c in at.caption)


def test_a_preset_sets_the_visible_controls_and_the_url_holds_them():
    at = _app()
    assert at.slider(key="pg_classes").value == 2 and at.slider(key="pg_classes").disabled  # two_classes
    at.selectbox(key="pg_preset").set_value("label_noise").run()
    assert not at.exception
    assert at.slider(key="pg_noise").value == 0.1 and at.slider(key="pg_classes").value == 3
    assert not at.slider(key="pg_classes").disabled
    assert dict(at.query_params) == {"pg_preset": "label_noise"}  # the rest is the preset's
    at.slider(key="pg_noise").set_value(0.3).run()
    assert dict(at.query_params) == {"pg_preset": "label_noise", "pg_noise": "0.3"}
    mislabeled = _arr(_trace(_spec(at), "mislabeled")["x"])
    assert len(mislabeled) == round(0.3 * 60)  # the scene drawn is the one the controls show
    at.selectbox(key="pg_preset").set_value("proxies_only").run()
    assert at.slider(key="pg_points_per_class").value == 0 and at.slider(key="pg_points_per_class").disabled
    assert at.slider(key="pg_proxies_per_class").value == 3 and at.slider(key="pg_noise").value == 0.0


def test_controls_show_words_and_the_values_in_use():
    at = _app({"pg_delta": "0.45"})
    labels = {s.key: s.label for s in at.slider}
    assert labels["pg_points_per_class"] == "points per class" and labels["pg_alpha"].startswith("decay alpha")
    assert labels["pg_delta"].startswith("margin delta") and labels["pg_field_class"] == "field of class"
    assert at.slider(key="pg_step_size").value == 0.002 and at.slider(key="pg_step_size").proto.format == "%.4f"
    shown = at.slider(key="pg_delta_rep_shown")  # the repulsion margin in use: delta's
    assert shown.disabled and shown.value == 0.45 and "delta_rep" in shown.label
    at.toggle(key="pg_separate_rep").set_value(True).run()
    assert at.slider(key="pg_delta_rep").value == 0.45 and not at.slider(key="pg_delta_rep").disabled
    assert at.slider(key="pg_field_class").proto.max == 1  # two classes: 0 and 1 only
    assert at.selectbox(key="pg_compare_potential").disabled  # compare is off


def test_url_reproduces_the_scene_and_hides_controls():
    values = dict(state.defaults(), preset="label_noise", classes=3, seed=5, alpha=2.5, noise=0.1)
    query = state.to_query(values, hidden=["alpha"])
    at = _app(query)
    assert not at.exception and not at.warning
    assert "pg_alpha" not in [s.key for s in at.slider]  # classroom mode hides it
    assert at.number_input(key="pg_seed").value == 5
    want, got = _expected_image(_spec(at), state.parse(query)[0], 0)
    assert _close(want, got)
    assert dict(at.query_params) == query  # hidden values and the hide option stay in the URL


@pytest.mark.parametrize("query", [{"pg_alpha": "99"}, {"pg_alpha": "abc"}, {"pg_preset": "moon"}])
def test_bad_url_values_fall_back_with_a_notice(query):
    at = _app(query)
    assert not at.exception
    assert len(at.warning) == 1 and "URL value ignored" in at.warning[0].value
    assert at.slider(key="pg_alpha").value == 3.0 and at.selectbox(key="pg_preset").value == "two_classes"
    want, got = _expected_image(_spec(at), state.defaults(), 0)
    assert _close(want, got)
    assert not any(k in at.query_params for k in query)  # the URL no longer holds the bad value


def test_markdown_in_a_bad_url_value_is_shown_as_text():
    at = _app({"pg_preset": "[Click here](https://evil.example)"})
    notice = at.warning[0].value
    assert "`[Click here](https://evil.example)`" in notice  # inside a code span
    outside = notice.split("`")[0] + notice.split("`")[2]
    assert "](" not in outside and "evil" not in outside


def test_compare_mode_draws_both_potentials_and_a_drag_table():
    at = _app({"pg_preset": "label_noise", "pg_compare": "true"})
    spec = _spec(at)
    titles = [a["text"] for a in spec["layout"]["annotations"] if "field of class" in a["text"]]
    assert titles[0].startswith("<b>PFML") and titles[1].startswith("<b>contrastive")
    assert len(spec["layout"]["images"]) == 2
    energy = _spec(at, 1)
    assert [t["name"] for t in energy["data"]] == ["PFML (decaying)", "contrastive (non-decaying)"]
    table = at.dataframe[0].value
    s = build_scene(state.scene_config(state.parse({"pg_preset": "label_noise"})[0]))
    assert list(table["sample"]) == list(np.flatnonzero(s.flipped))
    assert (table["dragged under contrastive"] > table["dragged under pfml"]).mean() >= 0.8
    rec = movie.record(s, descent.Dynamics(potential="contrastive"), 0, descent.bounds(s), 120, grid=4)
    np.testing.assert_allclose(table["dragged under contrastive"], np.round(rec.dragged(s.flipped), 3), atol=2e-3)


def test_fixed_scale_holds_the_colours_still_across_settings_and_sits_in_the_url():
    bar = lambda at: _spec(at)["layout"]["coloraxis"]["colorbar"]  # noqa: E731
    fitted = [_app({"pg_alpha": a}) for a in ("2.0", "5.0")]
    assert bar(fitted[0])["ticktext"] != bar(fitted[1])["ticktext"]  # the fitted scale moves
    at = _app({"pg_alpha": "2.0"})
    at.toggle(key="pg_fixed_scale").set_value(True).run()
    assert at.query_params["pg_fixed_scale"] == "true"
    at.slider(key="pg_alpha").set_value(5.0).run()
    fixed = [_app({"pg_alpha": a, "pg_fixed_scale": "true"}) for a in ("2.0", "5.0")]
    assert bar(fixed[0]) == bar(fixed[1]) == bar(at) and "fixed scale" in bar(at)["title"]["text"]
    values = state.parse({"pg_alpha": "5.0"})[0]
    assert _close(*_expected_image(_spec(at), values, 0, limits=fieldmap.FIXED_LIMITS))


def test_compare_panels_share_one_colour_bar_and_one_energy_axis_type():
    at = _app({"pg_preset": "label_noise", "pg_compare": "true"})
    spec, energy = _spec(at), _spec(at, 1)
    assert sum(1 for t in spec["data"] if t.get("marker", {}).get("coloraxis") == "coloraxis") == 1
    assert "field -" not in spec["layout"]["coloraxis"]["colorbar"]["title"]["text"]
    assert energy["layout"]["yaxis"]["type"] == energy["layout"]["yaxis2"]["type"]
    assert [b.label for b in at.get("download_button")] == [
        "Step 120 (PNG)", "Animation (GIF)", "Animation (MP4)", "Scene at step 120 (CSV)"]
