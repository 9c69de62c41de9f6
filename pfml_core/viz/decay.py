"""Decay explorer: 1-D attraction and repulsion potentials and force magnitude vs distance,
PFML (Eq. 1-2) beside the non-decaying potentials of pfml_core.physics.potentials."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from pfml_core.physics import field
from pfml_core.physics.potentials import POTENTIALS
from pfml_core.viz.fieldmap import short

STYLES = {"pfml": dict(color="#1f4e9c", width=3), "contrastive": dict(color="#d62728", dash="dash"),
          "linear": dict(color="#7f7f7f", dash="dot")}
_SHADES = (dict(color="#1f4e9c"), dict(color="#4393c3", dash="longdash"),
           dict(color="#92c5de", dash="dashdot"))  # the 1st, 2nd and 3rd alpha of PFML


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


def symlog(y, lin: float = 1.0) -> np.ndarray:
    """The potential panels' symmetric-log axis: sign(y) * log10(1 + |y| / lin), linear for
    |y| below about `lin` and logarithmic beyond, so psi = 1e6 (alpha 6, delta 0.1) and a
    hinge of 0.01 both stay readable."""
    y = np.asarray(y, float)
    return np.sign(y) * np.log10(1.0 + np.abs(y) / lin)


def linear_below(ys) -> float:
    """A power of ten at most 1, a tenth of the smallest curve's height or less: every curve
    then climbs at least one decade on a symlog axis."""
    low = min(float(np.nanmax(np.abs(y))) for y in ys)
    return float(min(1.0, 10.0 ** np.floor(np.log10(max(low, 1e-12) / 10))))


def _symlog_axis(ys, top: float, lin: float) -> dict:
    """Range, ticks (0 and +-powers of ten, at most 4 a side, labelled in real values) and
    title of a symmetric-log axis over curves `ys`, cut at +-top (1/d^alpha is unbounded as
    d -> 0)."""
    lo = max(min(float(np.nanmin(y)) for y in ys), -top)
    hi = min(max(float(np.nanmax(y)) for y in ys), top)
    mags = 10.0 ** np.arange(np.log10(lin), np.ceil(np.log10(max(-lo, hi, lin))) + 1)
    mags = mags[::-1][::max(1, int(np.ceil(len(mags) / 4)))][::-1]
    vals = sorted([0.0] + [-m for m in mags if lo < 0] + [m for m in mags if hi > 0])
    pad = 0.05 * (symlog(hi, lin) - symlog(lo, lin))
    return dict(tickvals=symlog(vals, lin).tolist(), ticktext=[short(v) for v in vals],
                range=[float(symlog(lo, lin)) - pad, float(symlog(hi, lin)) + pad], zeroline=True,
                title_text=f"symmetric log, linear below {lin:g}")


def decay_figure(alphas, delta: float, d_max: float = 2.0) -> go.Figure:
    """Three panels: attraction psi(d), repulsion psi(d) (symmetric log, see symlog) and
    attraction force |psi'(d)| (log), with one PFML curve per alpha in `alphas` (a number or
    up to 3) over the non-decaying potentials, which do not depend on alpha."""
    alphas = sorted({float(a) for a in np.atleast_1d(alphas)})[:3]
    data = {a: curves(a, delta, d_max) for a in alphas}
    d = data[alphas[0]]["d"]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09, subplot_titles=(
        "attraction potential", "repulsion potential", "attraction force |dpsi/dd| (log)"))
    lines = []  # (col, y, name, label, style)
    for name, pot in POTENTIALS.items():
        for j, a in enumerate(alphas if name == "pfml" else alphas[:1]):
            style = dict(STYLES.get(name, {}), **(_SHADES[j] if name == "pfml" else {}))
            label = f"{pot.label}, alpha = {a:g}" if name == "pfml" and len(alphas) > 1 else pot.label
            for col, key in enumerate(("attraction", "repulsion", "force_att"), start=1):
                lines.append((col, data[a][name][key], name, label, style))
    top = 10 * max(delta ** -a for a in alphas) + 10  # above the repulsion floor and d^2
    lin = {col: linear_below([y for c, y, *_ in lines if c == col]) for col in (1, 2)}
    for col, y, name, label, style in lines:
        shown = np.where(y > 0, y, np.nan) if col == 3 else symlog(y, lin[col])  # log axis: no zeros
        fig.add_trace(go.Scatter(x=d, y=shown, customdata=y, mode="lines", name=label, legendgroup=name,
                                 showlegend=col == 1, line=style,
                                 hovertemplate="d = %{x:.3f}: %{customdata:.4g}<extra>" + label + "</extra>"),
                      1, col)
    for col in (1, 2):
        fig.update_yaxes(**_symlog_axis([y for c, y, *_ in lines if c == col], top, lin[col]), row=1, col=col)
    fig.update_yaxes(type="log", title_text="|dpsi/dd| (log)", row=1, col=3)
    for col in (1, 2, 3):
        fig.add_vrect(x0=0, x1=delta, fillcolor="#1f4e9c", opacity=0.08, line_width=0, row=1, col=col)
        fig.update_xaxes(title_text="distance d", row=1, col=col)
    fig.update_layout(height=440, margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(orientation="h", y=-0.25),
                      title=f"alpha = {', '.join(f'{a:g}' for a in alphas)}, delta = {delta:g} "
                            "(shaded: d < delta)")
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
