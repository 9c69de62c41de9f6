"""A sweep's decision: the best setting by mean R@1 over seeds, the settings whose gap to it
lies within the seeds' spread (this grid cannot tell them from the best), and the best as a
ready `python -m pfml_core train ...` command."""
from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd

LOSS_FLAGS = ("alpha", "delta", "delta_rep", "proxies_per_class", "margin")


def train_command(config: dict) -> str:
    """The train command that reproduces a run's config (flags that differ from the defaults)."""
    from pfml_core.training.config import TrainConfig

    default, parts = TrainConfig().to_dict(), ["python", "-m", "pfml_core", "train"]
    flag = lambda k: "--" + k.replace("_", "-")  # noqa: E731
    for key, value in config.items():
        if key == "loss_params":
            parts += [x for k, v in value.items() if k in LOSS_FLAGS for x in (flag(k), str(v))]
            if extra := {k: v for k, v in value.items() if k not in LOSS_FLAGS}:
                parts += ["--loss-params", json.dumps(extra)]
        elif key == "max_batches_per_epoch":
            parts += ["--max-batches", str(value)] if value else []
        elif isinstance(value, bool):
            parts += [flag(key) if value else "--no-" + key.replace("_", "-")] if value != default[key] else []
        elif value is not None and value != default.get(key):
            parts += [flag(key), str(value)]
    return shlex.join(parts)


def settings(runs: list[dict], axes) -> pd.DataFrame:
    """Per setting (the axes that vary, seeds pooled): R@1 mean over its finished runs, its
    spread over seeds (sample std of the per-seed means; NaN for one seed), n seeds, gap to
    the best mean, and `tied`: the gap is within the larger spread of the two (one seed: no
    spread, nothing is tied)."""
    cols = [a for a in axes if a != "seed"]
    done = [r for r in runs if r["id"] is not None and r["status"] == "done" and r["metrics"]]
    rows = [{**{a: r["params"][a] for a in cols if a in r["params"]}, "seed": r["config"].get("seed", 0),
             "R@1": r["metrics"]["R@1"]} for r in done]
    frame = pd.DataFrame(rows)
    cols = [a for a in cols if a in frame]
    if frame.empty or not cols:
        return pd.DataFrame(columns=[*cols, "R@1 mean", "R@1 spread", "n", "gap", "tied", "best"])
    g = frame.groupby([*cols, "seed"])["R@1"].mean().groupby(cols)  # a repeat on one seed is one seed
    out = pd.DataFrame({"R@1 mean": g.mean(), "R@1 spread": g.std(ddof=1), "n": g.size()}).reset_index()
    out = out.sort_values("R@1 mean", ascending=False, kind="stable", ignore_index=True)
    out["gap"] = out.loc[0, "R@1 mean"] - out["R@1 mean"]
    spread = np.fmax(out["R@1 spread"].to_numpy(), out.loc[0, "R@1 spread"])
    out["tied"] = out["gap"].to_numpy() <= np.nan_to_num(spread, nan=-1.0)
    out["best"] = out.index == 0
    return out


def best_setting(runs: list[dict], spec: dict) -> dict:
    """{'setting', 'said', 'command', 'tied'} of the best setting, its command on the lowest
    seed it ran (not the luckiest); ValueError before any run finished."""
    table = settings(runs, list(spec.get("space", {})))
    if table.empty:
        raise ValueError("no run of this grid has finished yet: there is no best setting")
    top = table.iloc[0]
    axes = [c for c in table.columns if c not in ("R@1 mean", "R@1 spread", "n", "gap", "tied", "best")]
    setting = {a: top[a].item() if hasattr(top[a], "item") else top[a] for a in axes}
    done = [r for r in runs if r["status"] == "done" and all(r["params"].get(a) == v for a, v in setting.items())]
    config = min(done, key=lambda r: r["config"].get("seed", 0))["config"]
    spread = "one seed, no spread" if top["n"] < 2 else f"± {100 * top['R@1 spread']:.1f} over {int(top['n'])} seeds"
    ties = int(table["tied"].sum()) - 1
    said = (f"{', '.join(f'{k} {v}' for k, v in setting.items())}: R@1 {100 * top['R@1 mean']:.1f} ({spread})"
            + (f"; {ties} other setting{'s' if ties != 1 else ''} within that spread" if ties > 0 else ""))
    return {"setting": setting, "said": said, "command": train_command(config), "tied": ties}
