"""Figures of the label-noise lab: measured curves with error bars beside the paper's numbers
(docs/method.md, section 6), and the memorization curves. Frames in, Plotly figures out.
The sweep's figures are in viz.sweep."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pfml_core.lab import paper as lab_paper
from pfml_core.viz.text import text, texts

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _empty(title: str, note: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, annotations=[{"text": note, "showarrow": False,
                                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}])
    return fig


def noise_figure(agg: pd.DataFrame, metric: str = "R@1", labels: dict | None = None) -> go.Figure:
    """`metric` (mean +- std over seeds) against the noise rate in %, one line per loss.
    agg: lab.aggregate(frame, ["loss", "noise"], [metric])."""
    title = f"{metric} vs label noise (mean ± std over seeds)"
    col = f"{metric} mean"
    if agg.empty or col not in agg:
        return _empty(title, "no finished runs yet")
    fig = go.Figure()
    for loss, g in agg.sort_values("noise").groupby("loss", sort=False):
        fig.add_trace(go.Scatter(
            x=g["noise"] * 100, y=g[col], name=text((labels or {}).get(loss, loss)), mode="lines+markers",
            error_y={"type": "data", "array": g[f"{metric} std"], "visible": True},
            customdata=g["n"], hovertemplate="%{x:.0f}%: %{y:.3f} (n=%{customdata})"))
    fig.update_layout(title=title, xaxis_title="training labels flipped (%)", yaxis_title=metric,
                      legend_title="loss")
    return fig


def paper_noise_figure(losses=None) -> go.Figure:
    """The paper's R@1 at 20% label noise (ResNet-50, mean of 5 runs) per method."""
    table = lab_paper.noise_table()
    if losses:
        table = table[table["loss"].isin(list(losses))]
    fig = go.Figure([go.Bar(x=table["loss"], y=table[f"{ds} R@1"], name=ds,
                            text=table[f"{ds} R@1"], textposition="outside")
                     for ds in ("CUB", "Cars")])
    fig.update_layout(title=f"Paper: R@1 (%) at {lab_paper.NOISE_RATE:.0%} label noise",
                      barmode="group", yaxis_title="R@1 (%)", yaxis_range=[40, 95])
    return fig


def _at_noise(summary: pd.DataFrame, noise: float) -> pd.DataFrame:
    return summary[np.isclose(summary["noise"], noise)] if len(summary) else summary


def memorization_figure(summary: pd.DataFrame, noise: float, labels: dict | None = None) -> go.Figure:
    """At one noise rate, one line per loss (mean over seeds, bars: std): held-out R@1 per
    epoch (left) and the share of flipped training samples memorized, i.e. nearer their
    given (wrong) class than any other (right). summary: lab.measure.curves_summary."""
    title = f"Memorization at {noise:.0%} label noise (mean ± std over seeds)"
    g = _at_noise(summary, noise)
    if g.empty:
        return _empty(title, "no finished runs with curves yet")
    fig = make_subplots(1, 2, subplot_titles=("held-out R@1", "flipped samples memorized (share)"))
    for i, (loss, d) in enumerate(g.sort_values("epoch").groupby("loss", sort=False)):
        name = text((labels or {}).get(loss, loss))
        for col, curve in ((1, "R@1"), (2, "memorized")):
            fig.add_trace(go.Scatter(
                x=d["epoch"], y=d[f"{curve} mean"], name=name, legendgroup=loss,
                showlegend=col == 1, mode="lines", line={"color": COLORS[i % len(COLORS)]},
                error_y={"type": "data", "array": d[f"{curve} std"], "visible": True, "thickness": 1}),
                row=1, col=col)
    fig.update_layout(title=title, legend_title="loss")
    fig.update_xaxes(title_text="epoch", dtick=_epoch_tick(g))
    return fig


def _epoch_tick(g: pd.DataFrame) -> int:
    """Whole epochs on the axis, about ten ticks."""
    return max(1, round(int(g["epoch"].max()) / 10))


def margin_figure(summary: pd.DataFrame, noise: float, labels: dict | None = None) -> go.Figure:
    """At one noise rate, one panel per loss (its own scale): the mean label margin of
    flipped (dashed) and of clean (solid) training samples per trained epoch (mean over seeds).
    Margin: cosine to the given class's anchor minus the nearest other class's (> 0: the
    sample sits in its given class; for a flipped sample, in the wrong one)."""
    title = f"Label margin of flipped vs clean training samples at {noise:.0%} noise"
    g = _at_noise(summary, noise)
    g = g[g["epoch"] > 0] if len(g) else g  # the untrained net's margins would set the scale
    if g.empty:
        return _empty(title, "no finished runs with curves yet")
    losses = list(dict.fromkeys(g["loss"]))
    fig = make_subplots(1, len(losses), subplot_titles=texts((labels or {}).get(x, x) for x in losses))
    for i, loss in enumerate(losses):
        d = g[g["loss"] == loss].sort_values("epoch")
        for curve, dash in (("margin_clean", "solid"), ("margin_flipped", "dash")):
            fig.add_trace(go.Scatter(
                x=d["epoch"], y=d[f"{curve} mean"], name=f"{text(loss)}: {curve.split('_')[1]}",
                mode="lines", line={"color": COLORS[i % len(COLORS)], "dash": dash},
                error_y={"type": "data", "array": d[f"{curve} std"], "visible": True, "thickness": 1}),
                row=1, col=i + 1)
        fig.add_hline(y=0, line={"color": "grey", "width": 1}, row=1, col=i + 1)
    fig.update_layout(title=title)
    fig.update_xaxes(title_text="epoch", dtick=_epoch_tick(g))
    fig.update_yaxes(title_text="mean margin (cosine)", col=1)
    return fig
