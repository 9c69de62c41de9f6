"""A class field as a picture: the colour scale (blue = pulled toward the class, white = the
reference, red = pushed out of another class's margin), its limits and colour-bar ticks,
and the PNG the browser shows under the points. The field spans decades (1/d^alpha), so
the scale is linear near 0 and logarithmic beyond (asinh), saturating only the top 1%."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

FIELD_COLORS = ("#053061", "#2065ab", "#4393c3", "#90c4dd", "#d1e5f0", "#f7f6f6",
                "#fddbc7", "#f3a481", "#d6604d", "#b1182b", "#67001f")  # RdBu reversed, 11 stops
COLORSCALE = [[i / (len(FIELD_COLORS) - 1), c] for i, c in enumerate(FIELD_COLORS)]
_STOPS = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in FIELD_COLORS], float)
FIXED_LIMITS = (10.0, 1e4)  # the "fixed scale" (soft, top): one colour per value in every setting


def shared_limits(fields, fixed: bool = False) -> tuple[float, float]:
    """One (soft, top) for every panel: FIXED_LIMITS, or colour_limits of all of `fields`
    together, so a colour means the same value in each panel."""
    if fixed:
        return FIXED_LIMITS
    return colour_limits(np.concatenate([np.ravel(z) for z in fields]))


def legend_sentence(potential: str, cls: int, reference: float) -> str:
    """What the colours mean, in words a student can read."""
    if potential == "pfml":
        return (f"Blue: pulled toward class {cls}. Red: pushed out of another class's margin. "
                f"White: the plateau, where no force acts; its constant value {reference:.4g} "
                "(every other-class source adds 1/delta_rep^alpha there) is subtracted.")
    return (f"Blue: low potential for class {cls} (points of class {cls} are pulled there); red: "
            f"high. This {potential} potential has no plateau: its step-0 median {reference:.4g} "
            "is subtracted, and its pull keeps growing with distance.")


def scale_title(cls: int, fixed: bool) -> str:
    """The colour bar's title in words."""
    how = (f"fixed scale for every setting (darkest from \u00b1{short(FIXED_LIMITS[1])})" if fixed
           else "step-0 scale shared by the panels")
    return f"potential of class {cls}: blue = pulled toward class {cls}, red = pushed away; {how}"


def colour_axis(limits, title: str, y: float = -0.01) -> tuple[dict, dict]:
    """(layout.coloraxis, a point-less trace that draws it): ONE colour bar under all panels.
    The images are coloured on [-1, 1] (to_unit); the ticks name field values."""
    vals, text = colour_ticks(*limits)
    bar = dict(title=dict(text=title, side="top"), orientation="h", len=0.7, x=0.5, xanchor="center",
               y=y, yanchor="top", thickness=10, tickvals=vals, ticktext=text)
    axis = dict(colorscale=COLORSCALE, cmin=-1, cmax=1, showscale=True, colorbar=bar)
    trace = dict(type="scatter", mode="markers", x=[None], y=[None], showlegend=False, hoverinfo="skip",
                 marker=dict(color=[-1, 1], coloraxis="coloraxis"))
    return axis, trace


def colour_limits(z: np.ndarray, soft_q: float = 50.0, top_q: float = 99.0) -> tuple[float, float]:
    """(soft, top) of the colour scale of a field z (minus its reference, so 0 = white):
    linear up to about `soft` (the median |z|), logarithmic beyond, saturated at `top`
    (the 99th percentile of |z|)."""
    a = np.abs(np.asarray(z, float))
    a = a[np.isfinite(a)]
    top = float(np.percentile(a, top_q)) if a.size else 0.0
    soft = float(np.percentile(a, soft_q)) if a.size else 0.0
    top = top if top > 0 else 1.0
    return (soft if 0 < soft < top else top / 100.0), top


def to_unit(z, soft: float, top: float) -> np.ndarray:
    """z on the colour axis [-1, 1]: asinh(z / soft) / asinh(top / soft), clipped."""
    return np.clip(np.arcsinh(np.asarray(z, float) / soft) / np.arcsinh(top / soft), -1.0, 1.0)


def colorize(z: np.ndarray, soft: float, top: float) -> np.ndarray:
    """RGB uint8 (..., 3) of z on COLORSCALE (to_unit: -1 = dark blue, 0 = white)."""
    t = (to_unit(z, soft, top) + 1.0) / 2.0
    at = np.linspace(0.0, 1.0, len(_STOPS))
    rgb = np.stack([np.interp(t, at, _STOPS[:, ch]) for ch in range(3)], -1)
    return np.round(rgb).astype(np.uint8)


def colour_ticks(soft: float, top: float) -> tuple[list[float], list[str]]:
    """Colour-bar ticks (positions on [-1, 1], labels in field units): 0 and +-powers of ten."""
    mags = 10.0 ** np.arange(np.floor(np.log10(soft)), np.floor(np.log10(top)) + 1)
    mags = mags[to_unit(mags, soft, top) > 0.15]  # not crowding 0
    mags = mags[::-1][::max(1, int(np.ceil(len(mags) / 3)))][::-1]  # at most 3 a side, top kept
    vals = np.concatenate([-mags[::-1], [0.0], mags])
    return to_unit(vals, soft, top).round(4).tolist(), [short(v) for v in vals]


def short(v: float) -> str:
    """1234 -> '1.23k', -1e6 -> '-1M', 0.01 -> '0.01'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def png_uri(rgb: np.ndarray) -> str:
    """A data URI of an (h, w, 3) image whose row 0 is the LOWEST y (flipped for PNG)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb[::-1])).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

