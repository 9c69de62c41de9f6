"""Grids of an earlier version, kept in runs_dir()/lab.sqlite (tables grids, runs and
run_samples), copied once into Optuna studies: each run a trial with its params, config,
metrics, R@1 curve and suspects; unfinished runs as failed trials, so Resume runs them. The
old file is read, never changed; a grid already copied is skipped."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from pfml_core.lab import artifacts
from pfml_core.training.run_folder import runs_dir

STATES = {"done": TrialState.COMPLETE}


def old_path() -> Path:
    return runs_dir() / "lab.sqlite"


def _read(path: Path) -> tuple[list, list, dict]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name='grids'").fetchone():
            return [], [], {}
        grids = [dict(r) for r in conn.execute("SELECT * FROM grids ORDER BY id")]
        runs = [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY grid_id, idx")]
        samples = {r[0]: r[1] for r in conn.execute("SELECT run_id, data FROM run_samples")}
    finally:
        conn.close()
    return grids, runs, samples


def _spec(kind: str, old: dict, runs: list[dict]) -> dict:
    space = ({"loss": old["losses"], "noise": old["noise_rates"], "seed": old["seeds"]} if kind == "noise"
             else {**old["axes"], **({"seed": old["seeds"]} if old.get("mode") == "grid" else {})})
    return {"kind": kind, "data": old["data"], "mode": old.get("mode", "grid"), "base": old.get("base", {}),
            "loss_params": old.get("loss_params", {}), "space": space, "seed": old["seeds"][0],
            "noise": old.get("noise", 0.0), "n_trials": len(runs), "parallel": old.get("parallel", 1),
            "config": json.loads(runs[0]["config"]) if runs else {}}


def _trial(run: dict, values: dict) -> optuna.trial.FrozenTrial:
    params, metrics = json.loads(run["params"]), json.loads(run["metrics"]) if run["metrics"] else None
    curve = (metrics or {}).get("R@1 curve", [])
    error = run["error"] or ("" if run["status"] == "done" else f"{run['status']} when migrated")
    return optuna.trial.create_trial(  # running until its suspects are attached, then finished
        state=TrialState.RUNNING, params=params,
        distributions={k: CategoricalDistribution(values[k]) for k in params},
        intermediate_values={e: v for e, v in enumerate(curve) if e > 0 and v == v},
        user_attrs={"config": json.loads(run["config"]), "metrics": metrics, "error": error or None})


def pending(path: Path, lab) -> int:
    """Grids in the old file not yet copied into this storage."""
    if not path.is_file():
        return 0
    try:
        grids = _read(path)[0]
    except sqlite3.DatabaseError:  # not a store of ours (damaged, or another file): nothing to offer
        return 0
    done = {s.user_attrs.get("migrated_from") for s in lab.storage.get_all_studies()}
    return sum(f"{path.resolve()}#{g['id']}" not in done for g in grids)


def migrate(path: Path, lab) -> dict:
    """Copy every grid of the old file not copied yet; counts of grids, runs and skipped."""
    if not path.is_file():
        raise ValueError(f"no earlier lab store at {path.name}")
    grids, runs, samples = _read(path)
    done = {s.user_attrs.get("migrated_from") for s in lab.storage.get_all_studies()}
    n = {"grids": 0, "runs": 0, "skipped": 0}
    for g in grids:
        key = f"{path.resolve()}#{g['id']}"
        if key in done:
            n["skipped"] += 1
            continue
        mine = [r for r in runs if r["grid_id"] == g["id"]]
        gid = lab.create_grid(g["kind"], _spec(g["kind"], json.loads(g["spec"]), mine))
        lab.set(gid, migrated_from=key, created=g["created"], launched=g["created"])
        values: dict[str, list] = {}
        for r in mine:
            for k, v in json.loads(r["params"]).items():
                if v not in values.setdefault(k, []):
                    values[k].append(v)
        for r in mine:
            tid = lab.storage.create_new_trial(gid, template_trial=_trial(r, values))
            if r["id"] in samples:
                artifacts.write_table(lab.artifacts, lab.storage.get_trial(tid), json.loads(samples[r["id"]]),
                                      lab.storage)
            done = r["status"] == "done"
            lab.storage.set_trial_state_values(tid, STATES.get(r["status"], TrialState.FAIL),
                                               [json.loads(r["metrics"])["R@1"]] if done else None)
        n["grids"], n["runs"] = n["grids"] + 1, n["runs"] + len(mine)
    return n
