"""Playground figures: a recorded descent (playground.movie.Movie) as ONE Plotly figure the
browser plays by itself (field image, samples, proxies, force arrows per potential; Play /
Pause / Step / Reset and a slider run client-side with `redraw: false`: no server rerun)."""
from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pfml_core.viz.fieldmap import colorize, colour_axis, png_uri, scale_title, shared_limits

CLASS_COLORS = ("#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")  # not blue/red (the field)
ARROW_FRACTION = 0.1  # arrow of the strongest force at step 0, as a fraction of the view width
FRAME_MS = 30  # Play asks for a frame every 30 ms: 30 per second at 60 Hz, 20 if one is late
HOLD_MS = 86_400_000  # Step shows the next frame, then holds it (a day) until the next click
SLIDER_STEPS = 13  # at most this many slider stops
_NOOP = {"data": [], "traces": []}  # an empty frame: lets Step's frame list start anywhere
_GO = dict(mode="immediate", transition=dict(duration=0))
FONT = "Source Sans Pro, Source Sans 3, sans-serif"  # the app's font


def color(cls: int) -> str:
    return CLASS_COLORS[int(cls) % len(CLASS_COLORS)]


def arrow_path(pos: np.ndarray, forces: np.ndarray, unit: float, cap: float) -> np.ndarray:
    """(6 m, 2) polyline of m arrows (tail, head, barb, head, barb, NaN) along `forces`,
    of length unit * cbrt(|F|) (forces span decades), at most `cap`."""
    mag = np.linalg.norm(forces, axis=1, keepdims=True)  # (m, 1)
    length = np.minimum(unit * np.cbrt(mag), cap)
    d = forces / np.maximum(mag, 1e-30)  # (m, 2) unit directions
    head = pos + d * length
    c, s = np.cos(np.radians(150)), np.sin(np.radians(150))
    barb1 = head + 0.3 * length * np.c_[c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]]
    barb2 = head + 0.3 * length * np.c_[c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]]
    gap = np.full_like(pos, np.nan)
    return np.stack([pos, head, barb1, head, barb2, gap], 1).reshape(-1, 2).astype(np.float32)


def typed(a) -> dict:
    """A float32 array in Plotly's typed-array form (base64; NaN kept as a line break)."""
    return {"dtype": "f4", "bdata": base64.b64encode(np.asarray(a, np.float32).tobytes()).decode()}


def arrows_at(movie, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, forces) of the points that move at frame k: samples and proxies, or the
    proxies alone when the samples are held still (their arrows would hide the stars)."""
    first = len(movie.points[k]) if movie.held_samples else 0
    pos = np.concatenate([movie.points[k], movie.proxies[k]]).reshape(-1, 2)
    return pos[first:], movie.forces[k][first:]


def arrow_unit(movie) -> float:
    """Arrow length per cbrt(force): the strongest force drawn at step 0 gets ARROW_FRACTION
    of the view width, for every frame (arrows shrink as the descent settles)."""
    top = float(np.linalg.norm(arrows_at(movie, 0)[1], axis=1).max(initial=0.0))
    return ARROW_FRACTION * (movie.view[1] - movie.view[0]) / (np.cbrt(top) if top > 0 else 1.0)


def _moving(scene, movie, k: int, unit: float) -> list[dict]:
    """The animated traces of one panel at frame k: clean samples, mislabeled samples,
    arrows, proxies (last: the stars are drawn on top)."""
    pts = movie.points[k]
    cap = 1.5 * ARROW_FRACTION * (movie.view[1] - movie.view[0])
    arrows = arrow_path(*arrows_at(movie, k), unit, cap)
    xy = lambda a: dict(x=typed(a[:, 0]), y=typed(a[:, 1]))  # noqa: E731
    return [xy(pts[~scene.flipped]), xy(pts[scene.flipped]), xy(arrows), xy(movie.proxies[k])]


def _panel_traces(scene, movie, i: int, unit: float) -> list[dict]:
    """Static styles + step-0 positions of the traces _moving animates (scalar styles where
    possible: per-point style arrays cost the browser time on every frame)."""
    axes = dict(xaxis=_axis("x", i), yaxis=_axis("y", i), showlegend=False)
    now = _moving(scene, movie, 0, unit)
    flip = scene.flipped
    text = [f"sample {j}: label {a}" + (f" (true class {t})" if a != t else "")
            for j, (a, t) in enumerate(zip(scene.labels, scene.true_labels))]
    pick = lambda items, mask: [x for x, m in zip(items, mask) if m]  # noqa: E731
    colours = [color(c) for c in scene.labels]
    clean = dict(type="scatter", mode="markers", name="samples", text=pick(text, ~flip),
                 hovertemplate="%{text}<extra></extra>", **axes, **now[0],
                 marker=dict(color=pick(colours, ~flip), size=8, line=dict(width=0.5, color="white")))
    wrong = dict(type="scatter", mode="markers", name="mislabeled", text=pick(text, flip),
                 hovertemplate="%{text}<extra></extra>", **axes, **now[1],
                 marker=dict(color=pick(colours, flip), size=12, symbol="x",
                             line=dict(width=1.5, color="black")))
    proxies = dict(type="scatter", mode="markers", name="proxies", text=[str(c) for c in scene.proxy_labels],
                   hovertemplate="proxy of class %{text}<extra></extra>", **axes, **now[3],
                   marker=dict(symbol="star", size=18, color=[color(c) for c in scene.proxy_labels],
                               line=dict(width=1.5, color="black")))
    arrows = dict(type="scatter", mode="lines", name="force", hoverinfo="skip", **axes, **now[2],
                  line=dict(color="black", width=1.3))
    return [clean, wrong, arrows, proxies]


def _step_text(movie, k: int) -> dict:
    """The step counter, a text trace in the first panel's corner (annotations are not
    redrawn by frames that skip the full redraw; trace text is)."""
    x0, x1, y0, y1 = movie.view
    return dict(x=[x0 + 0.02 * (x1 - x0)], y=[y1 - 0.02 * (y1 - y0)],
                text=[f"step: <b>{int(movie.steps[k])}</b> of {int(movie.steps[-1])}"])


def _axis(letter: str, i: int) -> str:
    """Axis id of panel i: 'x', 'x2', ... (and 'y', 'y2', ...)."""
    return letter + (str(i + 1) if i else "")


def key_text(scene) -> str:
    """The figure's key in one line (an annotation draws much faster than a legend)."""
    dot = '<span style="color:{}">{}</span> {}'
    items = [dot.format(color(c), "\u25cf", f"class {c}") for c in range(scene.num_classes)]
    items.append(dot.format("#555", "\u2605", "proxy"))
    if scene.flipped.any():
        items.append(dot.format("#555", "\u2716", "mislabeled (colour = given label)"))
    return "   ".join(items)


def _image(movie, k: int, i: int, limits) -> dict:
    x0, x1, y0, y1 = movie.view
    return dict(source=png_uri(colorize(movie.field[k], *limits)), xref=_axis("x", i),
                yref=_axis("y", i), x=x0, y=y1,
                sizex=x1 - x0, sizey=y1 - y0, sizing="stretch", xanchor="left", yanchor="top",
                layer="below")


def _controls(names: list[str]) -> tuple[list[dict], list[dict]]:
    """Play / Pause / Step / Reset buttons and the step slider over frames `names`.
    Step animates a list that, filtered by Plotly's fromcurrent rule (frames after the
    first match of the current frame; unfiltered when no frame has been shown yet), always
    begins with the frame after the current one: [noop, 1..K, K, 0, 1]; it shows that
    frame and holds it (HOLD_MS) until the next click. At the last frame it stays.
    The slider has at most SLIDER_STEPS stops, each costing the browser time on every frame;
    the exact step is the text trace the frames update. Reset names frame 0 twice: a
    one-frame list would make Plotly watch every frame to highlight the button (a redraw of
    the menu per frame)."""
    hold = dict(_GO, frame=dict(duration=0, redraw=False))
    play = dict(_GO, fromcurrent=True, frame=dict(duration=FRAME_MS, redraw=False))
    step_list = ([_NOOP, *names[1:], names[-1], names[0], names[1]] if len(names) > 1 else names)
    step = dict(_GO, fromcurrent=True, frame=[dict(duration=0, redraw=False),
                                              dict(duration=HOLD_MS, redraw=False)])
    buttons = [dict(label="\u25b6 Play", method="animate", args=[None, play]),
               dict(label="\u275a\u275a Pause", method="animate", args=[[None], hold]),
               dict(label="Step \u25b8", method="animate", args=[step_list, step]),
               dict(label="\u21ba Reset", method="animate", args=[[names[0], names[0]], hold])]
    menu = dict(type="buttons", direction="left", showactive=False, buttons=buttons,
                x=0.0, xanchor="left", y=-0.13, yanchor="top", pad=dict(t=4))
    stride = max(1, -(-(len(names) - 1) // (SLIDER_STEPS - 1)))
    stops = names[::stride] + ([names[-1]] if (len(names) - 1) % stride else [])
    slider = dict(active=0, x=0.36, len=0.64, y=-0.13, yanchor="top", pad=dict(t=4, b=0),
                  currentvalue=dict(visible=False), ticklen=4,
                  steps=[dict(method="animate", label=n, args=[[n], hold]) for n in stops])
    return [menu], [slider]


def play_figure(scene, movies: dict, height: int = 680, fixed_scale: bool = False) -> go.Figure:
    """One panel per Movie (same scene, one per potential) that the browser animates, under
    ONE colour scale: step 0 of every panel, or fieldmap.FIXED_LIMITS with fixed_scale.
    Colours, arrow scale and axes are fixed at step 0, so nothing jumps while playing."""
    steps = next(iter(movies.values())).steps
    names = [str(int(s)) for s in steps]
    n, data, images, traces, layout, notes = len(movies), [], [], [], {}, []
    frames = [dict(name=name, data=[], traces=traces, layout=dict(images=[])) for name in names]
    limits = shared_limits([m.field[0] for m in movies.values()], fixed_scale)
    for i, (label, movie) in enumerate(movies.items()):
        left, right = i / n + 0.01, (i + 1) / n - 0.01
        x0, x1, y0, y1 = movie.view
        unit = arrow_unit(movie)
        traces += [len(data) + j for j in range(4)]
        data += _panel_traces(scene, movie, i, unit)
        images.append(_image(movie, 0, i, limits))
        for k, frame in enumerate(frames):
            frame["data"] += _moving(scene, movie, k, unit)
            frame["layout"]["images"].append(
                dict(source=images[-1]["source"] if k == 0 else png_uri(colorize(movie.field[k], *limits))))
        axis = dict(showgrid=False, zeroline=False, showticklabels=False, ticks="")
        layout[f"xaxis{i + 1 if i else ''}"] = dict(axis, domain=[left, right], range=[x0, x1],
                                                    constrain="domain")
        layout[f"yaxis{i + 1 if i else ''}"] = dict(axis, domain=[0.0, 1.0], range=[y0, y1],
                                                    scaleanchor=_axis("x", i), scaleratio=1,
                                                    constrain="domain")
        notes.append(dict(text=f"<b>{label}</b>: field of class {movie.cls}", x=(left + right) / 2,
                          y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                          showarrow=False))
    notes.append(dict(text=key_text(scene), x=0.0, y=0.0, xref="paper", yref="paper", xanchor="left",
                      yanchor="top", yshift=-125, xshift=8, showarrow=False))
    first = next(iter(movies.values()))
    layout["coloraxis"], bar = colour_axis(limits, scale_title(first.cls, fixed_scale))
    data.append(bar)
    traces.append(len(data))
    data.append(dict(type="scatter", mode="text", name="step", hoverinfo="skip", showlegend=False,
                     textposition="bottom right", textfont=dict(size=14, color="#222"),
                     **_step_text(first, 0)))
    for k, frame in enumerate(frames):
        frame["data"].append(_step_text(first, k))
    menus, sliders = _controls(names)
    layout.update(height=height, margin=dict(l=10, r=10, t=30, b=150), images=images, annotations=notes,
                  updatemenus=menus, sliders=sliders, uirevision="playground", hovermode="closest",
                  showlegend=False, plot_bgcolor="white", font=dict(family=FONT))
    return go.Figure(dict(data=data, layout=layout, frames=frames), _validate=False)


def energy_figure(movies: dict, height: int = 220) -> go.Figure:
    """The total energy U (Eq. 6) per computed step, one small panel per Movie, every panel on
    the same axis type: logarithmic when every U stays positive and one spans decades (the
    first steps often drop by orders of magnitude), else linear."""
    n, data, layout = len(movies), [], {}
    energies = [m.energy for m in movies.values()]
    positive = all(bool((e > 0).all()) for e in energies)
    decades = max(float(np.log10(e.max() / e.min())) for e in energies) if positive else 0.0
    log = decades > 1.5  # a narrower log axis would label 2, 3, ... 9 in between
    ticks = dict(dtick=int(np.ceil(decades / 5))) if decades > 5 else {}  # at most ~6 labels
    for i, (label, movie) in enumerate(movies.items()):
        data.append(dict(type="scatter", mode="lines", name=label, x=movie.steps.tolist(),
                         y=movie.energy.tolist(), xaxis=_axis("x", i), yaxis=_axis("y", i),
                         line=dict(color="#444", width=1.5),
                         hovertemplate="step %{x}: U = %{y:.4g}<extra></extra>"))
        layout[f"xaxis{i + 1 if i else ''}"] = dict(domain=[i / n + 0.07, (i + 1) / n - 0.02],
                                                    title=dict(text=f"step ({label})"), anchor=_axis("y", i))
        layout[f"yaxis{i + 1 if i else ''}"] = dict(anchor=_axis("x", i), title=dict(text="U"),
                                                    type="log" if log else "linear", **ticks)
    layout.update(height=height, margin=dict(l=10, r=10, t=40, b=10), showlegend=False,
                  font=dict(family=FONT), plot_bgcolor="white",
                  title=dict(text="Total energy U (Eq. 6) at each computed step", font=dict(size=14)))
    for axis in [k for k in layout if k.startswith(("xaxis", "yaxis"))]:
        layout[axis].update(automargin=True, showgrid=True, gridcolor="#eee", zeroline=False)
    return go.Figure(dict(data=data, layout=layout), _validate=False)


def compare_table(scene, dragged: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per mislabeled sample: its true and given label and how far each potential
    dragged it from where it started."""
    idx = np.flatnonzero(scene.flipped)
    table = pd.DataFrame({"sample": idx, "true class": scene.true_labels[idx],
                          "given label": scene.labels[idx]})
    for name, dist in dragged.items():
        table[f"dragged under {name}"] = np.round(dist, 3)
    return table
