"""Scenes (pfml_core/playground/scene.py), their descent (descent.py) and the recorded
movies the browser plays (movie.py)."""
import numpy as np
import pytest
import torch

from pfml_core.data import flip_labels
from pfml_core.physics import field as physics
from pfml_core.playground import descent, movie
from pfml_core.playground.scene import PRESETS, SceneConfig, build_scene, preset_config


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_a_consistent_seeded_scene(preset):
    free = {k: v for k, v in dict(classes=3, points_per_class=10, proxies_per_class=2).items()
            if k not in PRESETS[preset].fixed}
    cfg = preset_config(preset, seed=7, **free)
    a, b = build_scene(cfg), build_scene(cfg)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.proxies, b.proxies)
    assert np.array_equal(a.labels, b.labels)
    n = len(a.points)
    assert a.points.shape == (n, 2) and a.labels.shape == a.true_labels.shape == a.flipped.shape == (n,)
    assert np.array_equal(a.labels != a.true_labels, a.flipped)  # flips always change the class
    assert a.proxies.shape == (len(a.proxy_labels), 2)
    other = build_scene(preset_config(preset, seed=8, **free))
    assert not np.array_equal(a.proxies, other.proxies)
    assert len(a.points) == cfg.classes * cfg.points_per_class  # exactly as configured
    assert len(a.proxies) == cfg.classes * cfg.proxies_per_class


def test_flip_labels_flips_the_requested_fraction_to_other_classes():
    """Scenes flip with pfml_core.data.flip_labels (one definition), drawing from the scene's
    generator."""
    labels = np.repeat(np.arange(4), 25)
    noisy, flipped = flip_labels(labels, 0.2, np.random.default_rng(0), 4)
    assert flipped.sum() == 20
    assert np.all(noisy[flipped] != labels[flipped]) and np.all(noisy[~flipped] == labels[~flipped])
    assert noisy.max() < 4


def test_large_variation_keeps_two_separated_subpopulations_per_class():
    s = build_scene(SceneConfig(preset="large_variation", classes=3, points_per_class=20))
    for c in range(3):
        a = s.points[(s.true_labels == c) & (s.subpop == 0)].mean(0)
        b = s.points[(s.true_labels == c) & (s.subpop == 1)].mean(0)
        assert np.linalg.norm(a - b) > 2.0


def test_presets_start_from_their_values_and_never_override_the_config():
    """A preset's values are where it starts (label noise: 10% flipped); a config with other
    values is built as given (never silently changed), except values the preset fixes."""
    s = build_scene(preset_config("label_noise"))
    assert s.flipped.sum() == 6  # 10% of 3 x 20
    assert build_scene(preset_config("label_noise", noise=0.0)).flipped.sum() == 0  # as asked
    assert build_scene(preset_config("two_classes")).num_classes == 2
    only = build_scene(preset_config("proxies_only"))
    assert len(only.points) == 0 and len(only.proxies) == 3 * 3
    with pytest.raises(ValueError, match="classes must be 2 in the two_classes scene, got 3"):
        build_scene(SceneConfig(preset="two_classes", classes=3))
    with pytest.raises(ValueError, match="points_per_class must be 0 in the proxies_only scene"):
        build_scene(preset_config("proxies_only", points_per_class=5))


@pytest.mark.parametrize("bad", [dict(classes=9), dict(noise=0.8), dict(preset="nope"), dict(seed=-1)])
def test_bad_config_raises_named_value_error(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        build_scene(SceneConfig(**bad))


def test_a_scene_without_points_is_refused():
    with pytest.raises(ValueError, match="points_per_class and proxies_per_class are both 0"):
        build_scene(preset_config("label_noise", points_per_class=0, proxies_per_class=0))


def energy_grad(scene, points, proxies, dyn):
    """dU/d(points), dU/d(proxies) by autograd on physics.total_energy: the reference the
    playground's force-based descent is checked against."""
    x, p = (torch.tensor(np.asarray(a), dtype=torch.float32, requires_grad=True) for a in (points, proxies))
    u = physics.total_energy(x, torch.as_tensor(scene.labels), p, torch.as_tensor(scene.proxy_labels),
                             normalize=False, **dyn.physics_kwargs())
    gx, gp = torch.autograd.grad(u, [x, p], allow_unused=True)
    return gx.numpy(), (torch.zeros_like(p) if gp is None else gp).numpy()


def test_energy_gradient_is_minus_twice_the_forces():
    """Autograd of total_energy vs physics.forces: dU/dx_i = -2 F_i (each pair counted twice)."""
    s = build_scene(SceneConfig(preset="tight_margin", classes=3, points_per_class=8, noise=0.2))
    dyn = descent.Dynamics(alpha=2.0, delta=0.3)
    frame = descent.initial_frame(s, dyn)
    gx, gp = energy_grad(s, frame.points, frame.proxies, dyn)
    f = descent.point_forces(s, frame, dyn)
    np.testing.assert_allclose(np.concatenate([gx, gp]), -2 * f, rtol=1e-3, atol=1e-3 * np.abs(f).max())


def test_step_moves_along_minus_gradient_and_lowers_energy():
    """A step is x - step_size * dU/dx with dU/dx from autograd of total_energy (the step
    itself uses 2 * physics.forces, the same vector)."""
    s = build_scene(SceneConfig(preset="two_classes", points_per_class=10, proxies_per_class=1))
    dyn = descent.Dynamics(step_size=1e-4, max_move=None)
    f0 = descent.initial_frame(s, dyn)
    gx, gp = energy_grad(s, f0.points, f0.proxies, dyn)
    f1 = descent.step(s, f0, dyn)
    move = 1e-4 * np.abs(np.concatenate([gx, gp])).max()
    np.testing.assert_allclose(f1.points, f0.points - 1e-4 * gx, atol=max(1e-6, 1e-3 * move))
    np.testing.assert_allclose(f1.proxies, f0.proxies - 1e-4 * gp, atol=max(1e-6, 1e-3 * move))
    assert f1.energy < f0.energy and f1.step == 1


def test_frozen_samples_stay_while_proxies_descend():
    s = build_scene(preset_config("large_variation", classes=2, proxies_per_class=3))
    frames = descent.simulate(s, descent.Dynamics(move_samples=False), 5)
    assert np.array_equal(frames[-1].points, s.points)
    assert np.linalg.norm(frames[-1].proxies - s.proxies, axis=1).min() > 0


def test_clipping_caps_every_move():
    s = build_scene(SceneConfig(preset="tight_margin", classes=3, points_per_class=10, noise=0.2))
    frames = descent.simulate(s, descent.Dynamics(step_size=0.02, max_move=0.05), 3)
    for a, b in zip(frames, frames[1:]):
        assert np.linalg.norm(b.points - a.points, axis=1).max() <= 0.05 + 1e-5
        assert np.isfinite(b.energy)


def test_far_mislabeled_points_move_less_under_pfml_than_contrastive():
    s = build_scene(SceneConfig(preset="label_noise", classes=3, points_per_class=20, noise=0.1))
    frames = {p: descent.simulate(s, descent.Dynamics(potential=p), 60) for p in ("pfml", "contrastive")}
    dragged = {p: np.linalg.norm(f[-1].points[s.flipped] - f[0].points[s.flipped], axis=1)
               for p, f in frames.items()}
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


def test_movie_chunks_join_into_the_one_shot_recording():
    """The app records a descent in chunks from each chunk's last frame; joined, they are the
    same frames, forces, energies and fields as one recording."""
    s = build_scene(preset_config("label_noise", points_per_class=8))
    dyn, view = descent.Dynamics(), descent.bounds(s)
    whole = movie.record(s, dyn, 1, view, 6, grid=12)
    first = movie.record(s, dyn, 1, view, 0, grid=12)
    parts = [first]
    for _ in range(2):
        parts.append(movie.record(s, dyn, 1, view, 3, start=parts[-1].frame(-1), grid=12,
                                  reference=first.reference))
    joined = movie.join(parts)
    assert list(joined.steps) == list(range(7)) and len(joined) == 7
    for name in ("points", "proxies", "forces", "energy", "field"):
        np.testing.assert_allclose(getattr(joined, name), getattr(whole, name), rtol=1e-6, atol=1e-6)


def test_movie_holds_physics_forces_and_the_field_minus_its_plateau():
    s = build_scene(preset_config("tight_margin", points_per_class=6, proxies_per_class=1))
    dyn, view = descent.Dynamics(alpha=2.0, delta=0.4), descent.bounds(s)
    m = movie.record(s, dyn, 2, view, 2, grid=9)
    n_other = int((s.labels != 2).sum() + (s.proxy_labels != 2).sum())
    assert m.reference == pytest.approx(n_other / 0.4 ** 2.0)  # each other-class source: 1/delta^alpha
    k = 2
    x, y = torch.tensor(m.points[k]), torch.tensor(s.labels)
    p, py = torch.tensor(m.proxies[k]), torch.tensor(s.proxy_labels)
    np.testing.assert_allclose(m.forces[k], physics.forces(x, y, p, py, alpha=2.0, delta=0.4).numpy(), rtol=1e-5)
    gx, gy = np.meshgrid(m.xs, m.ys)
    psi = physics.class_potential(torch.tensor(np.c_[gx.ravel(), gy.ravel()]), torch.cat([x, p]),
                                  torch.cat([y, py]), 2, alpha=2.0, delta=0.4).numpy()
    np.testing.assert_allclose(m.field[k].ravel(), psi - m.reference, rtol=1e-4, atol=1e-3)
    far = descent.field_on_grid(s, m.frame(k), 2, dyn, np.array([1e4], np.float32), np.array([1e4], np.float32))
    assert far[0, 0] == pytest.approx(m.reference, rel=1e-4)  # far away the field IS the plateau
