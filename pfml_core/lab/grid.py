"""Label-noise lab and hyperparameter sweeps as data: a grid spec expands to (params,
TrainConfig dict) pairs; finished runs flatten to a frame and aggregate over seeds."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from pfml_core import guards

MAX_RUNS = 500  # one grid; beyond this a sweep is a mistake in the widgets, not a plan
NOISE_AXES = ("loss", "noise")
SWEEP_AXES = ("alpha", "delta", "delta_gap", "proxies_per_class")
REPORTED = ("R@1", "R@2", "R@4", "MAP@R", "flip_d_labelled", "flip_d_true", "flip_ratio",
            "flip_closer_true", "W2", "seconds", "margin_flipped", "margin_clean", "memorized",
            "suspect_auroc", "suspect_precision", "cleanlab_auroc", "cleanlab_precision")


def _nonempty(name: str, values) -> list:
    values = list(values)
    if not values:
        raise ValueError(f"{name} must list at least one value, got {values!r}")
    return values


def _seeds(seeds) -> list[int]:
    return [guards.check_int("seeds", int(s) if isinstance(s, (float, str)) else s, 0, 2**32 - 1)
            for s in _nonempty("seeds", seeds)]


def _check_size(n: int) -> None:
    if n > MAX_RUNS:
        raise ValueError(f"the grid has {n} runs; at most {MAX_RUNS} are allowed per grid")


def check_data(data: str) -> str:
    """A bundled dataset name or an existing path (checked before a whole grid is queued)."""
    from pfml_core.data.bundled import BUNDLED

    if data not in BUNDLED and not Path(str(data)).expanduser().exists():
        raise ValueError(f"data must be one of {sorted(BUNDLED)} or an existing path, got {data!r}")
    return data


def _config(data: str, base: dict | None, **fields) -> dict:
    """A validated TrainConfig dict."""
    cfg = {"data": data, **(base or {}), **fields}
    from pfml_core.training.config import TrainConfig

    tc = TrainConfig.from_dict(cfg)
    tc.validate()
    return tc.to_dict()


def loss_names() -> list[str]:
    from pfml_core.training.losses import LOSSES
    return list(LOSSES)


def noise_grid(data: str, losses, noise_rates, seeds, base: dict | None = None,
               loss_params: dict | None = None, parallel: int = 1) -> dict:
    """losses x noise rates x seeds as a grid spec (rates are fractions in [0, 1)); every
    point's TrainConfig is checked now. parallel: worker processes the grid gets."""
    check_data(data)
    losses = _nonempty("losses", losses)
    rates = [guards.check_range("noise_rates", r, 0.0, 0.95) for r in _nonempty("noise_rates", noise_rates)]
    seeds, loss_params = _seeds(seeds), loss_params or {}
    known = loss_names()
    for loss in losses:
        guards.check_choice("losses", loss, known)
    _check_size(len(losses) * len(rates) * len(seeds))
    spec = {"kind": "noise", "data": data, "mode": "grid", "base": base or {}, "loss_params": loss_params,
            "space": {"loss": losses, "noise": rates, "seed": seeds},
            "parallel": guards.check_int("parallel", parallel, 1, 16)}
    return _checked(spec)


def sweep_grid(data: str, alpha, delta, delta_gap=(0.0,), proxies_per_class=(5,), seeds=(0,),
               mode: str = "tpe", n_trials: int = 10, noise: float = 0.0,
               base: dict | None = None, parallel: int = 1) -> dict:
    """PFML over alpha x delta x (delta_rep - delta) x proxies per class as a spec: every
    point x seed (grid), or n_trials points drawn from the listed values by random search
    or TPE (with a median pruner on per-epoch R@1), on the first seed."""
    check_data(data)
    guards.check_choice("mode", mode, ("grid", "random", "tpe"))
    space = {"alpha": [guards.check_positive("alpha", a) for a in _nonempty("alpha", alpha)],
             "delta": [guards.check_positive("delta", d) for d in _nonempty("delta", delta)],
             "delta_gap": [guards.check_range("delta_gap", g, 0.0, 2.0) for g in _nonempty("delta_gap", delta_gap)],
             "proxies_per_class": [guards.check_int("proxies_per_class", int(m), 0, 100)
                                   for m in _nonempty("proxies_per_class", proxies_per_class)]}
    seeds = _seeds(seeds)
    if mode == "grid":
        space["seed"] = seeds
    spec = {"kind": "sweep", "data": data, "mode": mode, "base": base or {}, "space": space,
            "seed": seeds[0], "noise": guards.check_range("noise", noise, 0.0, 0.95),
            "n_trials": guards.check_int("n_trials", n_trials, 1, MAX_RUNS),
            "parallel": guards.check_int("parallel", parallel, 1, 16)}
    _check_size(size(spec))
    return _checked(spec)


def size(spec: dict) -> int:
    """Runs the grid asks for: every point of its space (grid), else n_trials."""
    if spec.get("mode", "grid") == "grid":
        return int(np.prod([len(v) for v in spec["space"].values()]))
    return int(spec["n_trials"])


def config_for(spec: dict, params: dict) -> dict:
    """The TrainConfig dict of one point of the grid (a trial's params)."""
    if spec["kind"] == "noise":
        loss = params["loss"]
        return _config(spec["data"], spec["base"], loss=loss, noise=params["noise"], seed=params["seed"],
                       loss_params=dict(spec.get("loss_params", {}).get(loss, {})))
    lp = {"alpha": params["alpha"], "delta": params["delta"],
          "delta_rep": round(params["delta"] + params["delta_gap"], 6),
          "proxies_per_class": params["proxies_per_class"]}
    return _config(spec["data"], spec["base"], loss="pfml", noise=spec["noise"],
                   seed=params.get("seed", spec.get("seed", 0)), loss_params=lp)


def _checked(spec: dict) -> dict:
    """The spec with the first point's config (what the budget and the pages read), after
    every point's TrainConfig was checked (a bad value is refused before anything runs)."""
    points = [dict(zip(spec["space"], combo)) for combo in itertools.product(*spec["space"].values())]
    configs = [config_for(spec, {"seed": spec.get("seed", 0), **p}) for p in points[:MAX_RUNS]]
    return {**spec, "config": configs[0]}


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """One row per run: id, status, its grid params, scalar metrics, error."""
    rows = []
    for r in runs:
        metrics = {k: v for k, v in (r.get("metrics") or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        rows.append({"run": r["id"], "status": r["status"], **r["params"], **metrics,
                     "error": r.get("error") or ""})
    return pd.DataFrame(rows)


def aggregate(frame: pd.DataFrame, by, metrics=("R@1", "R@2")) -> pd.DataFrame:
    """Mean, sample std (0 for a single seed) and count of each metric over the finished runs
    of each `by` group (that is, over seeds)."""
    by = list(by)
    if frame.empty or "status" not in frame:
        return pd.DataFrame(columns=by + ["n"])
    done = frame[frame["status"] == "done"]
    metrics = [m for m in metrics if m in done.columns]
    if done.empty or not metrics:
        return pd.DataFrame(columns=by + ["n"])
    g = done.groupby(by, dropna=False)[metrics]
    out = g.mean().add_suffix(" mean").join(g.std(ddof=1).fillna(0.0).add_suffix(" std"))
    out["n"] = g.size()
    return out.reset_index()


def grid_frame(store, grid_id: int) -> pd.DataFrame:
    """The runs of one stored grid as a frame (what the pages show and CSV export writes)."""
    return runs_frame([r for r in store.runs(grid_id) if r["id"] is not None])


def export_csv(store, grid_id: int, path) -> int:
    """Write one row per run of the grid to `path`; returns the number of rows."""
    frame = grid_frame(store, grid_id)
    frame.to_csv(path, index=False)
    return len(frame)


def gain(agg: pd.DataFrame, method: str = "pfml", over: str = "proxy_anchor",
         metric: str = "R@1") -> pd.DataFrame:
    """Measured mean `metric` of `method` minus that of `over`, per noise rate (the paper's
    claim at 20% noise: +6.0 CUB / +7.6 Cars R@1 points for PFML over Proxy Anchor)."""
    col = f"{metric} mean"
    if agg.empty or col not in agg:
        return pd.DataFrame(columns=["noise", "gain"])
    wide = agg.pivot_table(index="noise", columns="loss", values=col)
    if method not in wide or over not in wide:
        return pd.DataFrame(columns=["noise", "gain"])
    return (wide[method] - wide[over]).rename("gain").reset_index().dropna()


def parse_list(name: str, text: str, cast=float) -> list:
    """'0, 1,2' -> [0, 1, 2]; ValueError naming the field on anything else."""
    try:
        values = [cast(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{name} must list at least one value, got {text!r}")
    return values



def in_points(mean: float, std: float, n: int) -> str:
    """A recall (0-1) in points as the paper reports it: '91.2 ± 0.8'; one seed, no spread."""
    return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if n > 1 else "")


def gain_text(agg: pd.DataFrame, labels: dict | None = None, method: str = "pfml",
              over: str = "proxy_anchor", metric: str = "R@1") -> str:
    """'**Measured PFML − Proxy Anchor (R@1):** 20% noise: +23.7 points (PFML 85.2 ± 0.7,
    Proxy Anchor 61.5 ± 3.5, n = 3 / 3)' per noise rate, in points as the paper reports
    them (a single seed has no spread); '' without both losses."""
    g = gain(agg, method, over, metric)
    if g.empty:
        return ""
    names = {k: (labels or {}).get(k, k).split(" (")[0] for k in (method, over)}
    rows = agg.set_index(["loss", "noise"])
    pts = lambda r: in_points(r[f"{metric} mean"], r[f"{metric} std"], r["n"])  # noqa: E731
    parts = []
    for noise, diff in zip(g["noise"], g["gain"]):
        a, b = rows.loc[(method, noise)], rows.loc[(over, noise)]
        parts.append(f"{noise:.0%} noise: {100 * diff:+.1f} points ({names[method]} {pts(a)}, "
                     f"{names[over]} {pts(b)}, n = {int(a['n'])} / {int(b['n'])})")
    return f"**Measured {names[method]} − {names[over]} ({metric}):** " + "; ".join(parts)
