"""pfml_core.lab.grid / lab_measure / lab_paper / viz.lab: grid expansion, aggregation against
numpy by hand, flip distances against a hand-placed example, the paper's numbers, figures."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from pfml_core.lab import grid as lab
from pfml_core.lab import measure as lab_measure
from pfml_core.lab import paper as lab_paper
from pfml_core.viz import lab as viz
from tests.lab_helpers import arr, traces

TINY = {"epochs": 1, "max_batches_per_epoch": 2}


def _points(spec):
    """Every point of a grid spec with its TrainConfig, as the worker's trials get them."""
    return [(dict(zip(spec["space"], c)), lab.config_for(spec, dict(zip(spec["space"], c))))
            for c in itertools.product(*spec["space"].values())]


def test_noise_grid_is_the_full_product():
    spec = lab.noise_grid("digits", ["pfml", "triplet"], [0, 0.2, 0.4], [0, 1], base=TINY,
                          loss_params={"pfml": {"alpha": 2.0}})
    runs = _points(spec)
    params = [(p["loss"], p["noise"], p["seed"]) for p, _ in runs]
    assert params == list(itertools.product(["pfml", "triplet"], [0.0, 0.2, 0.4], [0, 1]))
    assert lab.size(spec) == 12 and spec["mode"] == "grid"
    for p, cfg in runs:
        assert (cfg["loss"], cfg["noise"], cfg["seed"], cfg["data"]) == (p["loss"], p["noise"], p["seed"], "digits")
        assert cfg["epochs"] == 1 and cfg["max_batches_per_epoch"] == 2
        assert cfg["loss_params"] == ({"alpha": 2.0} if p["loss"] == "pfml" else {})
    assert json.loads(json.dumps(spec))["space"]["noise"] == [0.0, 0.2, 0.4]


@pytest.mark.parametrize("kwargs, match", [
    ({"losses": ["nope"]}, "losses"), ({"noise_rates": [1.2]}, "noise_rates"),
    ({"seeds": []}, "seeds"), ({"seeds": [-1]}, "seeds"), ({"losses": []}, "losses"),
    ({"seeds": list(range(600))}, "at most")])
def test_noise_grid_refuses_bad_input(kwargs, match):
    args = {"losses": ["pfml"], "noise_rates": [0.0], "seeds": [0], **kwargs}
    with pytest.raises(ValueError, match=match):
        lab.noise_grid("digits", args["losses"], args["noise_rates"], args["seeds"], base=TINY)


def test_missing_data_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="data must be one of"):
        lab.noise_grid(str(tmp_path / "nope.npz"), ["pfml"], [0], [0])
    with pytest.raises(ValueError, match="data must be one of"):
        lab.sweep_grid("cifar", [3], [0.2])


def test_bad_base_config_is_refused():
    with pytest.raises(ValueError, match="epochs"):
        lab.noise_grid("digits", ["pfml"], [0], [0], base={"epochs": 0})


def test_sweep_grid_sets_delta_rep_from_the_gap():
    spec = lab.sweep_grid("digits", [1, 3], [0.1, 0.2], [0.0, 0.05], [0, 5], seeds=[0], mode="grid", base=TINY)
    runs = _points(spec)
    assert len(runs) == lab.size(spec) == 16
    for p, cfg in runs:
        lp = cfg["loss_params"]
        assert cfg["loss"] == "pfml"
        assert (lp["alpha"], lp["delta"], lp["proxies_per_class"]) == (p["alpha"], p["delta"], p["proxies_per_class"])
        assert lp["delta_rep"] == pytest.approx(p["delta"] + p["delta_gap"])


def test_searches_draw_n_trials_from_the_listed_values_on_the_first_seed():
    spec = lab.sweep_grid("digits", [1, 5], [0.1, 0.3], [0, 0.1], [2, 8], seeds=[4, 5], n_trials=7, base=TINY)
    assert spec["mode"] == "tpe" and lab.size(spec) == 7 and "seed" not in spec["space"]
    assert lab.config_for(spec, {"alpha": 5, "delta": 0.1, "delta_gap": 0.1, "proxies_per_class": 2})["seed"] == 4
    with pytest.raises(ValueError, match="mode"):
        lab.sweep_grid("digits", [1], [0.1], mode="bayes")
    with pytest.raises(ValueError, match="alpha"):
        lab.sweep_grid("digits", [0], [0.2])


def _runs():
    rows, rng = [], np.random.default_rng(0)
    for i, (loss, noise, seed) in enumerate(itertools.product(["pfml", "proxy_anchor"], [0.0, 0.2], [0, 1, 2])):
        rows.append({"id": i, "status": "done", "params": {"loss": loss, "noise": noise, "seed": seed},
                     "metrics": {"R@1": float(rng.uniform()), "R@2": float(rng.uniform()), "curve": [1.0]}})
    rows.append({"id": 99, "status": "failed", "params": {"loss": "pfml", "noise": 0.0, "seed": 3},
                 "metrics": None, "error": "x"})
    return rows


def test_aggregate_matches_numpy_by_hand():
    runs = _runs()
    agg = lab.aggregate(lab.runs_frame(runs), ["loss", "noise"])
    assert len(agg) == 4 and (agg["n"] == 3).all()  # the failed run is left out
    for _, row in agg.iterrows():
        vals = [r["metrics"]["R@1"] for r in runs if r["status"] == "done"
                and r["params"]["loss"] == row["loss"] and r["params"]["noise"] == row["noise"]]
        assert row["R@1 mean"] == pytest.approx(sum(vals) / 3)
        assert row["R@1 std"] == pytest.approx(np.sqrt(sum((v - sum(vals) / 3) ** 2 for v in vals) / 2))
    g = lab.gain(agg)
    pf = agg.set_index(["loss", "noise"])["R@1 mean"]
    assert g.set_index("noise")["gain"][0.2] == pytest.approx(pf["pfml", 0.2] - pf["proxy_anchor", 0.2])
    assert "curve" not in lab.runs_frame(runs)  # lists are not table columns


def test_aggregate_of_nothing_is_empty():
    assert lab.aggregate(lab.runs_frame([]), ["loss"]).empty
    assert lab.gain(lab.aggregate(lab.runs_frame([]), ["loss", "noise"])).empty


def test_flip_distances_on_hand_placed_points():
    # class 0 clean at +x, class 1 clean at +y; sample 4 truly class 0 (at +x) labelled 1;
    # sample 5 truly class 1 but sits halfway between the classes, labelled 0.
    emb = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [2, 0], [1, 1]], dtype=float)
    true = np.array([0, 0, 1, 1, 0, 1])
    noisy = np.array([0, 0, 1, 1, 1, 0])
    flipped = noisy != true
    m = lab_measure.flip_distances(emb, noisy, true, flipped)
    s = np.sqrt(0.5)
    d45 = np.hypot(1 - s, s)  # from (s, s) to (1, 0) or (0, 1)
    assert m["flip_d_labelled"] == pytest.approx((np.sqrt(2) + d45) / 2)
    assert m["flip_d_true"] == pytest.approx((0 + d45) / 2)
    assert m["flip_closer_true"] == pytest.approx(0.5)  # sample 5 is a tie: not closer
    assert m["clean_d_own"] == pytest.approx(0.0) and m["n_flipped"] == 2
    with pytest.raises(ValueError, match="matching lengths"):
        lab_measure.flip_distances(emb, noisy[:3], true, flipped)


def test_paper_numbers_match_the_claims():
    assert lab_paper.noise_gain() == {"CUB": 6.0, "Cars": 7.6}  # the issue's +6.0 / +7.6
    t = lab_paper.noise_table().set_index("loss")
    assert t.loc["pfml", "Cars R@2"] == 88.6 and t.loc["triplet", "CUB R@1"] == 55.1
    a = lab_paper.ablation("alpha")
    assert a.loc[a["Cars"].idxmax(), "x"] == 3 and lab_paper.ablation("seed") is None


def _fig(fig) -> dict:
    """The figure as the browser receives it: {trace name: trace}."""
    return traces(fig.to_json())


def test_noise_figure_plots_the_aggregate():
    agg = lab.aggregate(lab.runs_frame(_runs()), ["loss", "noise"])
    tr = _fig(viz.noise_figure(agg, "R@1"))["pfml"]
    pf = agg[agg["loss"] == "pfml"]
    assert list(arr(tr["x"])) == [0, 20] and np.allclose(arr(tr["y"]), pf["R@1 mean"])
    assert np.allclose(arr(tr["error_y"]["array"]), pf["R@1 std"])
    assert "no finished runs" in viz.noise_figure(agg.iloc[0:0], "R@1").layout.annotations[0].text
    bars = _fig(viz.paper_noise_figure(["pfml", "proxy_anchor"]))
    assert list(arr(bars["Cars"]["x"])) == ["proxy_anchor", "pfml"]
    assert list(arr(bars["Cars"]["y"])) == [76.9, 84.5]


# --- memorization curves, regime, gain text (issue: label-noise lab that shows the effect) ---
from types import SimpleNamespace  # noqa: E402

from pfml_core.lab import regime as lab_regime  # noqa: E402
from tests import lab_fakes  # noqa: E402


def _fake_history(noise: float, epochs: int = 2):
    return [SimpleNamespace(epoch=e, metrics={"R@1": 0.5 + 0.1 * e}, margins=lab_fakes.margins(e, noise))
            for e in range(epochs + 1)]


def test_memorization_means_flipped_and_clean_margins_by_hand():
    curves = lab_measure.memorization(_fake_history(0.25))
    i = np.arange(lab_fakes.N_ROWS)
    flipped = i < 10  # round(0.25 * 40)
    assert curves["epoch"] == [0, 1, 2] and curves["R@1"] == pytest.approx([0.5, 0.6, 0.7])
    for e in range(3):
        assert curves["margin_flipped"][e] == pytest.approx(np.mean(-0.5 + 0.3 * e + 0.001 * i[flipped]), abs=1e-6)
        assert curves["margin_clean"][e] == pytest.approx(np.mean(0.5 + 0.001 * i[~flipped]), abs=1e-6)
    # memorized: flipped margin > 0 -> none at epochs 0-1 (-0.5, -0.2), all at epoch 2 (+0.1)
    assert curves["memorized"] == [0.0, 0.0, 1.0]
    clean = lab_measure.memorization(_fake_history(0.0))
    assert np.isnan(clean["margin_flipped"]).all() and np.isnan(clean["memorized"]).all()


def _curve_runs():
    runs = []
    for i, (loss, seed) in enumerate(itertools.product(["pfml", "proxy_anchor"], [0, 1])):
        hist = _fake_history(0.25)
        for s in hist:
            s.metrics["R@1"] += 0.01 * seed + (0.2 if loss == "pfml" else 0)
        runs.append({"id": i, "status": "done", "params": {"loss": loss, "noise": 0.25, "seed": seed},
                     "metrics": {"curves": lab_measure.memorization(hist)}})
    runs.append({"id": 9, "status": "failed", "params": {"loss": "pfml", "noise": 0.25, "seed": 2},
                 "metrics": None})
    return runs


def test_curves_frame_and_summary_over_seeds():
    frame = lab_measure.curves_frame(_curve_runs())
    assert len(frame) == 4 * 3 and set(frame["run"]) == {0, 1, 2, 3}  # the failed run left out
    summary = lab_measure.curves_summary(frame).set_index(["loss", "noise", "epoch"])
    row = summary.loc[("pfml", 0.25, 2)]
    assert row["R@1 mean"] == pytest.approx(np.mean([0.9, 0.91])) and row["n"] == 2
    assert row["R@1 std"] == pytest.approx(np.std([0.9, 0.91], ddof=1))
    assert row["memorized mean"] == 1.0 and row["memorized std"] == 0.0
    assert lab_measure.curves_frame([]).empty and lab_measure.curves_summary(pd.DataFrame()).empty


def test_memorization_and_margin_figures_plot_the_summary():
    summary = lab_measure.curves_summary(lab_measure.curves_frame(_curve_runs()))
    labels = {"pfml": "PFML", "proxy_anchor": "Proxy Anchor"}
    fig = viz.memorization_figure(summary, 0.25, labels).to_plotly_json()
    r1 = [t for t in fig["data"] if t["name"] == "PFML" and t["xaxis"] == "x"][0]
    pf = summary[summary["loss"] == "pfml"].sort_values("epoch")
    assert list(arr(r1["x"])) == [0, 1, 2] and np.allclose(arr(r1["y"]), pf["R@1 mean"])
    assert np.allclose(arr(r1["error_y"]["array"]), pf["R@1 std"])
    mem = [t for t in fig["data"] if t["name"] == "Proxy Anchor" and t["xaxis"] == "x2"][0]
    assert list(arr(mem["y"])) == [0.0, 0.0, 1.0]
    m = {t["name"]: t for t in viz.margin_figure(summary, 0.25, labels).to_plotly_json()["data"]}
    assert np.allclose(arr(m["pfml: flipped"]["y"]), pf["margin_flipped mean"][1:])  # trained epochs
    assert list(arr(m["pfml: flipped"]["x"])) == [1, 2]
    assert m["pfml: flipped"]["line"]["dash"] == "dash" and m["proxy_anchor: clean"]["xaxis"] == "x2"
    empty = viz.memorization_figure(summary, 0.4)
    assert "no finished runs" in empty.layout.annotations[0].text


def test_run_metrics_stores_curves_and_last_values():
    hist = _fake_history(0.25)
    for s in hist:
        s.seconds, s.train_flipped = 0.1, None
    result = SimpleNamespace(history=hist, stopped=False, config=SimpleNamespace(noise=0.25))
    m = lab_measure.run_metrics(result)
    assert m["curves"]["memorized"] == [0.0, 0.0, 1.0] and m["memorized"] == 1.0
    assert m["margin_flipped"] == m["curves"]["margin_flipped"][-1]
    json.dumps(m)  # what the store writes
    summary, table = lab_measure.run_suspects(result)
    assert summary["suspect_epochs"] == 2 and summary["suspect_auroc"] == 1.0  # R@1 rises: all
    assert list(table.columns[:5]) == ["row", "given_label", "suggested_label", "score", "flipped"]
    assert table["flipped"][:10].all()  # the 10 flipped rows rank first


def test_default_grid_is_the_stated_regime():
    d = lab_regime.default_grid("cpu")
    assert (d["data"], d["losses"], d["noise_rates"], d["seeds"]) == (
        "mnist5k", ["pfml", "proxy_anchor"], [0.0, 0.2], [0, 1, 2])
    assert d["base"] == {"model": "mlp", "epochs": lab_regime.EPOCHS, "embedding_size": 64,
                         "eval_subset": 1000, "device": "cpu"}
    assert d["kind"] == "cpu" and 1 <= d["parallel"] <= 4 and str(lab_regime.EPOCHS) in d["why"]
    spec = lab.noise_grid(d["data"], d["losses"], d["noise_rates"], d["seeds"],
                          base=d["base"], parallel=d["parallel"])
    runs = _points(spec)
    assert len(runs) == 12 and spec["parallel"] == d["parallel"]
    assert all(cfg["model"] == "mlp" and cfg["epochs"] == lab_regime.EPOCHS for _, cfg in runs)
    with pytest.raises(ValueError, match="parallel"):
        lab.noise_grid("digits", ["pfml"], [0], [0], parallel=0)


def test_gain_text_states_both_means_and_spreads():
    agg = lab.aggregate(lab.runs_frame(_runs()), ["loss", "noise"])
    text = lab.gain_text(agg, {"pfml": "PFML (potential field)", "proxy_anchor": "Proxy Anchor"})
    pf = agg.set_index(["loss", "noise"]).loc[("pfml", 0.2)]
    assert text.startswith("**Measured PFML − Proxy Anchor (R@1):** 0% noise: ")
    assert f"PFML {100 * pf['R@1 mean']:.1f} ± {100 * pf['R@1 std']:.1f}" in text and "n = 3 / 3" in text
    one = agg.assign(n=1)  # a single seed: no spread shown, not "± 0.0"
    assert "±" not in lab.gain_text(one)
    assert lab.gain_text(agg[agg["loss"] == "pfml"]) == ""


def test_detection_table_names_the_columns():
    rows = [{"id": i, "status": "done", "params": {"loss": loss, "noise": 0.2, "seed": i},
             "metrics": {"R@1": 0.5, "suspect_auroc": 0.9 + 0.01 * i, "cleanlab_auroc": 0.7,
                         "suspect_precision": 0.8, "cleanlab_precision": 0.4}}
            for i, loss in enumerate(["pfml", "pfml", "proxy_anchor"])]
    rows.append({"id": 9, "status": "done", "params": {"loss": "pfml", "noise": 0.0, "seed": 0},
                 "metrics": {"R@1": 0.6}})  # no flips: no detection figures
    agg = lab.aggregate(lab.runs_frame(rows), ["loss", "noise"], lab.REPORTED)
    t = lab_measure.detection_table(agg)
    assert list(t.columns) == ["loss", "noise", "margin AUROC", "cleanlab AUROC", "margin precision",
                               "cleanlab precision", "n"]
    assert list(t["loss"]) == ["pfml", "proxy_anchor"] and list(t["margin AUROC"]) == [0.905, 0.92]
    assert lab_measure.detection_table(agg.iloc[0:0]).empty
