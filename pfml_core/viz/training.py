"""Figures of a training run: loss and Recall@K curves, the per-epoch embedding map (one
animation frame per epoch, proxies as stars, flipped samples ringed in red) and a query's
nearest neighbours as images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PALETTE = qualitative.Plotly + qualitative.Dark24
SYMBOLS = {"train": "circle", "held-out": "diamond", "proxy": "star"}


def curves_figure(metrics: pd.DataFrame) -> go.Figure:
    """Loss (left) and held-out R@1/2/4/8, MAP@R (right) per epoch."""
    fig = make_subplots(1, 2, subplot_titles=("training loss", "held-out retrieval"))
    trained = metrics[metrics["epoch"] > 0]
    fig.add_scatter(x=trained["epoch"], y=trained["loss"], name="loss", mode="lines+markers",
                    row=1, col=1)
    for col in ["R@1", "R@2", "R@4", "R@8", "MAP@R"]:
        if col in metrics:
            fig.add_scatter(x=metrics["epoch"], y=metrics[col], name=col, mode="lines+markers",
                            row=1, col=2)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(metrics) <= 20 else None)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=320, margin=dict(t=40, b=10, l=10, r=10))
    return fig


def _traces(xy: np.ndarray, meta: dict, names: dict) -> list[go.Scatter]:
    """One trace per (group, class) plus one ring trace for flipped samples: the same
    structure every epoch, so frames can animate it."""
    traces = []
    for group in ("train", "held-out", "proxy"):
        for c in np.unique(meta["label"][meta["group"] == group]):
            m = (meta["group"] == group) & (meta["label"] == c)
            colour = PALETTE[(c + (0 if group != "held-out" else 10)) % len(PALETTE)]
            cls = names["held-out" if group == "held-out" else "train"][c]
            traces.append(go.Scattergl(
                x=xy[m, 0], y=xy[m, 1], mode="markers", name=f"{group} {cls}",
                legendgroup=group, customdata=np.stack([meta["row"][m], np.full(m.sum(), c)], 1),
                marker=dict(color=colour, symbol=SYMBOLS[group], size=15 if group == "proxy" else 5,
                            opacity=1.0 if group == "proxy" else 0.7,
                            line=dict(width=1 if group == "proxy" else 0, color="black")),
                hovertemplate=f"{group} · class {cls} · row %{{customdata[0]}}<extra></extra>"))
    f = meta["flipped"]
    traces.append(go.Scattergl(x=xy[f, 0], y=xy[f, 1], mode="markers", name="flipped label",
                               marker=dict(symbol="circle-open", size=9, color="red",
                                           line=dict(width=1.5)), hoverinfo="skip"))
    return traces


def embedding_map_figure(layouts: dict[int, np.ndarray], meta: dict, names: dict,
                         method: str = "UMAP", show_epoch: int | None = None) -> go.Figure:
    """layouts: epoch -> (N, 2); meta: per-point label/group/flipped/row (projection.
    snapshot_points); names: {'train': [...], 'held-out': [...]} class names."""
    epochs = sorted(layouts)
    show = epochs[-1] if show_epoch is None or show_epoch not in layouts else show_epoch
    fig = go.Figure(_traces(layouts[show], meta, names))
    fig.frames = [go.Frame(data=_traces(layouts[e], meta, names), name=str(e)) for e in epochs]
    allxy = np.concatenate([layouts[e] for e in epochs])
    pad = 0.05 * (allxy.max(0) - allxy.min(0) + 1e-9)
    fig.update_xaxes(range=[allxy[:, 0].min() - pad[0], allxy[:, 0].max() + pad[0]], visible=False)
    fig.update_yaxes(range=[allxy[:, 1].min() - pad[1], allxy[:, 1].max() + pad[1]], visible=False)
    step = lambda e: dict(method="animate", label=str(e), args=[[str(e)], dict(  # noqa: E731
        mode="immediate", frame=dict(duration=500, redraw=True), transition=dict(duration=300))])
    fig.update_layout(
        title=f"{method} of embeddings and proxies · epoch {show}", height=560,
        margin=dict(t=50, b=10, l=10, r=10), legend=dict(itemsizing="constant"),
        sliders=[dict(active=epochs.index(show), currentvalue=dict(prefix="epoch "),
                      steps=[step(e) for e in epochs], pad=dict(t=30))],
        updatemenus=[dict(type="buttons", showactive=False, x=0, y=0, xanchor="right",
                          yanchor="top", pad=dict(t=30, r=10), buttons=[
                              dict(label="Play", method="animate", args=[None, dict(
                                  frame=dict(duration=700, redraw=True), fromcurrent=True,
                                  transition=dict(duration=300))])])])
    return fig


def _rgb(img: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8."""
    img = np.asarray(img)
    img = np.repeat(img, 3, 0) if img.shape[0] == 1 else img[:3]
    return (np.clip(img.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


def neighbours_figure(query: np.ndarray, neighbours: list[np.ndarray], correct: list[bool],
                      titles: list[str]) -> go.Figure:
    """The query image and its nearest neighbours, each titled and marked right or wrong."""
    n = len(neighbours) + 1
    marks = ["query"] + [("✓ " if ok else "✗ ") + t for ok, t in zip(correct, titles)]
    fig = make_subplots(1, n, subplot_titles=marks, horizontal_spacing=0.01)
    for i, img in enumerate([query, *neighbours]):
        fig.add_trace(go.Image(z=_rgb(img)), row=1, col=i + 1)
    for i, ok in enumerate(correct):
        fig.layout.annotations[i + 1].font.color = "green" if ok else "red"
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=170, margin=dict(t=30, b=0, l=0, r=0))
    return fig
