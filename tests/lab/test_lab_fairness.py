"""Fair lab queues: a visitor's grids together stay within a budget of runs x epochs
(PFML_MAX_LAB_RUN_EPOCHS) and a grid over it is refused with the numbers; the owner keeps
Cancel after a reload (the token rides in the URL); the operator cancels any grid with
`python -m pfml_core lab-cancel GRID`."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from pfml_core import cli
from pfml_core.lab import budget, launch, regime, worker
from pfml_core.lab import grid as lab
from pfml_core.lab.procs import local_worker_alive
from pfml_core.lab.studies import Lab
from tests.lab_helpers import wait_for


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv(budget.ENV, raising=False)
    monkeypatch.delenv("PFML_MAX_LAB_WORKERS", raising=False)
    return tmp_path


@pytest.fixture
def store(runs_dir):
    return Lab()


def spec(n: int, epochs: int, seed0: int = 0) -> dict:
    return lab.noise_grid("digits", ["pfml"], [0.0], list(range(seed0, seed0 + n)), base={"epochs": epochs})


def test_a_grid_over_the_budget_is_refused_with_the_numbers(store):
    with pytest.raises(budget.OverBudget) as e:
        store.create_grid("noise", spec(500, 500), owner="alice")
    assert str(e.value) == ("this grid is 500 runs x 500 epochs = 250,000 run-epochs; a visitor "
                            "may queue 2,000 (PFML_MAX_LAB_RUN_EPOCHS)")
    assert store.grids() == []  # nothing stored
    assert store.create_grid("noise", spec(500, 500))  # the operator's CLI: no owner, no budget


def test_a_visitors_grids_share_one_budget(store, monkeypatch):
    monkeypatch.setenv(budget.ENV, "100")
    first = store.create_grid("noise", spec(6, 10), owner="alice")  # 60
    with pytest.raises(budget.OverBudget, match=r"^this grid is 5 runs x 10 epochs = 50 "
                       r"run-epochs, and your grids still queued or running hold 60 more; a "
                       r"visitor may queue 100 \(PFML_MAX_LAB_RUN_EPOCHS\): wait"):
        store.create_grid("noise", spec(5, 10, 10), owner="alice")
    store.create_grid("noise", spec(5, 10, 10), owner="bob")  # another visitor's own share
    store.set(first, pid=[launch.me()], launched=time.time())  # a live worker (this process) runs it
    study = store.study(first, worker.sampler(store.grid(first)["spec"]))
    for _ in range(2):  # two finished runs free their epochs
        t = study.ask()
        t.suggest_categorical("loss", ["pfml"]), t.suggest_categorical("noise", [0.0])
        t.suggest_categorical("seed", list(range(6)))
        study.tell(t, 0.5)
    assert store.held("alice") == 4 * 10
    store.create_grid("noise", spec(5, 10, 10), owner="alice")  # 40 + 50 <= 100
    with pytest.raises(budget.OverBudget):
        store.create_grid("noise", spec(1, 20, 20), owner="alice")
    launch.cancel(first, store, owner="alice")  # cancelled runs hold nothing
    store.create_grid("noise", spec(1, 10, 20), owner="alice")


def test_resuming_counts_against_the_resumers_budget(store, monkeypatch):
    monkeypatch.setenv(budget.ENV, "100")
    gid = store.create_grid("noise", spec(8, 10), owner="alice")
    store.set(gid, launched=time.time())  # its worker started and died before any run
    store.create_grid("noise", spec(3, 10, 10), owner="bob")  # bob holds 30
    assert store.grid(gid)["status"] == "failed"
    with pytest.raises(budget.OverBudget, match="this grid is 8 runs x 10 epochs = 80"):
        launch.reopen(gid, store, owner="bob")
    assert launch.reopen(gid, store, owner="alice") == 8


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_the_default_grids_fit_the_default_budget(device, monkeypatch):
    monkeypatch.delenv(budget.ENV, raising=False)
    r = regime.REGIMES[device]
    noise = len(regime.LOSSES) * len(r["noise_rates"]) * len(regime.SEEDS) * r["base"]["epochs"]
    sweep = 8 * 3  # pages/sweep.py: 8 TPE trials x 3 epochs
    assert noise + sweep <= budget.limit() == budget.DEFAULT


@pytest.mark.parametrize("bad", ["0", "-5", "lots", "1.5"])
def test_a_bad_budget_setting_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv(budget.ENV, bad)
    with pytest.raises(ValueError, match="PFML_MAX_LAB_RUN_EPOCHS must be a whole number"):
        budget.limit()


def _sweep_page(**query) -> AppTest:
    at = AppTest.from_file("../../pages/sweep.py", default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def test_the_owner_keeps_cancel_after_a_reload(runs_dir, monkeypatch):
    """A sweep queued behind a busy slot; the same browser reloads (its URL carries ?lab=...):
    Cancel is still its own. Another visitor, or a forged token, sees Cancel disabled."""
    monkeypatch.setenv("PFML_MAX_LAB_WORKERS", "1")
    monkeypatch.setattr(launch, "start", lambda *a, **k: [])  # no worker process
    s = Lab()
    busy = s.create_grid("noise", spec(1, 1), owner="someone")
    s.set(busy, pid=[launch.me()], launched=time.time())  # this process: a live worker
    at = _sweep_page()
    at.selectbox(key="sweep_data").set_value("digits")
    at.button[0].click().run()
    (grid,) = Lab().grids("sweep")
    token = at.query_params["lab"]
    assert grid["status"] == "queued" and grid["owner"] == token
    assert not at.button(key="sweep_cancel").disabled
    for other in (_sweep_page(), _sweep_page(lab="not-a-token"), _sweep_page(lab="0" * 32)):
        assert other.button(key="sweep_cancel").disabled  # the newest grid: the queued sweep
        assert other.query_params["lab"] not in (token, "not-a-token")
    reloaded = _sweep_page(lab=token)  # F5: a new session, the same URL
    assert not reloaded.exception and not reloaded.button(key="sweep_cancel").disabled
    reloaded.button(key="sweep_cancel").click().run()
    assert Lab().grid(grid["id"])["status"] == "cancelled"


def test_the_operator_cancels_any_grid_from_the_cli(store, capsys, monkeypatch):
    monkeypatch.setattr(launch, "start", lambda *a, **k: [])
    busy = store.create_grid("noise", spec(1, 1))
    store.set(busy, pid=[launch.me()], launched=time.time())
    gid = store.create_grid("noise", spec(3, 1), owner="alice")
    launch.submit(gid, store, owner="alice")
    assert cli.main(["lab-cancel", str(gid), "--storage", store.url]) == 0
    assert capsys.readouterr().out.strip() == f"grid {gid}: cancelled (3 unfinished runs stopped)"
    assert store.grid(gid)["status"] == "cancelled"
    for argv, said in (([str(gid)], f"grid {gid} is cancelled: nothing to cancel"),
                       (["999"], "grid '999' is not in the lab's storage")):
        assert cli.main(["lab-cancel", *argv, "--storage", store.url]) == 2
        assert capsys.readouterr().err == f"error: {said}\n"


@pytest.mark.slow  # a real worker process
def test_lab_cancel_stops_a_running_worker(store, capsys):
    gid = store.create_grid("noise", spec(3, 1), owner="alice")
    launch.start(store, gid, "tests.lab_fakes:blocking")  # seed 1 runs until stopped
    wait_for(lambda: any(r["status"] == "running" and r["params"].get("seed") == 1
                         for r in store.runs(gid) if r["id"]), 120, "the blocking run")
    assert cli.main(["lab-cancel", str(gid), "--storage", store.url]) == 0
    wait_for(lambda: not local_worker_alive(store.grid(gid)["pid"]), 60, "the worker to end")
    assert store.grid(gid)["status"] == "cancelled"
    assert sorted(r["status"] for r in store.runs(gid)) in (["cancelled", "done"], ["cancelled", "done", "done"])
