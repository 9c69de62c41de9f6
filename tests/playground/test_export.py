"""Offline exports (pfml_core/playground/export.py): the whole figure (every panel, colour bar,
key) as PNG, GIF / WebP and MP4, and the scene as CSV."""
import io
import tempfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pfml_core.playground import descent, export, movie
from pfml_core.playground.scene import SceneConfig, build_scene
from pfml_core.viz import field, fieldmap


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


def _movies(steps=6):
    s = build_scene(SceneConfig(preset="label_noise", classes=3, points_per_class=6, noise=0.2))
    view = descent.bounds(s)
    return s, {label: movie.record(s, descent.Dynamics(potential=p), 0, view, steps)
               for label, p in (("PFML (decaying)", "pfml"), ("contrastive (non-decaying)", "contrastive"))}


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


def _has_colour(img: np.ndarray, hex_colour: str, tol: int = 30) -> bool:
    return bool((np.abs(img.astype(int) - _rgb(hex_colour)).max(-1) < tol).any())


def test_compare_gif_is_the_whole_figure_both_panels_and_the_key():
    s, movies = _movies()
    img = Image.open(io.BytesIO(export.figure_animation(s, movies, "GIF")))
    assert img.format == "GIF" and img.n_frames == 7 and img.size[0] >= 720
    img.seek(img.n_frames - 1)
    px = np.asarray(img.convert("RGB"))
    h, w = px.shape[:2]
    top = px[: int(0.7 * h)]  # the panels; the colour bar and the key lie below them
    for half in (top[:, : w // 2], top[:, w // 2:]):  # each half holds a field, not white paper
        coloured = np.abs(half.astype(int) - 255).max(-1) > 40
        assert coloured.any(0).mean() > 0.6  # most pixel columns of the half are drawn on
    key = px[int(0.9 * h):]
    for c in range(s.num_classes):  # the key names every class in its colour
        assert _has_colour(key, field.color(c))
    one = Image.open(io.BytesIO(export.figure_animation(s, {"PFML": movies["PFML (decaying)"]}, "GIF")))
    assert one.size[0] >= 720 and img.size[0] > one.size[0]


def test_panels_share_the_app_colour_scale():
    s, movies = _movies(0)
    fields = [m.field[0] for m in movies.values()]
    for fixed, want in ((False, fieldmap.shared_limits(fields)), (True, fieldmap.FIXED_LIMITS)):
        fig = export._Figure(s, movies, fixed_scale=fixed)
        fig.close()
        assert fig.limits == want


def test_mp4_is_an_h264_video_of_the_whole_figure():
    import imageio_ffmpeg

    s, movies = _movies()
    data = export.figure_animation(s, movies, "MP4", ms_per_frame=100)
    assert data[4:8] == b"ftyp"
    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(data)
        f.flush()
        reader = imageio_ffmpeg.read_frames(f.name)
        meta = next(reader)
        frames = [np.frombuffer(fr, np.uint8) for fr in reader]
    assert meta["codec"].startswith("h264") and meta["size"][0] >= 720 and len(frames) == 7
    first = frames[0].reshape(meta["size"][1], meta["size"][0], 3)
    assert np.abs(first[: meta["size"][1] // 2].astype(int) - 255).max() > 100  # drawn, not blank


def test_old_run_lists_export_the_whole_figure_too():
    s, dyn, frames = _scene()
    other = descent.simulate(s, descent.Dynamics(potential="contrastive"), 3)
    both = Image.open(io.BytesIO(export.animation_bytes(
        s, {"PFML": (frames, dyn), "contrastive": (other, descent.Dynamics(potential="contrastive"))},
        0, descent.bounds(s), fmt="WEBP")))
    assert both.format == "WEBP" and both.n_frames == len(frames) and both.size[0] >= 720


def test_animation_refuses_an_unknown_format_and_empty_runs():
    s, dyn, frames = _scene()
    with pytest.raises(ValueError, match="fmt"):
        export.animation_bytes(s, {"": (frames, dyn)}, 0, descent.bounds(s), fmt="AVI")
    with pytest.raises(ValueError, match="at least one"):
        export.gif_bytes(s, [], dyn, 0, descent.bounds(s))
    with pytest.raises(ValueError, match="fmt"):
        export.figure_animation(s, _movies(0)[1], "AVI")
