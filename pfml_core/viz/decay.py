"""Decay explorer: 1-D attraction and repulsion potentials and force magnitude vs distance,
PFML (Eq. 1-2) beside the non-decaying potentials of pfml_core.physics.potentials."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from pfml_core.physics import field
from pfml_core.physics.potentials import POTENTIALS

STYLES = {"pfml": dict(color="#1f4e9c", width=3), "contrastive": dict(color="#d62728", dash="dash"),
          "linear": dict(color="#7f7f7f", dash="dot")}


def curves(alpha: float, delta: float, d_max: float = 2.0, n: int = 400) -> dict:
    """{"d": (n,), name: {"attraction", "repulsion", "force_att", "force_rep"}} for every
    registered potential; PFML's potentials via field.attraction / field.repulsion."""
    d = torch.linspace(d_max / n, d_max, n, dtype=torch.float64)
    out = {"d": d.numpy()}
    for name, pot in POTENTIALS.items():
        if name == "pfml":
            att = field.attraction(d, alpha=alpha, delta=delta)
            rep = field.repulsion(d, alpha=alpha, delta=delta)
        else:
            att, rep = pot.attraction(d, alpha, delta, field.EPS), pot.repulsion(d, alpha, delta, field.EPS)
        out[name] = {"attraction": att.numpy(), "repulsion": rep.numpy(),
                     "force_att": pot.d_attraction(d, alpha, delta, field.EPS).abs().numpy(),
                     "force_rep": pot.d_repulsion(d, alpha, delta, field.EPS).abs().numpy()}
    return out


def decay_figure(alpha: float, delta: float, d_max: float = 2.0) -> go.Figure:
    """Three panels: attraction psi(d), repulsion psi(d), attraction force |psi'(d)| (log y)."""
    data = curves(alpha, delta, d_max)
    d = data["d"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "attraction potential", "repulsion potential", "attraction force |dpsi/dd| (log)"))
    for name, pot in POTENTIALS.items():
        for col, key in enumerate(("attraction", "repulsion", "force_att"), start=1):
            y = data[name][key]
            y = np.where(y > 0, y, np.nan) if key == "force_att" else y  # log axis: no zeros
            fig.add_trace(go.Scatter(x=d, y=y, mode="lines", name=pot.label, legendgroup=name,
                                     showlegend=col == 1, line=STYLES.get(name, {})), 1, col)
    top = delta ** -alpha
    fig.update_yaxes(range=[-1.15 * top, 0.15 * top], row=1, col=1)
    fig.update_yaxes(range=[-0.15 * top, 2.0 * top], row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=3)
    for col in (1, 2, 3):
        fig.add_vrect(x0=0, x1=delta, fillcolor="#1f4e9c", opacity=0.08, line_width=0, row=1, col=col)
        fig.update_xaxes(title_text="distance d", row=1, col=col)
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(orientation="h", y=-0.25),
                      title=f"alpha = {alpha:g}, delta = {delta:g} (shaded: d < delta)")
    return fig


def explanation(alpha: float, delta: float) -> list[str]:
    """Plain sentences on what the curves show, with the numbers of the current setting."""
    f1, f2 = alpha * 1.0 ** (-alpha - 1), alpha * 2.0 ** (-alpha - 1)
    return [
        f"Inside delta = {delta:g} the PFML attraction is flat: no pull at all, so a class never "
        "collapses to a point.",
        f"Beyond delta the pull is alpha / d^(alpha+1): with alpha = {alpha:g} it is {f1:.3g} at "
        f"d = 1 but only {f2:.3g} at d = 2, so a far, mislabeled point is barely moved.",
        "The contrastive pull (2d) grows with distance and the linear one stays constant: they "
        "drag outliers hardest, the opposite of PFML.",
        "Repulsion acts only inside delta (a margin) and is flat beyond it; a larger alpha makes "
        "both effects sharper.",
    ]
