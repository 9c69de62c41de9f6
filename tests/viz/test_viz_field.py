"""Playground and decay figures (pfml_core/viz/field.py, fieldmap.py, decay.py)."""
import base64

import numpy as np
import pytest
import torch
from pngs import read_png_uri

from pfml_core.physics import field as physics
from pfml_core.playground import descent, movie
from pfml_core.playground.scene import build_scene, preset_config
from pfml_core.viz import decay, field, fieldmap


def arr(v) -> np.ndarray:
    """A trace array as Plotly receives it: a list, or a base64 typed array."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


@pytest.fixture(scope="module")
def drawn():
    s = build_scene(preset_config("label_noise", points_per_class=10))
    dyn = descent.Dynamics()
    m = movie.record(s, dyn, 2, descent.bounds(s), 4, grid=20)
    return s, m, field.play_figure(s, {"PFML": m}).to_dict()


def _traces(fig, name):
    return [t for t in fig["data"] if t.get("name") == name]


def test_field_image_is_the_physics_field_minus_the_plateau(drawn):
    s, m, fig = drawn
    n_other = (s.labels != 2).sum() + (s.proxy_labels != 2).sum()
    assert m.reference == pytest.approx(n_other * 0.3 ** -3.0)  # each other-class source: 1/delta^alpha
    shown = read_png_uri(fig["layout"]["images"][0]["source"])  # (20, 20, 3), row 0 = lowest y
    gx, gy = np.meshgrid(m.xs, m.ys)
    src = torch.tensor(np.concatenate([s.points, s.proxies]))
    lab = torch.tensor(np.concatenate([s.labels, s.proxy_labels]))
    psi = physics.class_potential(torch.tensor(np.c_[gx.ravel(), gy.ravel()]), src, lab, 2,
                                  alpha=3.0, delta=0.3).numpy().reshape(20, 20)
    want = fieldmap.colorize(psi - m.reference, *fieldmap.colour_limits(psi - m.reference))
    assert np.abs(shown.astype(int) - want.astype(int)).max() <= 1
    img = fig["layout"]["images"][0]  # stretched over exactly the view the grid tiles
    x0, x1, y0, y1 = m.view
    assert (img["x"], img["y"], img["sizex"], img["sizey"]) == pytest.approx((x0, y1, x1 - x0, y1 - y0))


def test_colour_scale_is_white_at_the_plateau_blue_below_red_above():
    soft, top = fieldmap.colour_limits(np.array([-50.0, -1.0, 0.0, 2.0, 3000.0]))
    white, blue, red = fieldmap.colorize(np.array([0.0, -top, top]), soft, top)
    assert tuple(white) == (0xf7, 0xf6, 0xf6)
    assert blue[2] > blue[0] + 60 and red[0] > red[2] + 60  # pulled = blue, pushed = red
    assert fieldmap.to_unit(1e9, soft, top) == 1.0  # spikes saturate
    vals, text = fieldmap.colour_ticks(soft, top)
    assert text[len(text) // 2] == "0" and vals == sorted(vals) and -1 <= vals[0] and vals[-1] <= 1


def test_arrows_point_along_physics_forces_from_every_point(drawn):
    s, m, fig = drawn
    arrows = _traces(fig, "force")[0]
    path = np.c_[arr(arrows["x"]), arr(arrows["y"])].reshape(-1, 6, 2)  # tail, head, barb, head, barb, gap
    pos = np.concatenate([s.points, s.proxies])
    np.testing.assert_allclose(path[:, 0], pos, rtol=1e-6, atol=1e-6)
    assert np.isnan(path[:, 5]).all()
    f = m.forces[0]
    mag = np.linalg.norm(f, axis=1)
    uv = path[:, 1] - path[:, 0]
    cos = (uv * f).sum(1) / (np.linalg.norm(uv, axis=1) * mag + 1e-12)
    assert np.all(cos[mag > 0] > 0.999)
    length = np.linalg.norm(uv, axis=1)
    unit = field.arrow_unit(m)
    np.testing.assert_allclose(length, np.minimum(unit * np.cbrt(mag), 1.5 * 0.1 * (m.view[1] - m.view[0])),
                               rtol=1e-4)
    assert length.max() == pytest.approx(0.1 * (m.view[1] - m.view[0]), rel=1e-4)  # longest at step 0


def test_flipped_points_are_drawn_as_x_in_their_given_label_colour(drawn):
    s, _, fig = drawn
    x = _traces(fig, "mislabeled")[0]
    assert x["marker"]["symbol"] == "x"
    np.testing.assert_allclose(np.c_[arr(x["x"]), arr(x["y"])], s.points[s.flipped], rtol=1e-6)
    assert list(x["marker"]["color"]) == [field.color(c) for c in s.labels[s.flipped]]
    clean = _traces(fig, "samples")[0]
    assert len(arr(clean["x"])) == (~s.flipped).sum()
    stars = _traces(fig, "proxies")[0]
    assert stars["marker"]["symbol"] == "star" and len(arr(stars["x"])) == len(s.proxies)


def test_every_frame_moves_the_points_to_that_step_of_the_descent(drawn):
    s, m, fig = drawn
    frames = fig["frames"]
    assert [f["name"] for f in frames] == [str(k) for k in range(5)]
    names = ("samples", "mislabeled", "proxies", "force", "step")
    moving = [i for i, t in enumerate(fig["data"]) if t.get("name") in names]
    for k, f in enumerate(frames):
        assert f["traces"] == moving
        got = dict(zip([fig["data"][i]["name"] for i in f["traces"]], f["data"]))
        np.testing.assert_allclose(np.c_[arr(got["proxies"]["x"]), arr(got["proxies"]["y"])], m.proxies[k], rtol=1e-6)
        np.testing.assert_allclose(arr(got["mislabeled"]["x"]), m.points[k][s.flipped, 0], rtol=1e-6)
        assert got["step"]["text"] == [f"step: <b>{k}</b> of 4"]
        assert len(f["layout"]["images"]) == 1
    shown = [read_png_uri(f["layout"]["images"][0]["source"]) for f in (frames[0], frames[4])]
    assert not np.array_equal(*shown)  # the field redraws as the sources move


def _plotly_step(step_list, current):
    """What Plotly shows after Step: animate(step_list, fromcurrent) keeps, when the current
    frame is found at an index 0 < E < len - 1, the non-name entries and the names after E;
    the first queued entry is shown for 0 ms, the second is held (plotly.js 3-4 animate)."""
    names = [e if isinstance(e, str) else None for e in step_list]
    if current is not None and current in names:
        e = names.index(current)
        if 0 < e < len(names) - 1:
            step_list = [x for i, x in enumerate(step_list) if not isinstance(x, str) or i > e]
    return step_list[1] if len(step_list) > 1 else step_list[0]


def test_step_button_shows_the_next_frame_from_anywhere(drawn):
    fig = drawn[2]
    buttons = {b["label"].split()[-1]: b for b in fig["layout"]["updatemenus"][0]["buttons"]}
    assert set(buttons) == {"Play", "Pause", "\u25b8", "Reset"}
    step_list, opts = buttons["\u25b8"]["args"]
    assert opts["fromcurrent"] and [f["duration"] for f in opts["frame"]] == [0, field.HOLD_MS]
    for current, want in [(None, "1"), ("0", "1"), ("1", "2"), ("3", "4"), ("4", "4")]:
        assert _plotly_step(step_list, current) == want
    play = buttons["Play"]["args"][1]
    assert play["fromcurrent"] and play["frame"] == {"duration": field.FRAME_MS, "redraw": False}
    assert buttons["Reset"]["args"][0] == ["0", "0"] and buttons["Play"]["args"][0] is None
    stops = [st["label"] for st in fig["layout"]["sliders"][0]["steps"]]
    assert stops[0] == "0" and stops[-1] == "4"


def test_slider_keeps_at_most_its_stops_and_both_ends():
    s = build_scene(preset_config("two_classes", points_per_class=3, proxies_per_class=1))
    m = movie.record(s, descent.Dynamics(), 0, descent.bounds(s), 100, grid=6)
    stops = [st["label"] for st in field.play_figure(s, {"PFML": m}).to_dict()["layout"]["sliders"][0]["steps"]]
    assert len(stops) <= field.SLIDER_STEPS and stops[0] == "0" and stops[-1] == "100"


def _compare(alpha=3.0, fixed=False, **scene):
    s = build_scene(preset_config("label_noise", points_per_class=5, **scene))
    view = descent.bounds(s)
    movies = {label: movie.record(s, descent.Dynamics(alpha=alpha, potential=p), 0, view, 2, grid=8)
              for label, p in (("PFML", "pfml"), ("contrastive", "contrastive"))}
    return movies, field.play_figure(s, movies, fixed_scale=fixed).to_dict()


def test_compare_panels_share_one_colour_scale_named_in_words():
    movies, fig = _compare()
    assert {t.get("xaxis") for t in _traces(fig, "proxies")} == {"x", "x2"}
    bars = [t for t in fig["data"] if t.get("marker", {}).get("coloraxis") == "coloraxis"]
    assert len(bars) == 1 and fig["layout"]["coloraxis"]["showscale"]  # ONE colour bar for both
    assert not any(t.get("marker", {}).get("showscale") for t in fig["data"])
    title = fig["layout"]["coloraxis"]["colorbar"]["title"]["text"]
    assert "potential of class 0" in title and "field -" not in title and "shared" in title
    limits = fieldmap.shared_limits([m.field[0] for m in movies.values()])
    for i, m in enumerate(movies.values()):  # each panel's pixels: its field on the shared limits
        shown = read_png_uri(fig["layout"]["images"][i]["source"]).astype(int)
        assert np.abs(shown - fieldmap.colorize(m.field[0], *limits).astype(int)).max() <= 1
    assert fig["layout"]["coloraxis"]["colorbar"]["ticktext"] == fieldmap.colour_ticks(*limits)[1]
    assert all(len(f["layout"]["images"]) == 2 for f in fig["frames"])
    assert "median" in fieldmap.legend_sentence("contrastive", 0, 1.0)
    assert "pulled toward class 0" in fieldmap.legend_sentence("pfml", 0, 1.0)


def test_fixed_scale_keeps_one_colour_per_value_across_settings():
    (_, auto2), (_, auto5) = _compare(2.0), _compare(5.0)
    bar = lambda f: f["layout"]["coloraxis"]["colorbar"]  # noqa: E731
    assert bar(auto2)["ticktext"] != bar(auto5)["ticktext"]  # fitted: the scale moves with alpha
    (m2, fixed2), (m5, fixed5) = _compare(2.0, fixed=True), _compare(5.0, fixed=True, seed=3)
    ticks = lambda f: [bar(f)[k] for k in ("ticktext", "tickvals")]  # noqa: E731
    assert ticks(fixed2) == ticks(fixed5)
    assert "fixed scale" in bar(fixed2)["title"]["text"]
    for movies, fig in ((m2, fixed2), (m5, fixed5)):
        z = movies["PFML"].field[0]
        shown = read_png_uri(fig["layout"]["images"][0]["source"]).astype(int)
        assert np.abs(shown - fieldmap.colorize(z, *fieldmap.FIXED_LIMITS).astype(int)).max() <= 1


def test_compare_table_lists_each_mislabeled_point(drawn):
    s = drawn[0]
    t = field.compare_table(s, {"pfml": np.full(s.flipped.sum(), 0.1), "contrastive": np.ones(s.flipped.sum())})
    assert list(t["sample"]) == list(np.flatnonzero(s.flipped))
    assert list(t["given label"]) == list(s.labels[s.flipped])
    assert list(t.columns[-2:]) == ["dragged under pfml", "dragged under contrastive"]


def test_energy_figure_has_one_panel_per_potential(drawn):
    s, m, _ = drawn
    fig = field.energy_figure({"PFML": m, "again": m}).to_dict()
    assert [t["name"] for t in fig["data"]] == ["PFML", "again"]
    assert list(fig["data"][1]["y"]) == pytest.approx(list(m.energy))
    spans_decades = (m.energy > 0).all() and np.log10(m.energy.max() / m.energy.min()) > 1.5
    assert fig["data"][1]["yaxis"] == "y2"
    assert fig["layout"]["yaxis"]["type"] == ("log" if spans_decades else "linear")
    flat = dict(m.__dict__, energy=np.linspace(2.0, 3.0, len(m)))  # less than a decade: linear
    assert field.energy_figure({"f": movie.Movie(**flat)}).to_dict()["layout"]["yaxis"]["type"] == "linear"
    steep = dict(m.__dict__, energy=np.geomspace(1e6, 1.0, len(m)))
    assert field.energy_figure({"s": movie.Movie(**steep)}).to_dict()["layout"]["yaxis"]["type"] == "log"
    both = field.energy_figure({"s": movie.Movie(**steep), "f": movie.Movie(**flat)}).to_dict()["layout"]
    assert both["yaxis"]["type"] == both["yaxis2"]["type"] == "log"  # compare panels: one axis type
    signed = dict(m.__dict__, energy=np.linspace(-2.0, 3.0, len(m)))  # U < 0 somewhere: linear for all
    both = field.energy_figure({"s": movie.Movie(**steep), "n": movie.Movie(**signed)}).to_dict()["layout"]
    assert both["yaxis"]["type"] == both["yaxis2"]["type"] == "linear"


def test_decay_curves_match_physics_and_the_force_law():
    c = decay.curves(alpha=2.0, delta=0.25)
    d = torch.tensor(c["d"])
    np.testing.assert_allclose(c["pfml"]["attraction"], physics.attraction(d, alpha=2.0, delta=0.25).numpy())
    np.testing.assert_allclose(c["pfml"]["repulsion"], physics.repulsion(d, alpha=2.0, delta=0.25).numpy())
    far = c["d"] > 0.3
    np.testing.assert_allclose(c["pfml"]["force_att"][far], 2.0 / c["d"][far] ** 3, rtol=1e-6)
    assert np.all(c["pfml"]["force_att"][c["d"] < 0.24] == 0)  # no pull inside delta
    np.testing.assert_allclose(c["contrastive"]["force_att"], 2 * c["d"], rtol=1e-6)  # grows


def test_decay_figure_has_three_panels_with_every_potential():
    fig = decay.decay_figure(3.0, 0.2)
    assert len(fig.data) == 9 and fig.layout.yaxis3.type == "log"
    assert len(decay.explanation(3.0, 0.2)) == 4
