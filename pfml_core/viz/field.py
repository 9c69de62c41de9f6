"""Playground figures: a class field Psi_j as a filled contour (blue wells = attraction,
red = repulsion, colour centred on the field's far value and saturated, since 1/d^alpha
spikes), samples by class (flipped ones as black-edged X), proxies as stars, force arrows
(go.Quiver), the energy curve and the compare table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

CLASS_COLORS = ("#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")  # not blue/red: the field is
ARROW_FRACTION = 0.1  # longest arrow as a fraction of the view width


def color(cls: int) -> str:
    return CLASS_COLORS[int(cls) % len(CLASS_COLORS)]


def colour_range(z: np.ndarray, reference: float, q: float = 80.0) -> tuple[float, float]:
    """Symmetric colour limits around the reference, saturating the top (100 - q)%."""
    spread = float(np.percentile(np.abs(z - reference), q)) or 1.0
    return reference - spread, reference + spread


def field_trace(xs, ys, z, reference: float) -> go.Contour:
    zmin, zmax = colour_range(z, reference)
    return go.Contour(x=np.asarray(xs).tolist(), y=np.asarray(ys).tolist(),
                      z=np.asarray(z, dtype=float).tolist(), zmin=zmin, zmax=zmax,
                      colorscale="RdBu_r", ncontours=24, opacity=0.85, name="Psi",
                      contours=dict(coloring="heatmap", showlines=True),
                      line=dict(width=0.3, color="rgba(0,0,0,0.25)"),
                      colorbar=dict(title="Psi", len=0.8), hovertemplate="Psi=%{z:.3g}<extra></extra>")


def arrow_trace(positions: np.ndarray, forces: np.ndarray, width: float) -> go.Quiver:
    """Arrows along each force; lengths cube-root compressed (forces span decades),
    the true magnitude in the hover."""
    mag = np.linalg.norm(forces, axis=1)  # (N,)
    top = float(mag.max()) if mag.size and mag.max() > 0 else 1.0
    length = ARROW_FRACTION * width * np.cbrt(mag / top)
    unit = forces / np.maximum(mag, 1e-12)[:, None]
    uv = unit * length[:, None]  # (N, 2) display vectors
    return go.Quiver(x=positions[:, 0].tolist(), y=positions[:, 1].tolist(),
                     u=uv[:, 0].tolist(), v=uv[:, 1].tolist(), customdata=mag.tolist(),
                     arrowref="data", lengthmode="raw", anchor="tail", name="force",
                     marker=dict(color="black", line=dict(width=1.6), arrowsize=1.2), showlegend=False,
                     hovertemplate="|F|=%{customdata:.3g}<extra></extra>")


def point_traces(points, labels, flipped, proxies, proxy_labels) -> list[go.Scatter]:
    """Clean samples by class, flipped samples (X, black edge, their noisy label's colour),
    proxies as stars."""
    traces = []
    for c in sorted(set(np.concatenate([labels, proxy_labels]).tolist())):
        keep = (labels == c) & ~flipped
        traces.append(go.Scatter(x=points[keep, 0].tolist(), y=points[keep, 1].tolist(),
                                 mode="markers", name=f"class {c}", legendgroup=f"c{c}",
                                 marker=dict(color=color(c), size=8, line=dict(width=0.5, color="white"))))
        star = proxy_labels == c
        if star.any():
            traces.append(go.Scatter(x=proxies[star, 0].tolist(), y=proxies[star, 1].tolist(),
                                     mode="markers", name=f"proxy {c}", legendgroup=f"c{c}",
                                     marker=dict(symbol="star", color=color(c), size=16,
                                                 line=dict(width=1.5, color="black"))))
    if flipped.any():
        traces.append(go.Scatter(x=points[flipped, 0].tolist(), y=points[flipped, 1].tolist(),
                                 mode="markers", name="mislabeled (label shown)",
                                 marker=dict(symbol="x", size=12, color=[color(c) for c in labels[flipped]],
                                             line=dict(width=1.5, color="black"))))
    return traces


def field_figure(scene, frame, forces, xs, ys, z, reference: float, cls: int,
                 title: str = "") -> go.Figure:
    """The playground's main chart for one frame (positions from `frame`)."""
    pos = np.concatenate([frame.points, frame.proxies]).reshape(-1, 2)  # (n + P, 2)
    fig = go.Figure([field_trace(xs, ys, z, reference),
                     *point_traces(frame.points, scene.labels, scene.flipped,
                                   frame.proxies, scene.proxy_labels),
                     arrow_trace(pos, forces, float(xs[-1] - xs[0]))])
    fig.update_layout(title=title or f"Field of class {cls} — step {frame.step}",
                      height=560, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=-0.05), uirevision="playground")
    fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], scaleanchor="x", scaleratio=1,
                     showgrid=False, zeroline=False)
    return fig


def energy_figure(curves: dict[str, list[float]]) -> go.Figure:
    """Total energy U per step, one line per potential."""
    fig = go.Figure([go.Scatter(y=list(u), mode="lines", name=name) for name, u in curves.items()])
    fig.update_layout(title="Total energy U (Eq. 6)", xaxis_title="step", yaxis_title="U",
                      height=300, margin=dict(l=10, r=10, t=40, b=10), uirevision="energy")
    if any(min(u, default=1) > 0 for u in curves.values()):
        fig.update_yaxes(type="log")
    return fig


def compare_table(scene, dragged: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per mislabeled sample: its true and given label and how far each potential
    dragged it from where it started."""
    idx = np.flatnonzero(scene.flipped)
    table = pd.DataFrame({"sample": idx, "true class": scene.true_labels[idx],
                          "given label": scene.labels[idx]})
    for name, dist in dragged.items():
        table[f"dragged under {name}"] = np.round(dist, 3)
    return table
