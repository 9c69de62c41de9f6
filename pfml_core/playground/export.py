"""Offline exports of the playground: a frame as PNG and the animation as GIF (matplotlib
Agg + Pillow, no browser, no kaleido) and the scene as CSV. The field has the app's colours:
Psi_cls minus its reference (the plateau), on viz.field's scale (blue = pulled toward the
class, red = pushed out of another class's margin)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from pfml_core.playground import descent  # noqa: E402
from pfml_core.viz.field import CLASS_COLORS  # noqa: E402
from pfml_core.viz.fieldmap import colorize, colour_limits  # noqa: E402


def render_frame(scene, frame, dyn, cls: int, view, grid: int = 60, dpi: int = 80,
                 reference: float | None = None, limits=None, force_top: float | None = None,
                 title: str = "") -> Image.Image:
    """The field of class `cls`, samples, proxies and force arrows of one frame.
    `reference`, `limits` and `force_top` (the force drawn longest; default: from this
    frame) keep the colours and arrow lengths of a series fixed."""
    xs, ys = descent.grid_axes(view, grid)
    z = descent.field_on_grid(scene, frame, cls, dyn, xs, ys)
    z = z - (descent.field_reference(scene, cls, dyn, z) if reference is None else reference)
    fig, ax = plt.subplots(figsize=(6, 6), dpi=dpi)
    ax.imshow(colorize(z, *(limits or colour_limits(z))), origin="lower", extent=view,
              interpolation="bilinear")
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
    top = mag.max(initial=0) if force_top is None else force_top
    scale = 0.07 * (view[1] - view[0]) * np.minimum(np.cbrt(mag / max(top, 1e-12)), 1.5)
    uv = f / np.maximum(mag, 1e-12)[:, None] * scale[:, None]
    ax.quiver(pos[:, 0], pos[:, 1], uv[:, 0], uv[:, 1], angles="xy", scale_units="xy", scale=1,
              width=0.003)
    ax.set(xlim=view[:2], ylim=view[2:], aspect="equal", xticks=[], yticks=[],
           title=title or f"class {cls} field, {dyn.potential}, step {frame.step}")
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
              ms_per_frame: int = 120, dpi: int = 60) -> bytes:
    """An animated GIF of up to max_frames evenly spaced frames (coarser 40x40 field)."""
    return animation_bytes(scene, {"": (frames, dyn)}, cls, view, max_frames, ms_per_frame, dpi)


def animation_bytes(scene, runs: dict, cls: int, view, max_frames: int = 30,
                    ms_per_frame: int = 120, dpi: int = 60, fmt: str = "GIF") -> bytes:
    """An animated GIF (or lossy WEBP, far smaller for these smooth fields) with one panel
    per run, side by side: runs maps a title to (frames, dyn) of the same scene. Colours and
    arrow lengths stay as at frame 0 of each run."""
    if fmt not in ("GIF", "WEBP"):
        raise ValueError(f"fmt must be GIF or WEBP, got {fmt!r}")
    if not runs or any(not frames for frames, _ in runs.values()):
        raise ValueError("runs must hold at least one run with at least one frame")
    n = min(len(frames) for frames, _ in runs.values())
    picks = np.unique(np.linspace(0, n - 1, min(max_frames, n)).astype(int))
    xs, ys = descent.grid_axes(view, 40)
    panels = []
    for title, (frames, dyn) in runs.items():
        z0 = descent.field_on_grid(scene, frames[0], cls, dyn, xs, ys)
        ref = descent.field_reference(scene, cls, dyn, z0)
        top = float(np.linalg.norm(descent.point_forces(scene, frames[0], dyn), axis=1).max(initial=0))
        fixed = dict(reference=ref, limits=colour_limits(z0 - ref), force_top=top)  # as at frame 0
        panels.append([render_frame(scene, frames[i], dyn, cls, view, grid=40, dpi=dpi,
                                    title=f"{title}step {frames[i].step}" if title else "", **fixed)
                       for i in picks])
    images = [_row([p[k] for p in panels]) for k in range(len(picks))]
    buf = io.BytesIO()
    extra = dict(optimize=True) if fmt == "GIF" else dict(quality=70, method=6)
    images[0].save(buf, format=fmt, save_all=True, append_images=images[1:],
                   duration=ms_per_frame, loop=0, **extra)
    return buf.getvalue()


def _row(images: list) -> Image.Image:
    out = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width
    return out


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
