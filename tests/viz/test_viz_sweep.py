"""pfml_core/viz/sweep.py on hand-made runs and studies, read back as the browser receives
the figures: the heatmap's cells ('mean ± spread'), which cell is outlined best and which read
'≈ best', one seed said plainly, Optuna's importance and contour with their one-line notes."""
from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from pfml_core.lab import paper as lab_paper
from pfml_core.viz import sweep as viz
from tests.lab_helpers import arr, traces

# (alpha, delta) -> R@1 of seeds 0, 1, 2
GRID = {(3.0, 0.1): (0.89, 0.90, 0.91),   # best: mean 0.90, spread 0.01
        (3.0, 0.3): (0.885, 0.895, 0.905),  # 0.005 below, within the spread: tied
        (1.0, 0.1): (0.79, 0.80, 0.81),   # 0.10 below, spread 0.01: not tied
        (1.0, 0.3): (0.78, 0.85, 0.92)}   # 0.05 below, spread 0.07 (noisy): tied


def run(i, status="done", r1=None, seed=0, **params) -> dict:
    return {"id": i, "idx": i, "params": params, "config": {"seed": seed}, "status": status,
            "metrics": None if r1 is None else {"R@1": r1}, "error": None}


def grid_runs(seeds=(0, 1, 2)) -> list[dict]:
    """GRID on `seeds` (seed is a param of a grid's trial), a pruned, a failed, a queued run."""
    runs = []
    for s in seeds:
        for (a, d), values in GRID.items():
            runs.append(run(len(runs), r1=values[s], seed=s, alpha=a, delta=d))
            runs[-1]["params"]["seed"] = s
    return runs + [run(90, "pruned", 0.99, alpha=1.0, delta=0.1),  # never counted
                   run(91, "failed", alpha=3.0, delta=0.3), run(None, "queued")]


def heat(fig) -> tuple[dict, list, list]:
    """The heatmap trace as sent to the browser, its cells {(x, y): text} and the shapes."""
    spec = json.loads(fig.to_json())
    tr = traces(spec)["mean R@1"]
    z, text = arr(tr["z"]), tr["text"]
    cells = {(x, y): (z[i][j], text[i][j]) for i, y in enumerate(tr["y"]) for j, x in enumerate(tr["x"])}
    return cells, spec["layout"].get("shapes", []), tr


def test_cells_show_mean_and_spread_and_mark_best_and_ties():
    cells, shapes, tr = heat(viz.settings_heatmap(grid_runs(), ["alpha", "delta"], "alpha", "delta"))
    assert tr["x"] == ["1", "3"] and tr["y"] == ["0.1", "0.3"]
    for (a, d), values in GRID.items():
        z, text = cells[f"{a:g}", f"{d:g}"]
        assert z == pytest.approx(100 * np.mean(values))
        assert text.startswith(f"{100 * np.mean(values):.1f} ± {100 * np.std(values, ddof=1):.1f}")
    assert cells["3", "0.1"][1].endswith("<br>best")
    assert [k for k, (_, t) in cells.items() if t.endswith("<br>≈ best")] == [("1", "0.3"), ("3", "0.3")]
    assert cells["1", "0.1"][1] == "80.0 ± 1.0"  # not tied: no mark
    (box,) = shapes  # the best cell outlined: column 1 (alpha 3), row 0 (delta 0.1)
    assert (box["x0"], box["x1"], box["y0"], box["y1"]) == (0.5, 1.5, -0.5, 0.5)
    note = viz.tie_note(grid_runs(), ["alpha", "delta"])
    assert "± its spread" in note and "'≈ best'" in note and "(2 settings)" in note


def test_one_seed_has_no_spread_and_no_ties():
    runs = grid_runs(seeds=(0,))
    cells, shapes, _ = heat(viz.settings_heatmap(runs, ["alpha", "delta"], "alpha", "delta"))
    assert {k: t for k, (_, t) in cells.items()} == {
        ("1", "0.1"): "79.0", ("3", "0.1"): "89.0<br>best", ("1", "0.3"): "78.0", ("3", "0.3"): "88.5"}
    assert len(shapes) == 1
    assert "One seed per setting: there is no spread" in viz.tie_note(runs, ["alpha", "delta"])
    assert "3 seeds" in viz.tie_note(runs, ["alpha", "delta"])


def test_a_search_repeating_one_seed_is_still_one_seed():
    """TPE may draw a point twice on the same seed: n = 2 runs, but no spread over seeds."""
    runs = [run(0, r1=0.9, alpha=3.0, delta=0.1), run(1, r1=0.9, alpha=3.0, delta=0.1),
            run(2, r1=0.89, alpha=1.0, delta=0.1), run(3, r1=0.88, alpha=1.0, delta=0.3)]
    cells, _, _ = heat(viz.settings_heatmap(runs, ["alpha", "delta"], "alpha", "delta"))
    texts = {k: t for k, (_, t) in cells.items() if t}
    assert "±" not in "".join(texts.values()) and "≈" not in "".join(texts.values())
    assert texts[("3", "0.1")] == "90.0<br>best"
    assert np.isnan(cells["3", "0.3"][0]) and cells["3", "0.3"][1] == ""  # never drawn
    assert viz.tie_note(runs, ["alpha", "delta"]).startswith("One seed per setting")


def test_a_third_axis_is_held_at_the_best_setting():
    runs = [run(0, r1=0.9, alpha=3.0, delta=0.1, proxies_per_class=5),
            run(1, r1=0.7, alpha=1.0, delta=0.1, proxies_per_class=5),
            run(2, r1=0.8, alpha=3.0, delta=0.3, proxies_per_class=10),
            run(3, r1=0.6, alpha=1.0, delta=0.3, proxies_per_class=10)]
    fig = viz.settings_heatmap(runs, ["alpha", "delta", "proxies_per_class"], "alpha", "delta")
    cells, _, _ = heat(fig)
    assert fig.layout.title.text.endswith(" at proxies_per_class 5")
    assert {k: z for k, (z, _) in cells.items() if not np.isnan(z)} == {("1", "0.1"): 70.0, ("3", "0.1"): 90.0}


def test_pruned_settings_read_pruned():
    """A setting only pruned runs reached is a labelled empty cell, not a result."""
    runs = grid_runs() + [run(92, "pruned", 0.95, alpha=5.0, delta=0.3, seed=0)]
    cells, shapes, tr = heat(viz.settings_heatmap(runs, ["alpha", "delta"], "alpha", "delta"))
    assert tr["x"] == ["1", "3", "5"] and np.isnan(cells["5", "0.3"][0]) and cells["5", "0.3"][1] == "pruned"
    assert np.isnan(cells["5", "0.1"][0]) and cells["5", "0.1"][1] == ""
    assert cells["1", "0.1"][1] == "80.0 ± 1.0"  # done runs there: the pruned one is not counted


def test_heatmap_notes():
    note = lambda fig: fig.layout.annotations[0].text  # noqa: E731
    only_pruned = [run(0, "pruned", 0.9, alpha=1.0, delta=0.1)]
    assert "no finished runs" in note(viz.settings_heatmap(only_pruned, ["alpha", "delta"], "alpha", "delta"))
    assert "two different axes" in note(viz.settings_heatmap(grid_runs(), ["alpha"], "alpha", "alpha"))
    assert viz.tie_note([], ["alpha"]) == "" and viz.tie_note(only_pruned, ["alpha"]) == ""
    apart = [r for r in grid_runs() if r["params"].get("delta") == 0.1]  # 0.10 apart, spread 0.01
    assert viz.tie_note(apart, ["alpha"]).endswith("Every other setting is further below it than the seeds' spread.")


def test_settings_table_counts_seeds_not_runs():
    repeats = [run(0, r1=0.9, alpha=3.0), run(1, r1=0.9, alpha=3.0), run(2, r1=0.8, alpha=1.0)]
    table = viz.settings_table(repeats, ["alpha"])
    assert list(table.columns) == ["alpha", "R@1 mean", "R@1 spread", "n", "seeds", "gap", "tied", "best"]
    assert table[["alpha", "n", "seeds"]].values.tolist() == [[3.0, 1, 1], [1.0, 1, 1]]  # n: seeds
    table = viz.settings_table(grid_runs(), ["alpha", "delta"])
    assert (table["seeds"] == 3).all() and (table["n"] == 3).all()
    assert viz.settings_table([], ["alpha"]).empty


def study(points, pruned=()) -> optuna.Study:
    """An in-memory study of finished trials at `points` ({param: value}, R@1) and pruned ones."""
    s = optuna.create_study(direction="maximize")
    space = {"alpha": (1.0, 3.0, 5.0), "delta": (0.1, 0.3), "delta_gap": (0.0,)}
    dists = {k: CategoricalDistribution(v) for k, v in space.items()}
    for params, value in points:
        s.add_trial(optuna.create_trial(params={"delta_gap": 0.0, **params}, distributions=dists, value=value))
    for params in pruned:
        s.add_trial(optuna.create_trial(params={"delta_gap": 0.0, **params}, distributions=dists,
                                        state=TrialState.PRUNED, intermediate_values={1: 0.1}))
    return s


FULL = [({"alpha": a, "delta": d}, 0.8 + 0.03 * a - 0.1 * d + 0.001 * i)
        for i, (a, d) in enumerate([(1.0, 0.1), (3.0, 0.1), (5.0, 0.1), (1.0, 0.3), (3.0, 0.3), (5.0, 0.3)] * 2)]


def test_importance_bars_for_the_params_that_varied():
    s = study(FULL, pruned=[{"alpha": 5.0, "delta": 0.3}])
    assert viz.cannot_plot(s) is None and viz.varied(s) == ["alpha", "delta"]
    fig = viz.importance_figure(s)
    (bar,) = json.loads(fig.to_json())["data"]
    assert sorted(bar["y"]) == ["alpha", "delta"]  # delta_gap took one value: no bar
    x = arr(bar["x"])
    assert x.sum() == pytest.approx(1.0) and bar["y"][int(np.argmax(x))] == "alpha"
    assert viz.importance_figure(s).to_json() == fig.to_json()  # seeded: the same bars every redraw
    assert fig.layout.title.text.startswith("Parameter importance")


def test_contour_has_data_over_x_and_y():
    s = study(FULL)
    assert viz.cannot_plot(s, ["alpha", "delta"]) is None
    fig = viz.contour_figure(s, "alpha", "delta")
    data = json.loads(fig.to_json())["data"]
    contour = next(t for t in data if t["type"] == "contour")
    assert np.isfinite(arr(contour["z"]).astype(float)).sum() >= 6
    points = next(t for t in data if t.get("name") == "Feasible Trial")
    assert len(points["x"]) == len(FULL)
    assert fig.layout.xaxis.title.text == lab_paper.AXIS_LABELS["alpha"]


def test_too_few_trials_or_params_give_one_line():
    one = study(FULL[:1], pruned=[{"alpha": 1.0, "delta": 0.3}])
    assert viz.cannot_plot(one) == "Parameter importance and the contour need 2 finished trials; there is 1."
    same = study([({"alpha": 3.0, "delta": 0.1}, 0.9)] * 3)
    assert "same parameters" in viz.cannot_plot(same)
    flat = study([({"alpha": a, "delta": 0.1}, 0.8 + 0.01 * a) for a in (1.0, 3.0)])
    assert viz.cannot_plot(flat) is None  # alpha varies: importance can be drawn
    assert viz.cannot_plot(flat, ["alpha", "delta"]) == ("delta took one value in the finished trials: "
                                                         "no contour over it.")
    assert viz.cannot_plot(flat, ["alpha", "alpha"]) == "The contour needs two different axes."
    for msg in (viz.cannot_plot(one), viz.cannot_plot(same), viz.cannot_plot(flat, ["alpha", "delta"])):
        assert "\n" not in msg


def test_sweep_line_shows_measured_and_paper():
    frame = pd.DataFrame({"status": ["done"] * 4 + ["failed"], "alpha": [1, 1, 3, 3, 3],
                          "delta": [0.1, 0.2, 0.1, 0.2, 0.2], "R@1": [0.5, 0.6, 0.7, 0.9, np.nan]})
    line = traces(viz.sweep_line(frame, "alpha").to_json())
    measured = line["measured R@1"]
    assert list(arr(measured["x"])) == [1, 3] and np.allclose(arr(measured["y"]), [0.55, 0.8])
    assert list(arr(line["paper Cars R@1 (%)"]["y"])) == lab_paper.ABLATIONS["alpha"][1]
    assert traces(viz.sweep_line(frame, "seed").to_json()) == {}  # no such axis, no paper curve
