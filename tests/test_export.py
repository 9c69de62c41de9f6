"""Offline exports (pfml_core/playground/export.py): PNG, GIF / WebP and CSV."""
import io

import numpy as np
import pytest
import pandas as pd
from PIL import Image

from pfml_core.playground import descent
from pfml_core.playground import export
from pfml_core.playground.scene import SceneConfig, build_scene


def _scene():
    s = build_scene(SceneConfig(preset="label_noise", classes=3, points_per_class=6, noise=0.2))
    dyn = descent.Dynamics()
    return s, dyn, descent.simulate(s, dyn, 3)


def test_png_is_a_non_blank_image():
    s, dyn, frames = _scene()
    img = Image.open(io.BytesIO(export.png_bytes(s, frames[-1], dyn, 0, descent.bounds(s))))
    assert img.format == "PNG" and np.asarray(img.convert("L")).std() > 10


def test_gif_holds_one_frame_per_step():
    s, dyn, frames = _scene()
    img = Image.open(io.BytesIO(export.gif_bytes(s, frames, dyn, 0, descent.bounds(s))))
    assert img.format == "GIF" and img.n_frames == len(frames)


def test_csv_round_trips_points_labels_flags_and_proxies():
    s, _, frames = _scene()
    t = pd.read_csv(io.StringIO(export.scene_csv(s, frames[-1])))
    samples, proxies = t[t.kind == "sample"], t[t.kind == "proxy"]
    np.testing.assert_allclose(samples[["x", "y"]].to_numpy(), frames[-1].points, rtol=1e-6)
    np.testing.assert_allclose(proxies[["x", "y"]].to_numpy(), frames[-1].proxies, rtol=1e-6)
    assert list(samples.flipped) == list(s.flipped) and list(samples.label) == list(s.labels)
    assert list(samples.true_label) == list(s.true_labels) and list(proxies.label) == list(s.proxy_labels)


def test_side_by_side_animation_has_a_panel_per_run_and_the_app_colours():
    s, dyn, frames = _scene()
    other = descent.simulate(s, descent.Dynamics(potential="contrastive"), 3)
    one = Image.open(io.BytesIO(export.gif_bytes(s, frames, dyn, 0, descent.bounds(s))))
    both = Image.open(io.BytesIO(export.animation_bytes(
        s, {"PFML, ": (frames, dyn), "contrastive, ": (other, descent.Dynamics(potential="contrastive"))},
        0, descent.bounds(s), fmt="WEBP")))
    assert both.format == "WEBP" and both.n_frames == len(frames)
    assert both.size == (2 * one.size[0], one.size[1])
    corner = np.asarray(one.convert("RGB"))[one.size[1] // 8, one.size[0] // 6]  # far from every point
    assert np.abs(corner.astype(int) - [0xf7, 0xf6, 0xf6]).max() < 25  # the plateau is white


def test_animation_refuses_an_unknown_format_and_empty_runs():
    s, dyn, frames = _scene()
    with pytest.raises(ValueError, match="fmt"):
        export.animation_bytes(s, {"": (frames, dyn)}, 0, descent.bounds(s), fmt="MP4")
    with pytest.raises(ValueError, match="at least one"):
        export.gif_bytes(s, [], dyn, 0, descent.bounds(s))
