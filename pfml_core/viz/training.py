"""Figures of a training run: loss and Recall@K curves, the per-epoch embedding map (one
animation frame per epoch, proxies as stars, flipped samples ringed in red, suspect labels
ringed in black, each frame with its own view) and a query's nearest neighbours as images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from pfml_core.viz.text import text

PALETTE = qualitative.Plotly + qualitative.Dark24
SYMBOLS = {"train": "circle", "held-out": "diamond", "proxy": "star"}
RETRIEVAL = ["R@1", "R@2", "R@4", "R@8", "MAP@R"]


def curves_figure(metrics: pd.DataFrame) -> go.Figure:
    """Loss (left, titled by its subplot: no legend entry) and held-out R@1/2/4/8, MAP@R
    (right, in the legend) per epoch."""
    fig = make_subplots(1, 2, subplot_titles=("training loss", "held-out retrieval"))
    trained = metrics[metrics["epoch"] > 0]
    fig.add_scatter(x=trained["epoch"], y=trained["loss"], name="loss", mode="lines+markers",
                    showlegend=False, row=1, col=1)
    for col in RETRIEVAL:
        if col in metrics:
            fig.add_scatter(x=metrics["epoch"], y=metrics[col], name=col, mode="lines+markers",
                            row=1, col=2)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(metrics) <= 20 else None)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=320, margin=dict(t=40, b=10, l=10, r=10))
    return fig


def _masks(meta: dict) -> list[tuple[str, int | None, np.ndarray]]:
    """(group, class, mask) per trace, then ('flipped', None, mask) and, with suspects
    (with_suspects), ('suspect', None, mask): the same structure every epoch, so frames
    can animate it."""
    out = []
    for group in ("train", "held-out", "proxy"):
        for c in np.unique(meta["label"][meta["group"] == group]):
            out.append((group, int(c), (meta["group"] == group) & (meta["label"] == c)))
    out.append(("flipped", None, np.asarray(meta["flipped"], bool)))
    return out + ([("suspect", None, meta["suspect"])] if "suspect" in meta else [])


def with_suspects(meta: dict, table) -> dict:
    """meta with the training points whose source row is in `table` (lab.suspects.table
    rows: row, given_label, suggested_label, score) marked as suspects, with their hover."""
    said = {int(r): f"row {text(r)} · given {text(g)} → suggested {text(s)} · score {v:.3f}"
            for r, g, s, v in zip(table["row"], table["given_label"], table["suggested_label"],
                                  table["score"])}
    src = np.asarray(meta.get("source", np.full(len(meta["group"]), -1)))
    mask = (np.asarray(meta["group"]) == "train") & np.isin(src, list(said))
    return {**meta, "suspect": mask,
            "suspect_text": np.array([said.get(int(r), "") for r in src], dtype=object)}


def _sources(meta: dict, m: np.ndarray, sources) -> np.ndarray:
    """What hover calls each point's row: the source data's row (an image's path in its zip
    or folder where `sources` names them), else the index within its group (proxies)."""
    src = np.asarray(meta.get("source", np.full(len(m), -1)))[m]
    own = np.asarray(meta["row"])[m]
    if sources is None:
        return np.where(src >= 0, src, own)
    return np.array([text(sources[s]) if s >= 0 else str(r) for s, r in zip(src, own)], dtype=object)


def _traces(xy: np.ndarray, meta: dict, names: dict, sources=None) -> list[go.Scattergl]:
    """The shown epoch: every trace with its style, legend entry and click data
    (customdata: index within the group, class; text: the row hover shows)."""
    traces = []
    for group, c, m in _masks(meta):
        if group == "flipped":
            traces.append(go.Scattergl(
                x=xy[m, 0], y=xy[m, 1], mode="markers", name="flipped label",
                showlegend=bool(m.any()), hoverinfo="skip",
                marker=dict(symbol="circle-open", size=9, color="red", line=dict(width=1.5))))
            continue
        if group == "suspect":
            traces.append(go.Scattergl(
                x=xy[m, 0], y=xy[m, 1], mode="markers", name=f"suspect label ({int(m.sum())})",
                text=meta["suspect_text"][m], hovertemplate="suspect · %{text}<extra></extra>",
                marker=dict(symbol="circle-open", size=14, color="black", line=dict(width=1.5))))
            continue
        colour = PALETTE[(c + (0 if group != "held-out" else 10)) % len(PALETTE)]
        cls = text(names["held-out" if group == "held-out" else "train"][c])  # a folder name
        traces.append(go.Scattergl(
            x=xy[m, 0], y=xy[m, 1], mode="markers", name=f"{group} {cls}", legendgroup=group,
            customdata=np.stack([meta["row"][m], np.full(m.sum(), c)], 1),
            text=[f"{r} (query #{q})" if group == "held-out" else str(r)
                  for r, q in zip(_sources(meta, m, sources), meta["row"][m])],
            marker=dict(color=colour, symbol=SYMBOLS[group], size=15 if group == "proxy" else 5,
                        opacity=1.0 if group == "proxy" else 0.7,
                        line=dict(width=1 if group == "proxy" else 0, color="black")),
            hovertemplate=f"{group} · class {cls} · row %{{text}}<extra></extra>"))
    return traces


def view_range(xy: np.ndarray, pad: float = 0.05) -> tuple[list[float], list[float]]:
    """x and y axis ranges that fit every point of one map, with a margin."""
    lo, hi = np.min(xy, 0).astype(float), np.max(xy, 0).astype(float)
    margin = pad * np.maximum(hi - lo, 1e-9)
    return [lo[0] - margin[0], hi[0] + margin[0]], [lo[1] - margin[1], hi[1] + margin[1]]


def map_frame(epoch: int, xy: np.ndarray, meta: dict) -> go.Frame:
    """One epoch of the map: only its positions (styles and click data are the same every
    epoch and live in the figure's traces) and its own view, fitted to its points."""
    xr, yr = view_range(xy)
    return go.Frame(data=[go.Scattergl(x=xy[m, 0], y=xy[m, 1]) for _, _, m in _masks(meta)],
                    name=str(epoch), layout=dict(xaxis=dict(range=xr), yaxis=dict(range=yr)))


def map_figure(frames: list[go.Frame], xy: np.ndarray, meta: dict, names: dict,
               method: str = "UMAP", sources=None) -> go.Figure:
    """The animated map from per-epoch frames (map_frame), showing the last one (whose
    positions are xy); the slider and Play step through epochs, each with its own view.
    sources: the data's names of its rows (Dataset.sources), shown on hover."""
    show = frames[-1]
    title = f"{method} of embeddings and proxies · epoch {{}}"
    for f in frames:  # the slider and Play show each frame's own epoch in the title
        f.layout.title = dict(text=title.format(f.name))
    fig = go.Figure(data=_traces(xy, meta, names, sources), frames=frames, layout=show.layout)
    step = lambda n: dict(method="animate", label=n, args=[[n], dict(  # noqa: E731
        mode="immediate", frame=dict(duration=500, redraw=True), transition=dict(duration=0))])
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(
        title=title.format(show.name), height=560,
        margin=dict(t=50, b=10, l=10, r=10), legend=dict(itemsizing="constant"),
        sliders=[dict(active=len(frames) - 1, currentvalue=dict(prefix="epoch "),
                      steps=[step(f.name) for f in frames], pad=dict(t=30))],
        updatemenus=[dict(type="buttons", showactive=False, x=0, y=0, xanchor="right",
                          yanchor="top", pad=dict(t=30, r=10), buttons=[
                              dict(label="Play", method="animate", args=[None, dict(
                                  frame=dict(duration=700, redraw=True), fromcurrent=True,
                                  transition=dict(duration=0))])])])
    return fig


def waiting_map() -> go.Figure:
    """The map's place before its first epoch: the map's size, no axes, a title that says
    what comes."""
    fig = go.Figure(layout=dict(title="Map of embeddings and proxies: drawn once the "
                                "untrained model is evaluated (epoch 0)", height=560,
                                margin=dict(t=50, b=10, l=10, r=10)))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def embedding_map_figure(layouts: dict[int, np.ndarray], meta: dict, names: dict,
                         method: str = "UMAP") -> go.Figure:
    """layouts: epoch -> (N, 2); meta: per-point label/group/flipped/row (projection.
    snapshot_points); names: {'train': [...], 'held-out': [...]} class names."""
    epochs = sorted(layouts)
    frames = [map_frame(e, layouts[e], meta) for e in epochs]
    return map_figure(frames, layouts[epochs[-1]], meta, names, method)


def _rgb(img: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8."""
    img = np.asarray(img)
    img = np.repeat(img, 3, 0) if img.shape[0] == 1 else img[:3]
    return (np.clip(img.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


def neighbours_figure(query: np.ndarray, neighbours: list[np.ndarray], correct: list[bool],
                      titles: list[str]) -> go.Figure:
    """The query image and its nearest neighbours, each titled and marked right or wrong."""
    n = len(neighbours) + 1
    marks = ["query"] + [("✓ " if ok else "✗ ") + text(t) for ok, t in zip(correct, titles)]
    fig = make_subplots(1, n, subplot_titles=marks, horizontal_spacing=0.01)
    for i, img in enumerate([query, *neighbours]):
        fig.add_trace(go.Image(z=_rgb(img)), row=1, col=i + 1)
    for i, ok in enumerate(correct):
        fig.layout.annotations[i + 1].font.color = "green" if ok else "red"
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=170, margin=dict(t=30, b=0, l=0, r=0))
    return fig


def selected_points(selection: dict | None) -> list[tuple[dict, list]]:
    """(point, its customdata as a list) of each point a click selected. The browser sends
    customdata as a list, or as {"0": row, "1": class} when Plotly holds it in a typed array
    (JSON turns those into objects); a scalar becomes a list of one."""
    out = []
    for p in (selection or {}).get("selection", {}).get("points", []):
        c = p.get("customdata")
        if isinstance(c, dict):
            c = [c.get(str(k), c.get(k)) for k in range(len(c))]
        if c is not None:
            out.append((p, c if isinstance(c, list) else [c]))
    return out


def clicked_rows(selection: dict | None, group: str = "held-out") -> list[int]:
    """Rows (customdata[0]) of the map's points a click selected in `group`."""
    rows = []
    for p, c in selected_points(selection):
        if p.get("legendgroup") != group:
            continue
        try:
            rows.append(int(c[0]))
        except (TypeError, ValueError):
            continue  # not one of ours
    return rows
