"""Figures of a sweep: a heatmap of mean R@1 per setting that shows the spread over seeds and
marks the settings this sweep cannot tell from the best (lab.best.settings), Optuna's
parameter importance and contour plots, and R@1 along one axis with the paper's ablation
curve beside it. Runs or studies in, Plotly figures out."""
from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.subplots import make_subplots

from pfml_core.lab import best
from pfml_core.lab import paper as lab_paper

PAPER_STYLE = {"dash": "dot", "width": 2}
TIED, BEST = "≈ best", "best"
BEST_LINE = {"color": "#d62728", "width": 4}


def label(axis: str) -> str:
    return lab_paper.AXIS_LABELS.get(axis, axis)


def _empty(title: str, note: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, annotations=[{"text": note, "showarrow": False,
                                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}])
    return fig


def done(runs: list[dict]) -> list[dict]:
    """The finished runs: all best.settings reads (it fails on R@1 from pruned runs alone)."""
    return [r for r in runs if r["status"] == "done"]


def seeds_seen(runs: list[dict]) -> int:
    """Distinct seeds among the finished runs (a search repeats a point on the same seed:
    that is no spread)."""
    return len({(r.get("config") or {}).get("seed") for r in done(runs)})


def _cell(row: pd.Series, spread: bool) -> str:
    mean = f"{100 * row['R@1 mean']:.1f}"
    if spread and row["n"] > 1:
        mean += f" ± {100 * row['R@1 spread']:.1f}"
    mark = BEST if row["best"] else TIED if spread and row["tied"] else ""
    return mean + (f"<br>{mark}" if mark else "")


def heatmap_cells(runs: list[dict], axes, x: str, y: str) -> tuple[pd.DataFrame, dict, set]:
    """best.settings over `axes`, cut to the slice through the best setting when more than x
    and y vary: (its rows, the other axes' values there, the (x, y) of that slice's pruned
    runs)."""
    table = best.settings(done(runs), axes)
    if table.empty:
        return table, {}, set()
    top = table[table["best"]].iloc[0]
    held = {a: top[a] for a in table.columns[:list(table.columns).index("R@1 mean")] if a not in (x, y)}
    for a, v in held.items():
        table = table[table[a] == v]
    pruned = {(r["params"][x], r["params"][y]) for r in runs if r["status"] == "pruned"
              and x in r["params"] and y in r["params"]
              and all(r["params"].get(a) == v for a, v in held.items())}
    return table, held, pruned


def settings_heatmap(runs: list[dict], axes, x: str, y: str) -> go.Figure:
    """Mean R@1 (points) per x-by-y setting over seeds; each cell reads 'mean ± spread' (the
    sample std over seeds), the best cell is outlined and reads 'best', the settings within
    the seeds' spread of it read '≈ best'; a setting only pruned runs reached reads 'pruned'.
    One seed: no spread, no cell marked tied. Other varied axes are held at the best
    setting's values (in the title)."""
    title = f"R@1 (%): {label(y)} by {label(x)}"
    if x == y:
        return _empty(title, "pick two different axes")
    table, held, pruned = heatmap_cells(runs, list(dict.fromkeys([*axes, x, y])), x, y)
    if table.empty:
        return _empty(title, "no finished runs yet")
    if held:
        title += " at " + ", ".join(f"{a} {v:g}" for a, v in held.items())
    spread = seeds_seen(runs) > 1
    xs = sorted(set(table[x]) | {p[0] for p in pruned})
    ys = sorted(set(table[y]) | {p[1] for p in pruned})
    z = np.full((len(ys), len(xs)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    custom = np.full((*z.shape, 2), np.nan)
    for px, py in pruned:
        text[ys.index(py), xs.index(px)] = "pruned"
    for _, row in table.iterrows():
        i, j = ys.index(row[y]), xs.index(row[x])
        z[i, j], text[i, j] = 100 * row["R@1 mean"], _cell(row, spread)
        custom[i, j] = (row["n"], 100 * row["gap"])
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"{v:g}" for v in xs], y=[f"{v:g}" for v in ys], text=text, texttemplate="%{text}",
        customdata=custom, colorscale="Viridis", colorbar_title="R@1 (%)", name="mean R@1",
        hoverongaps=False, hovertemplate=f"{x}=%{{x}}, {y}=%{{y}}<br>R@1 %{{z:.2f}} (n=%{{customdata[0]}})"
                                         "<br>%{customdata[1]:.2f} below the best<extra></extra>"))
    top = table[table["best"]].iloc[0]
    j, i = xs.index(top[x]), ys.index(top[y])
    fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5, line=BEST_LINE,
                  name="best")
    fig.update_layout(title=title, xaxis_title=label(x), yaxis_title=label(y),
                      xaxis_type="category", yaxis_type="category")
    return fig


def settings_table(runs: list[dict], axes) -> pd.DataFrame:
    """best.settings of the finished runs, with the distinct seeds behind each setting (a
    search that draws a point again runs it on the same seed: more runs, no more seeds)."""
    table = best.settings(done(runs), axes)
    keys = list(table.columns[:list(table.columns).index("R@1 mean")])
    seeds: dict[tuple, set] = {}
    for r in done(runs):
        seeds.setdefault(tuple(r["params"].get(a) for a in keys), set()).add((r.get("config") or {}).get("seed"))
    table.insert(list(table.columns).index("n") + 1, "seeds",
                 [len(seeds.get(tuple(row), ())) for row in table[keys].itertuples(index=False)])
    return table


def tie_note(runs: list[dict], axes) -> str:
    """What the heatmap's marks mean, or plainly that one seed gives no spread."""
    table = best.settings(done(runs), axes)
    if table.empty:
        return ""
    if seeds_seen(runs) < 2:
        return ("One seed per setting: there is no spread, so no difference here can be told from "
                "seed noise. Outlined: the best mean. Rerun the best few settings with 3 seeds "
                "(grid search, seeds 0,1,2) before trusting a gap.")
    ties = int(table["tied"].sum()) - 1
    said = "Each cell: mean R@1 ± its spread (sample std over seeds). Outlined, 'best': the best mean. "
    if not ties:
        return said + "Every other setting is further below it than the seeds' spread."
    return said + ("'≈ best': its gap to the best is within the seeds' spread, so this sweep cannot "
                   f"tell it from the best ({ties} setting{'s' if ties != 1 else ''}).")


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def varied(study: optuna.Study) -> list[str]:
    """Params that took at least two values in the finished trials."""
    trials = finished(study)
    names = dict.fromkeys(p for t in trials for p in t.params)
    return [p for p in names if len({t.params.get(p) for t in trials}) > 1]


def cannot_plot(study: optuna.Study, params=None) -> str | None:
    """Why Optuna's importance (params None) or contour (params: its x and y) cannot be drawn
    yet, in one line; None when it can."""
    n, moved = len(finished(study)), varied(study)
    if n < 2:
        return f"Parameter importance and the contour need 2 finished trials; there {'is' if n == 1 else 'are'} {n}."
    if not moved:
        return "Every finished trial had the same parameters: nothing to rank or to contour."
    if params is not None:
        if len(set(params)) < 2:
            return "The contour needs two different axes."
        if still := [p for p in params if p not in moved]:
            return f"{', '.join(still)} took one value in the finished trials: no contour over it."
    return None


def importance_figure(study: optuna.Study) -> go.Figure:
    """Optuna's fANOVA importance (seeded: the same bars on every redraw) of the params that
    varied in the finished trials. Check cannot_plot(study) first."""
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    fig = optuna.visualization.plot_param_importances(study, evaluator=evaluator, params=varied(study))
    top = max((max(t.x, default=0) for t in fig.data), default=1)
    fig.update_layout(title="Parameter importance (fANOVA, finished trials)",
                      xaxis_range=[0, 1.15 * top])  # room for the value written past each bar
    return fig


def contour_figure(study: optuna.Study, x: str, y: str) -> go.Figure:
    """Optuna's contour of R@1 over x and y (finished trials). Check cannot_plot(study, [x, y])."""
    fig = optuna.visualization.plot_contour(study, params=[x, y])
    fig.update_traces(colorbar_title_text="R@1", selector={"type": "contour"})
    fig.update_layout(title=f"R@1 contour: {label(y)} by {label(x)} (finished trials)",
                      xaxis_title=label(x), yaxis_title=label(y))
    return fig


def sweep_line(frame: pd.DataFrame, axis: str, metric: str = "R@1", paper: bool = True) -> go.Figure:
    """Measured mean +- std of `metric` along one axis (others averaged) on the left axis; the
    paper's ablation curve (R@1 %, Cars and CUB) on the right axis where one exists."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    done = frame[frame["status"] == "done"] if "status" in frame else frame.iloc[0:0]
    if not done.empty and metric in done and axis in done:
        g = done.groupby(axis)[metric]
        m, s = g.mean(), g.std(ddof=1).fillna(0.0)
        fig.add_trace(go.Scatter(x=m.index, y=m.values, name=f"measured {metric}", mode="lines+markers",
                                 error_y={"type": "data", "array": s.values, "visible": True}),
                      secondary_y=False)
    ref = lab_paper.ablation(axis) if paper else None
    if ref is not None:
        for ds in ("Cars", "CUB"):
            fig.add_trace(go.Scatter(x=ref["x"], y=ref[ds], name=f"paper {ds} R@1 (%)",
                                     mode="lines+markers", line=PAPER_STYLE), secondary_y=True)
    fig.update_layout(title=f"{metric} vs {label(axis)}" + (" — paper beside it" if ref is not None else ""),
                      legend={"orientation": "h", "y": -0.25})  # beside the plot it hid the right axis
    fig.update_xaxes(title_text=label(axis))
    fig.update_yaxes(title_text=f"measured {metric}", secondary_y=False)
    fig.update_yaxes(title_text="paper R@1 (%)", secondary_y=True, showgrid=False)
    return fig

