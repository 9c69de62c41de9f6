"""Playground and decay figures (pfml_core/viz/field.py, pfml_core/viz/decay.py)."""
import numpy as np
import pytest
import torch

from pfml_core.playground import descent
from pfml_core.physics import field as physics
from pfml_core.playground.scene import SceneConfig, build_scene
from pfml_core.viz import decay, field


@pytest.fixture(scope="module")
def drawn():
    s = build_scene(SceneConfig(preset="label_noise", classes=3, points_per_class=10, noise=0.1))
    dyn = descent.Dynamics()
    frame = descent.initial_frame(s, dyn)
    snap = descent.snapshot(s, frame, dyn, 2, descent.bounds(s), n=20)
    return s, frame, snap, field.field_figure(s, frame, **snap)


def test_figure_holds_contour_of_the_field_and_quiver_of_the_forces(drawn):
    s, frame, snap, fig = drawn
    types = [t.type for t in fig.data]
    assert types[0] == "contour" and "quiver" in types
    np.testing.assert_array_equal(np.array(fig.data[0].z), snap["z"].astype(float))
    q = next(t for t in fig.data if t.type == "quiver")
    pos = np.concatenate([frame.points, frame.proxies])
    np.testing.assert_allclose(np.c_[q.x, q.y], pos, rtol=1e-6)
    uv = np.c_[q.u, q.v]  # arrows point along physics.forces
    cos = (uv * snap["forces"]).sum(1) / (np.linalg.norm(uv, axis=1) * np.linalg.norm(snap["forces"], axis=1) + 1e-12)
    assert np.all(cos[np.linalg.norm(snap["forces"], axis=1) > 0] > 0.999)
    np.testing.assert_allclose(q.customdata, np.linalg.norm(snap["forces"], axis=1), rtol=1e-6)


def test_colour_scale_is_centred_on_the_far_value_and_saturated(drawn):
    s, _, snap, fig = drawn
    c = fig.data[0]
    n_other = (s.labels != 2).sum() + (s.proxy_labels != 2).sum()
    assert (c.zmin + c.zmax) / 2 == pytest.approx(n_other * 0.3 ** -3.0)
    assert c.zmax < snap["z"].max()  # the 1/d^alpha spikes are clipped for display
    assert c.colorscale[0][1] != c.colorscale[-1][1]


def test_flipped_points_are_drawn_as_x_in_their_given_label_colour(drawn):
    s, frame, _, fig = drawn
    x = next(t for t in fig.data if t.type == "scatter" and t.marker.symbol == "x")
    np.testing.assert_allclose(np.c_[x.x, x.y], frame.points[s.flipped])
    assert list(x.marker.color) == [field.color(c) for c in s.labels[s.flipped]]
    stars = [t for t in fig.data if t.type == "scatter" and t.marker.symbol == "star"]
    assert sum(len(t.x) for t in stars) == len(s.proxies)


def test_compare_table_lists_each_mislabeled_point(drawn):
    s = drawn[0]
    t = field.compare_table(s, {"pfml": np.full(s.flipped.sum(), 0.1), "contrastive": np.ones(s.flipped.sum())})
    assert list(t["sample"]) == list(np.flatnonzero(s.flipped))
    assert list(t["given label"]) == list(s.labels[s.flipped])
    assert list(t.columns[-2:]) == ["dragged under pfml", "dragged under contrastive"]


def test_energy_figure_has_one_line_per_potential():
    fig = field.energy_figure({"pfml": [3.0, 2.0], "contrastive": [5.0, 1.0]})
    assert [t.name for t in fig.data] == ["pfml", "contrastive"] and list(fig.data[1].y) == [5.0, 1.0]


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
