"""Offline exports of the playground (matplotlib Agg + Pillow, no browser, no kaleido): the
WHOLE figure, every panel under one colour scale with its colour bar and key, as PNG, GIF,
WEBP or MP4 (H.264 through the ffmpeg that the imageio-ffmpeg wheel ships), and the scene as
CSV. Colours, arrows and scale are the app's (viz.field, viz.fieldmap), drawn from the
recorded Movies, so an export shows what the browser played."""
from __future__ import annotations

import io
import os
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from PIL import Image  # noqa: E402

from pfml_core.playground import movie as movie_mod  # noqa: E402
from pfml_core.viz import field as vf  # noqa: E402
from pfml_core.viz.fieldmap import colorize, colour_ticks, scale_title, shared_limits  # noqa: E402

FORMATS = ("GIF", "WEBP", "MP4")
PANEL_PX, MIN_WIDTH_PX = 560, 720  # a panel's width; the whole picture is never narrower


class _Figure:
    """One matplotlib figure of every panel, redrawn frame by frame by moving its artists
    (far cheaper than a new figure per frame)."""

    def __init__(self, scene, movies: dict, fixed_scale: bool = False):
        self.scene, self.movies = scene, list(movies.values())
        n = len(self.movies)
        width = max(MIN_WIDTH_PX, PANEL_PX * n + 40)
        self.size = (16 * -(-width // 16), 16 * -(-(PANEL_PX + 240) // 16))  # ffmpeg: 16 px blocks
        self.fig = plt.figure(figsize=(self.size[0] / 100, self.size[1] / 100), dpi=100)
        self.limits = shared_limits([m.field[0] for m in self.movies], fixed_scale)
        self.panels, side = [], PANEL_PX / self.size[0]
        for i, (label, m) in enumerate(movies.items()):
            left = (1 - n * side) / 2 + i * side + 0.01 * side
            ax = self.fig.add_axes([left, 190 / self.size[1], 0.98 * side, 0.98 * PANEL_PX / self.size[1]])
            self.panels.append(self._panel(ax, label, m))
        self._colour_bar(self.movies[0].cls, fixed_scale)
        self._key()

    def _panel(self, ax, label, m) -> dict:
        s, cls = self.scene, np.array([vf.color(c) for c in self.scene.labels])
        ax.set(xlim=m.view[:2], ylim=m.view[2:], aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{label}: field of class {m.cls}", fontsize=11)
        art = dict(image=ax.imshow(colorize(m.field[0], *self.limits), origin="lower", extent=m.view,
                                   interpolation="bilinear"),
                   arrows=ax.plot([], [], color="black", lw=0.9)[0],
                   clean=ax.scatter(*m.points[0][~s.flipped].T, c=cls[~s.flipped], s=30,
                                    edgecolors="white", linewidths=0.5),
                   wrong=ax.scatter(*m.points[0][s.flipped].T, c=cls[s.flipped], marker="X", s=80,
                                    edgecolors="black"),
                   proxies=ax.scatter(*m.proxies[0].T, marker="*", s=260, edgecolors="black", zorder=5,
                                      c=[vf.color(c) for c in s.proxy_labels]),
                   step=ax.text(0.02, 0.98, "", transform=ax.transAxes, va="top", fontsize=11),
                   unit=vf.arrow_unit(m), cap=1.5 * vf.ARROW_FRACTION * (m.view[1] - m.view[0]))
        return art

    def _colour_bar(self, cls: int, fixed: bool) -> None:
        soft, top = self.limits
        u = np.linspace(-1, 1, 256)
        cax = self.fig.add_axes([0.15, 120 / self.size[1], 0.7, 18 / self.size[1]])
        cax.imshow(colorize(soft * np.sinh(u * np.arcsinh(top / soft)), soft, top)[None], aspect="auto",
                   extent=(-1, 1, 0, 1))
        vals, text = colour_ticks(soft, top)
        cax.set(yticks=[], xticks=vals, xticklabels=text)
        cax.set_title(scale_title(cls, fixed), fontsize=9)

    def _key(self) -> None:
        s = self.scene
        dot = dict(marker="o", linestyle="", markersize=8, markeredgecolor="white")
        items = [Line2D([], [], color=vf.color(c), label=f"class {c}", **dot) for c in range(s.num_classes)]
        items.append(Line2D([], [], marker="*", linestyle="", markersize=13, color="#999",
                            markeredgecolor="black", label="proxy"))
        if s.flipped.any():
            items.append(Line2D([], [], marker="X", linestyle="", markersize=9, color="#999",
                                markeredgecolor="black", label="mislabeled (colour = given label)"))
        items.append(Line2D([], [], color="black", lw=0.9, label="force"))
        self.fig.legend(handles=items, loc="lower center", ncol=len(items), frameon=False, fontsize=10,
                        bbox_to_anchor=(0.5, 0.0))

    def draw(self, k: int) -> Image.Image:
        """The picture at frame k of every Movie."""
        s = self.scene
        for m, art in zip(self.movies, self.panels):
            path = vf.arrow_path(*vf.arrows_at(m, k), art["unit"], art["cap"])
            art["image"].set_data(colorize(m.field[k], *self.limits))
            art["arrows"].set_data(path[:, 0], path[:, 1])
            art["clean"].set_offsets(m.points[k][~s.flipped].reshape(-1, 2))
            art["wrong"].set_offsets(m.points[k][s.flipped].reshape(-1, 2))
            art["proxies"].set_offsets(m.proxies[k].reshape(-1, 2))
            art["step"].set_text(f"step {int(m.steps[k])} of {int(m.steps[-1])}")
        self.fig.canvas.draw()
        return Image.fromarray(np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy())

    def close(self) -> None:
        plt.close(self.fig)


def figure_png(scene, movies: dict, k: int = -1, fixed_scale: bool = False) -> bytes:
    """The whole figure at frame k (default: the last) as PNG."""
    fig = _Figure(scene, movies, fixed_scale)
    try:
        img = fig.draw(k % len(next(iter(movies.values()))))
    finally:
        fig.close()
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def figure_animation(scene, movies: dict, fmt: str = "GIF", max_frames: int = 30,
                     ms_per_frame: int = 120, fixed_scale: bool = False) -> bytes:
    """The whole figure over up to max_frames evenly spaced frames, as GIF, WEBP or MP4."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not movies or any(len(m) == 0 for m in movies.values()):
        raise ValueError("movies must hold at least one Movie with at least one frame")
    n = min(len(m) for m in movies.values())
    picks = np.unique(np.linspace(0, n - 1, min(max_frames, n)).astype(int))
    fig = _Figure(scene, movies, fixed_scale)
    try:
        images = [fig.draw(k) for k in picks]
    finally:
        fig.close()
    if fmt == "MP4":
        return _mp4(images, 1000.0 / ms_per_frame)
    if fmt == "GIF":  # one palette per frame, undithered: smooth fields compress 5x better
        images = [im.quantize(255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
                  for im in images]
    buf = io.BytesIO()
    extra = dict(optimize=True) if fmt == "GIF" else dict(quality=70, method=6)
    images[0].save(buf, format=fmt, save_all=True, append_images=images[1:], duration=ms_per_frame,
                   loop=0, **extra)
    return buf.getvalue()


def _mp4(images: list, fps: float) -> bytes:
    """H.264 MP4 (yuv420p: plays in every browser and phone) of equal-sized RGB images."""
    import imageio_ffmpeg  # its wheel ships ffmpeg; imported here, only an MP4 needs it

    fd, path = tempfile.mkstemp(suffix=".mp4")  # an MP4's index is written after the frames
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(path, images[0].size, fps=fps, codec="libx264",
                                             pix_fmt_out="yuv420p", quality=7, macro_block_size=16)
        writer.send(None)
        for img in images:
            writer.send(np.ascontiguousarray(np.asarray(img, np.uint8)))
        writer.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.remove(path)


def movies_of(scene, runs: dict, cls: int, view) -> dict:
    """{title: Movie} of recorded frame lists ({title: (frames, dyn)})."""
    return {title: movie_mod.of_frames(scene, frames, dyn, cls, view)
            for title, (frames, dyn) in runs.items()}


def png_bytes(scene, frame, dyn, cls: int, view) -> bytes:
    """One frame of one descent, drawn as the whole figure."""
    return figure_png(scene, movies_of(scene, {"PFML": ([frame], dyn)}, cls, view))


def gif_bytes(scene, frames, dyn, cls: int, view, max_frames: int = 30, ms_per_frame: int = 120) -> bytes:
    return animation_bytes(scene, {dyn.potential: (frames, dyn)}, cls, view, max_frames, ms_per_frame)


def animation_bytes(scene, runs: dict, cls: int, view, max_frames: int = 30, ms_per_frame: int = 120,
                    dpi: int = 60, fmt: str = "GIF") -> bytes:
    """figure_animation of recorded frame lists ({title: (frames, dyn)}, the same scene);
    `dpi` is accepted and unused: the picture's size is fixed in pixels."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not runs or any(not frames for frames, _ in runs.values()):
        raise ValueError("runs must hold at least one run with at least one frame")
    n = min(len(frames) for frames, _ in runs.values())
    picks = np.unique(np.linspace(0, n - 1, min(max_frames, n)).astype(int))
    picked = {t: ([frames[i] for i in picks], dyn) for t, (frames, dyn) in runs.items()}
    return figure_animation(scene, movies_of(scene, picked, cls, view), fmt, max_frames, ms_per_frame)


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
