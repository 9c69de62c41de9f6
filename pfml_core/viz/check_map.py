"""Figures of a label check (pfml_core.lab.check_labels): every checked row on a map of the
last epoch's embeddings (PCA), coloured by its given label, the top suspects ringed, each
point's hover naming the file's row, given and suggested label and score (a click on a
point shows its image); the suspects as images; a dataset's class balance."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pfml_core.viz.text import text, texts
from pfml_core.viz.training import PALETTE, _rgb, selected_points

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
                return int(c[4])
            except (TypeError, ValueError):
                continue
    return None


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
