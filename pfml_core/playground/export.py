"""Offline exports of the playground: a frame as PNG and the animation as GIF (matplotlib
Agg + Pillow, no browser, no kaleido) and the scene as CSV."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from pfml_core.playground import descent  # noqa: E402
from pfml_core.viz.field import CLASS_COLORS, colour_range  # noqa: E402


def render_frame(scene, frame, dyn, cls: int, view, grid: int = 60, dpi: int = 80) -> Image.Image:
    """The field of class `cls`, samples, proxies and force arrows of one frame."""
    xs, ys = descent.grid_axes(view, grid)
    z = descent.field_on_grid(scene, frame, cls, dyn, xs, ys)
    zmin, zmax = colour_range(z, descent.field_reference(scene, cls, dyn, z))
    fig, ax = plt.subplots(figsize=(6, 6), dpi=dpi)
    ax.contourf(xs, ys, np.clip(z, zmin, zmax), levels=24, cmap="RdBu_r", vmin=zmin, vmax=zmax)
    colors = np.array(CLASS_COLORS)
    pts, prx = frame.points, frame.proxies
    clean = ~scene.flipped
    ax.scatter(pts[clean, 0], pts[clean, 1], c=colors[scene.labels[clean] % len(colors)], s=25,
               edgecolors="white", linewidths=0.5)
    ax.scatter(pts[scene.flipped, 0], pts[scene.flipped, 1], marker="X", s=70,
               c=colors[scene.labels[scene.flipped] % len(colors)], edgecolors="black")
    ax.scatter(prx[:, 0], prx[:, 1], marker="*", s=220,
               c=colors[scene.proxy_labels % len(colors)], edgecolors="black")
    pos = np.concatenate([pts, prx]).reshape(-1, 2)
    f = descent.point_forces(scene, frame, dyn)
    mag = np.linalg.norm(f, axis=1)
    scale = 0.07 * (view[1] - view[0]) * np.cbrt(mag / max(mag.max(initial=0), 1e-12))
    uv = f / np.maximum(mag, 1e-12)[:, None] * scale[:, None]
    ax.quiver(pos[:, 0], pos[:, 1], uv[:, 0], uv[:, 1], angles="xy", scale_units="xy", scale=1,
              width=0.003)
    ax.set(xlim=view[:2], ylim=view[2:], aspect="equal", xticks=[], yticks=[],
           title=f"class {cls} field, {dyn.potential}, step {frame.step}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def png_bytes(scene, frame, dyn, cls: int, view) -> bytes:
    buf = io.BytesIO()
    render_frame(scene, frame, dyn, cls, view).save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(scene, frames, dyn, cls: int, view, max_frames: int = 30,
              ms_per_frame: int = 120) -> bytes:
    """An animated GIF of up to max_frames evenly spaced frames (coarser 40x40 field)."""
    if not frames:
        raise ValueError("frames must hold at least one frame, got 0")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int))
    images = [render_frame(scene, frames[i], dyn, cls, view, grid=40, dpi=60) for i in picks]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=ms_per_frame, loop=0)
    return buf.getvalue()


def scene_table(scene, frame=None) -> pd.DataFrame:
    """One row per sample then proxy: kind, x, y, label, true_label, flipped, subpop."""
    pts = scene.points if frame is None else frame.points
    prx = scene.proxies if frame is None else frame.proxies
    n, p = len(pts), len(prx)
    return pd.DataFrame({
        "kind": ["sample"] * n + ["proxy"] * p,
        "x": np.concatenate([pts[:, 0], prx[:, 0]]), "y": np.concatenate([pts[:, 1], prx[:, 1]]),
        "label": np.concatenate([scene.labels, scene.proxy_labels]),
        "true_label": np.concatenate([scene.true_labels, scene.proxy_labels]),
        "flipped": np.concatenate([scene.flipped, np.zeros(p, dtype=bool)]),
        "subpop": np.concatenate([scene.subpop, np.full(p, -1)]),
    })


def scene_csv(scene, frame=None) -> str:
    return scene_table(scene, frame).to_csv(index=False)
