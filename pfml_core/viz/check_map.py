"""Figures of a label check (pfml_core.lab.check_labels): every checked row on a map of the
last epoch's embeddings (PCA), coloured by its given label, the top suspects ringed, each
point's hover naming the file's row, given and suggested label and score (a hover shows its
image from `sprite`, a click keeps it); the suspects as images; a dataset's class balance."""
from __future__ import annotations

import base64
import io
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pfml_core.viz.text import text, texts
from pfml_core.viz.training import PALETTE, _rgb, selected_points

SPRITE_TILE = 32  # a hover thumbnail's longest side: bigger images are downscaled
SPRITE_PIXELS = 2048 * 2048  # every tile together, so MAX_IMAGES uploads stay a few MB too
INDEX_COLUMN = 4  # check_map's customdata column holding the data set's index (sprite tile)
HOVER = ("row %{customdata[0]}<br>given %{customdata[1]} · suggested %{customdata[2]}"
         "<br>score %{customdata[3]}<extra></extra>")


def layout_2d(emb: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, D) embeddings -> (n, 2): PCA of the L2-normalised embeddings (what cosines see)."""
    from sklearn.decomposition import PCA

    z = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return PCA(2, random_state=seed).fit_transform(z)


def check_map(xy: np.ndarray, frame, ringed: int, title: str) -> go.Figure:
    """xy (n, 2) of frame's rows (row, given_label, suggested_label, score, rank; any order);
    the `ringed` best-ranked rows get a red ring (trace 'suspects', customdata as the dots')."""
    given = frame["given_label"].astype(str).to_numpy()
    index = frame["index"] if "index" in frame else range(len(frame))  # the data set's index
    data = np.stack([texts(frame["row"]), texts(given), texts(frame["suggested_label"]),
                     [f"{s:.3f}" for s in frame["score"]], [str(i) for i in index]], axis=1)
    fig = go.Figure()
    for i, c in enumerate(sorted(set(given), key=lambda v: (len(v), v))):
        m = given == c
        fig.add_scattergl(x=xy[m, 0], y=xy[m, 1], mode="markers", name=f"given {text(c)}",
                          customdata=data[m], hovertemplate=HOVER,
                          marker=dict(color=PALETTE[i % len(PALETTE)], size=5, opacity=0.7))
    top = frame["rank"].to_numpy() <= ringed
    fig.add_scattergl(x=xy[top, 0], y=xy[top, 1], mode="markers", name=f"suspects (top {ringed})",
                      customdata=data[top], hovertemplate=HOVER,
                      marker=dict(symbol="circle-open", size=11, color="red", line=dict(width=2)))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=520, margin=dict(t=50, b=10, l=10, r=10),
                      legend=dict(itemsizing="constant"))
    return fig


def clicked_index(selection: dict | None) -> int | None:
    """The data set index (customdata[4]) of the first point a click selected on check_map."""
    for _, c in selected_points(selection):
        if len(c) == 5:
            try:
                return int(c[INDEX_COLUMN])
            except (TypeError, ValueError):
                continue
    return None


def sprite(images) -> dict:
    """Images (n, C, H, W) in [0, 1] as one PNG grid, tile i at row i // cols, column i % cols:
    {"src": data URI, "tile": [h, w], "cols", "n"}. A tile is at most SPRITE_TILE px a side and
    all of them SPRITE_PIXELS (Pillow's box filter shrinks bigger images; MNIST-5k keeps 28x28,
    about 0.9 MB of PNG); grey images are stored as one channel."""
    from PIL import Image

    n, (h, w) = len(images), np.shape(images[0])[1:]
    s = min(1.0, min(SPRITE_TILE, math.isqrt(SPRITE_PIXELS // max(n, 1))) / max(h, w))
    th, tw = max(1, round(h * s)), max(1, round(w * s))
    cols = max(1, math.ceil(math.sqrt(n)))  # a near-square grid stays within canvas limits
    grid = np.zeros((-(-n // cols) * th, cols * tw, 3), np.uint8)
    for i, img in enumerate(images):
        t = _rgb(img)
        if (th, tw) != (h, w):
            t = np.asarray(Image.fromarray(t).resize((tw, th), Image.Resampling.BOX))
        r, c = divmod(i, cols)
        grid[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = t
    grey = (grid[..., 0] == grid[..., 1]).all() and (grid[..., 1] == grid[..., 2]).all()
    buf = io.BytesIO()
    Image.fromarray(grid[..., 0] if grey else grid).save(buf, format="PNG")
    return {"src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
            "tile": [th, tw], "cols": cols, "n": n}


def thumbnails(images: list[np.ndarray], titles: list[str], per_row: int = 8) -> go.Figure:
    """Images (C, H, W) in [0, 1], each titled (escaped here)."""
    rows = max(1, -(-len(images) // per_row))
    fig = make_subplots(rows, per_row, subplot_titles=texts(titles), horizontal_spacing=0.01,
                        vertical_spacing=0.12)
    for i, img in enumerate(images):
        fig.add_trace(go.Image(z=_rgb(img), hoverinfo="skip"), row=i // per_row + 1,
                      col=i % per_row + 1)
    for a in fig.layout.annotations:
        a.font.size = 10
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=150 * rows, margin=dict(t=30, b=0, l=0, r=0))
    return fig


def thumbnail(img: np.ndarray) -> np.ndarray:
    """One image (C, H, W) in [0, 1] as (H, W, 3) for st.image."""
    return _rgb(img)


def class_counts(names: list[str], counts: np.ndarray, title: str) -> go.Figure:
    """Samples per class, as bars."""
    fig = go.Figure(go.Bar(x=texts(names), y=counts, hovertemplate="%{x}: %{y}<extra></extra>"))
    fig.update_xaxes(type="category")
    fig.update_layout(title=title, height=260, margin=dict(t=40, b=10, l=10, r=10))
    return fig
