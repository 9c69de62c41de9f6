"""Scenes (pfml_core/toy.py) and their descent (pfml_core/descent.py)."""
import numpy as np
import pytest
import torch

from pfml_core.playground import descent
from pfml_core.physics import field as physics
from pfml_core.playground.scene import PRESETS, SceneConfig, build_scene, flip_labels


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_a_consistent_seeded_scene(preset):
    cfg = SceneConfig(preset=preset, classes=3, points_per_class=10, proxies_per_class=2, seed=7)
    a, b = build_scene(cfg), build_scene(cfg)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.proxies, b.proxies)
    assert np.array_equal(a.labels, b.labels)
    n = len(a.points)
    assert a.points.shape == (n, 2) and a.labels.shape == a.true_labels.shape == a.flipped.shape == (n,)
    assert np.array_equal(a.labels != a.true_labels, a.flipped)  # flips always change the class
    assert a.proxies.shape == (len(a.proxy_labels), 2)
    other = build_scene(SceneConfig(preset=preset, classes=3, points_per_class=10, seed=8))
    assert not np.array_equal(a.proxies, other.proxies)


def test_flip_labels_flips_the_requested_fraction_to_other_classes():
    labels = np.repeat(np.arange(4), 25)
    noisy, flipped = flip_labels(labels, 0.2, 4, np.random.default_rng(0))
    assert flipped.sum() == 20
    assert np.all(noisy[flipped] != labels[flipped]) and np.all(noisy[~flipped] == labels[~flipped])
    assert noisy.max() < 4


def test_large_variation_keeps_two_separated_subpopulations_per_class():
    s = build_scene(SceneConfig(preset="large_variation", classes=3, points_per_class=20))
    for c in range(3):
        a = s.points[(s.true_labels == c) & (s.subpop == 0)].mean(0)
        b = s.points[(s.true_labels == c) & (s.subpop == 1)].mean(0)
        assert np.linalg.norm(a - b) > 2.0


def test_presets_overrides_are_reported():
    s = build_scene(SceneConfig(preset="label_noise", noise=0.0, points_per_class=20, classes=3))
    assert s.flipped.sum() == 6 and any("noise" in n or "flips" in n for n in s.notes)
    assert len(build_scene(SceneConfig(preset="proxies_only")).points) == 0


@pytest.mark.parametrize("bad", [dict(classes=9), dict(noise=0.8), dict(preset="nope"), dict(seed=-1)])
def test_bad_config_raises_named_value_error(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        build_scene(SceneConfig(**bad))


def test_energy_gradient_is_minus_twice_the_forces():
    """Autograd of total_energy vs physics.forces: dU/dx_i = -2 F_i (each pair counted twice)."""
    s = build_scene(SceneConfig(preset="tight_margin", classes=3, points_per_class=8, noise=0.2))
    dyn = descent.Dynamics(alpha=2.0, delta=0.3)
    frame = descent.initial_frame(s, dyn)
    gx, gp = descent.energy_grad(s, frame.points, frame.proxies, dyn)
    f = descent.point_forces(s, frame, dyn)
    np.testing.assert_allclose(np.concatenate([gx, gp]), -2 * f, rtol=1e-3, atol=1e-3 * np.abs(f).max())


def test_step_moves_along_minus_gradient_and_lowers_energy():
    s = build_scene(SceneConfig(preset="two_classes", points_per_class=10, proxies_per_class=1))
    dyn = descent.Dynamics(step_size=1e-4, max_move=None)
    f0 = descent.initial_frame(s, dyn)
    gx, _ = descent.energy_grad(s, f0.points, f0.proxies, dyn)
    f1 = descent.step(s, f0, dyn)
    np.testing.assert_allclose(f1.points, f0.points - 1e-4 * gx, atol=1e-6)
    assert f1.energy < f0.energy and f1.step == 1


def test_clipping_caps_every_move():
    s = build_scene(SceneConfig(preset="tight_margin", classes=3, points_per_class=10, noise=0.2))
    frames = descent.simulate(s, descent.Dynamics(step_size=0.02, max_move=0.05), 3)
    for a, b in zip(frames, frames[1:]):
        assert np.linalg.norm(b.points - a.points, axis=1).max() <= 0.05 + 1e-5
        assert np.isfinite(b.energy)


def test_far_mislabeled_points_move_less_under_pfml_than_contrastive():
    s = build_scene(SceneConfig(preset="label_noise", classes=3, points_per_class=20, noise=0.1))
    dragged = {p: descent.displacement(descent.simulate(s, descent.Dynamics(potential=p), 60), s.flipped)
               for p in ("pfml", "contrastive")}
    assert s.flipped.sum() == 6
    assert dragged["pfml"].mean() < 0.5 * dragged["contrastive"].mean()


def test_field_on_grid_is_physics_class_potential_at_each_grid_point():
    s = build_scene(SceneConfig(preset="two_classes", points_per_class=5, proxies_per_class=1))
    dyn = descent.Dynamics()
    frame = descent.initial_frame(s, dyn)
    xs, ys = descent.grid_axes(descent.bounds(s), 7)
    z = descent.field_on_grid(s, frame, 1, dyn, xs, ys)
    src = torch.tensor(np.concatenate([s.points, s.proxies]))
    lab = torch.tensor(np.concatenate([s.labels, s.proxy_labels]))
    for i, j in [(0, 0), (3, 5), (6, 2)]:  # row i = y, column j = x
        want = physics.class_potential(torch.tensor([[xs[j], ys[i]]]), src, lab, 1, alpha=3.0, delta=0.3)
        assert z[i, j] == pytest.approx(float(want[0]), rel=1e-5)
