"""pages/noise_lab.py under AppTest: a tiny grid runs in a real background worker and its
results show (R@1 vs noise, memorization curves, suspect labels as captioned images with the
detection figures); the form starts from the default regime; an ETA shows while a grid runs;
bad input is an st.error; only the session that started a grid may Cancel it, which stops its
worker, and Resume queues what is left; a queued grid shows its queue position; grids already
in the lab's storage (a restarted app) are listed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from pfml_core.lab import Lab, launch, regime
from pfml_core.lab import grid as lab
from pfml_core.lab.procs import local_worker_alive, me
from studio import lab_panel
from tests.lab_fakes import EPOCHS, expected_r1
from tests.lab_helpers import arr, traces, wait_for

PAGE = "../../pages/noise_lab.py"


def page(owner: str | None = None) -> AppTest:
    """The page as a session whose owner token is `owner` (a random one when None)."""
    at = AppTest.from_file(PAGE, default_timeout=60)
    if owner is not None:
        at.session_state["lab_owner"] = owner
    return at.run()


def frame_with(at: AppTest, column: str):
    """The first st.dataframe on the page that has `column`."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def chart(at: AppTest, title: str) -> dict:
    """The Plotly figure whose title starts with `title`, as the browser receives it."""
    import json

    for c in at.get("plotly_chart"):
        fig = json.loads(c.proto.spec)
        if fig["layout"].get("title", {}).get("text", "").startswith(title):
            return fig
    raise AssertionError(f"no chart titled {title!r}")


@pytest.mark.slow  # a background worker process
def test_tiny_grid_runs_and_shows_results(runs_dir, fake_trainer):
    at = page()
    assert not at.exception and any(i.value.startswith("No grids yet") for i in at.info)
    at.selectbox(key="noise_data").set_value("digits")
    at.multiselect(key="noise_rates").set_value([0, 20])
    at.text_input(key="noise_seeds").set_value("0,1")
    at.number_input(key="noise_epochs").set_value(1)
    at.number_input(key="noise_batches").set_value(2)
    at.button[0].click().run()
    assert not at.exception and not at.error
    (grid,) = Lab().grids("noise")
    assert grid["owner"] == at.session_state["lab_owner"] and grid["spec"]["space"]["seed"] == [0, 1]
    wait_for(lambda: Lab().grid(grid["id"])["status"] == "done", 150, "grid done")
    at.run()
    runs = Lab().runs(grid["id"])
    assert len(runs) == 8 and {r["status"] for r in runs} == {"done"}
    assert [r["metrics"]["R@1"] for r in runs] == [expected_r1(r["config"]) for r in runs]
    agg = frame_with(at, "R@1 mean").set_index(["loss", "noise"])
    for (loss, noise), row in agg.iterrows():
        mine = [r["metrics"]["R@1"] for r in runs if (r["params"]["loss"], r["params"]["noise"]) == (loss, noise)]
        assert row["R@1 mean"] == pytest.approx(sum(mine) / 2) and row["n"] == 2
    r1 = traces(at.get("plotly_chart")[0].proto.spec)["PFML (potential field)"]
    assert list(arr(r1["x"])) == [0, 20] and "array" in r1["error_y"]  # a spread bar each
    assert at.selectbox(key="noise_grid").value == grid["id"]
    assert any(m.value.startswith("**Measured PFML − Proxy Anchor (R@1):** 0% noise") for m in at.markdown)
    # memorization: the fake's flipped margins are -0.5 + 0.3 * epoch (memorized from epoch 2)
    memo = chart(at, "Memorization at 20% label noise")
    share = [t for t in memo["data"] if t["name"] == "Proxy Anchor" and t["xaxis"] == "x2"][0]
    assert list(arr(share["x"])) == list(range(EPOCHS + 1)) and list(arr(share["y"])) == [0, 0, 1, 1]
    margins = {t["name"]: t for t in chart(at, "Label margin of flipped vs clean")["data"]}
    assert list(arr(margins["pfml: flipped"]["x"])) == list(range(1, EPOCHS + 1))  # trained epochs
    assert arr(margins["pfml: flipped"]["y"])[0] == pytest.approx(-0.2 + 0.001 * 3.5, abs=1e-6)
    # suspects: PFML at 20%, seed 0 first; 8 flipped digits rows, rows 0..7, rank first
    pick = next(s for s in at.selectbox if s.label == "Run")
    assert pick.value.endswith("pfml · 20% noise · seed 0") and len(pick.options) == 8
    assert any(m.value.startswith("**8 labels flipped by the run.** Detection AUROC: margin 1.000")
               for m in at.markdown)
    thumbs = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("suspect_thumbs")
                  or "suspect_thumbs" in (c.proto.id or ""))
    titles = [a["text"] for a in thumbs["layout"]["annotations"]]
    assert len(titles) == 16 and titles[0] == "#0: 1 → 0 · 0.200 · flipped"
    assert sum(t["type"] == "image" for t in thumbs["data"]) == 16
    detect = frame_with(at, "margin AUROC")
    assert list(detect["noise"]) == [0.2, 0.2] and list(detect["margin AUROC"]) == [1.0, 1.0]
    assert list(detect.columns) == ["loss", "noise", "margin AUROC", "cleanlab AUROC",
                                    "margin precision", "cleanlab precision", "n"]


def test_bad_seeds_are_an_error_not_a_traceback(runs_dir):
    at = page()
    at.text_input(key="noise_seeds").set_value("0, one")
    at.button[0].click().run()
    assert not at.exception and "seeds" in at.error[0].value
    at.text_input(key="noise_seeds").set_value("0")
    at.multiselect(key="noise_losses").set_value([])
    at.button[0].click().run()
    assert "losses" in at.error[0].value and Lab().grids() == []


def _by_seed(s: Lab, gid: int) -> dict:
    """{seed: status} of the grid's trials (placeholders of unasked points left out)."""
    return {r["params"].get("seed"): r["status"] for r in s.runs(gid) if r["id"] is not None}


@pytest.fixture
def blocked(runs_dir):
    """blocked(seeds, owner, epochs) -> (lab, grid id) once the grid's real worker (fake
    training, tests.lab_fakes.blocking) finished seed 2 and runs seed 1 until stopped: the
    grid sampler (seed 0) asks seed 2 first. A worker Cancel did not stop is killed after."""
    workers = []

    def start(seeds, owner=None, epochs=1):
        s = Lab()
        gid = s.create_grid("noise", lab.noise_grid("digits", ["pfml"], [0.0], seeds, base={"epochs": epochs}),
                            owner=owner)
        workers.extend(me(pid) for pid in launch.start(s, gid, "tests.lab_fakes:blocking"))
        wait_for(lambda: _by_seed(s, gid) == {2: "done", 1: "running"}, 60, "seed 2 done, seed 1 running")
        return s, gid

    yield start
    for w in workers:
        if local_worker_alive([w]):
            os.killpg(w[1], signal.SIGKILL)


@pytest.mark.slow  # a background worker process
def test_cancel_button_stops_a_running_grid_and_resume_queues_the_rest(blocked, monkeypatch):
    s, gid = blocked([1, 2], owner="mine")
    at = page(owner="mine")
    assert not at.button(key="noise_cancel").disabled
    at.button(key="noise_cancel").click().run()
    assert not at.exception
    assert s.grid(gid)["status"] == "cancelled" and _by_seed(s, gid) == {2: "done", 1: "cancelled"}
    wait_for(lambda: not local_worker_alive(s.grid(gid)["pid"]), 30, "the worker to end")
    started = []  # Resume's worker: this process stands in for it (no training)
    monkeypatch.setattr(launch, "start", lambda lab_, g, train_fn=None: started.append(g)
                        or lab_.set(g, pid=[me()], launched=time.time()))
    at.button(key="noise_resume").click().run()  # a stopped grid offers Resume
    assert not at.exception and started == [gid] and s.grid(gid)["status"] == "running"
    runs = s.runs(gid)  # the cancelled point waits again, as a trial; the finished run is kept
    assert [(r["params"]["seed"], r["id"] is not None) for r in runs if r["status"] == "queued"] == [(1, True)]
    assert [r["params"]["seed"] for r in runs if r["status"] == "done"] == [2]


def _finished_grid(s: Lab, r1: float, r2: float) -> int:
    """A one-run grid whose run finished with these R@1 and R@2 (no curves kept)."""
    spec = lab.noise_grid("digits", ["triplet"], [0.2], [0], base={"epochs": 1})
    gid = s.create_grid("noise", spec)
    study = s.study(gid)  # (the grid's sampler would stop an optimize loop that is not there)
    t = study.ask()
    t.set_user_attr("config", lab.config_for(spec, {k: t.suggest_categorical(k, v) for k, v in spec["space"].items()}))
    t.set_user_attr("metrics", {"R@1": r1, "R@2": r2})
    study.tell(t, r1)
    return gid


def test_restarted_app_lists_stored_grids(runs_dir):
    s = Lab()
    first, gid = _finished_grid(s, 0.5, 0.6), _finished_grid(s, 0.625, 0.75)
    at = page()
    sb = at.selectbox(key="noise_grid")
    assert sb.options[0].startswith(f"#{gid} · digits · triplet · 1 runs") and len(sb.options) == 2
    assert sb.options[1].startswith(f"#{first} · digits · triplet · 1 runs")
    assert f"Grid #{gid}: **done** — 1 done" in at.get("progress")[0].proto.text
    assert frame_with(at, "R@1 mean")["R@1 mean"].tolist() == [0.625]
    assert frame_with(at, "R@2 mean")["R@2 mean"].tolist() == [0.75]
    assert any("Memorization curves appear once" in i.value for i in at.info)


def test_form_starts_from_the_default_regime(runs_dir):
    at = page()
    d = regime.default_grid()
    assert at.number_input(key="noise_epochs").value == regime.EPOCHS
    assert at.selectbox(key="noise_model").value == d["base"]["model"]
    assert at.multiselect(key="noise_rates").value == [round(r * 100) for r in d["noise_rates"]]
    assert at.text_input(key="noise_seeds").value == "0,1,2"
    assert any(d["why"] in i.value for i in at.info)


@pytest.mark.slow  # a background worker process
def test_eta_shows_while_a_grid_runs(blocked):
    s, gid = blocked([0, 1, 2], epochs=4)  # seed 0 waits unasked
    text = page().get("progress")[0].proto.text
    assert f"Grid #{gid}: **running** — 1 done, 1 queued, 1 running · about " in text
    assert text.endswith(" s left")  # the done run's pace: well under a minute
    launch.cancel(gid, s)
    text = page().get("progress")[0].proto.text
    assert f"Grid #{gid}: **cancelled**" in text and " left" not in text


def test_eta_text_by_hand():
    grid = {"status": "running", "spec": {"parallel": 2}}
    runs = [{"status": "done", "config": {"epochs": 10}, "started": 0.0, "finished": 200.0},
            {"status": "queued", "config": {"epochs": 10}, "started": None},
            {"status": "queued", "config": {"epochs": 10}, "started": None}]
    assert lab_panel.eta_text(grid, runs, now=300.0) == " · about 3.3 min left"  # 400 s / 2
    assert lab_panel.eta_text(grid, runs[1:], now=300.0) == " · estimating time left…"
    assert lab_panel.eta_text({**grid, "status": "done"}, runs, now=300.0) == ""


@pytest.fixture
def alices_grid(runs_dir):
    """(lab, grid id, worker): alice's grid of 2 runs, none asked for yet, whose worker (a
    process in its own group, as launch.spawn's) is alive; killed after if Cancel did not."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    s = Lab()
    gid = s.create_grid("noise", lab.noise_grid("digits", ["pfml"], [0.0], [0, 1], base={"epochs": 1}), owner="alice")
    s.set(gid, pid=[me(proc.pid)], launched=time.time())
    yield s, gid, proc
    proc.kill()
    proc.wait(10)


def test_another_sessions_grid_shows_a_disabled_cancel(alices_grid):
    s, gid, live_worker = alices_grid
    at = page(owner="bob")
    cancel = at.button(key="noise_cancel")
    assert cancel.disabled and cancel.help == lab_panel.NOT_YOURS
    assert f"Grid #{gid}: **running** — 2 queued" in at.get("progress")[0].proto.text
    with pytest.raises(PermissionError):  # what the button would do, refused by launch too
        launch.cancel(gid, s, owner="bob")
    assert s.grid(gid)["status"] == "running" and live_worker.poll() is None
    at = page(owner="alice")
    assert not at.button(key="noise_cancel").disabled
    at.button(key="noise_cancel").click().run()
    assert not at.exception and s.grid(gid)["status"] == "cancelled"
    assert live_worker.wait(10) == -signal.SIGTERM  # Cancel stopped the grid's worker


def test_a_queued_grid_shows_its_position(alices_grid, monkeypatch):
    monkeypatch.setenv("PFML_MAX_LAB_WORKERS", "1")
    started = []
    monkeypatch.setattr(launch, "start", lambda lab_, gid, train_fn=None: started.append(gid) or [])
    s, first, live_worker = alices_grid  # holds the one slot
    spec = lab.noise_grid("digits", ["triplet"], [0.0], [0], base={"epochs": 1})
    waiting = [s.create_grid("noise", spec, owner="bob") for _ in range(2)]
    assert [launch.submit(g, s, owner="bob") for g in waiting] == [1, 2]
    at = page(owner="bob")  # the newest grid is picked: second in the queue
    assert not at.exception
    assert f"Grid #{waiting[1]}: **queued (position 2)** — 1 queued" in at.get("progress")[0].proto.text
    assert not at.button(key="noise_cancel").disabled  # bob's own grid, though not started
    at.selectbox(key="noise_grid").set_value(waiting[0]).run()
    assert f"Grid #{waiting[0]}: **queued (position 1)**" in at.get("progress")[0].proto.text
    assert s.grid(first)["status"] == "running" and launch.position(s, waiting[0]) == 1
    assert started == []  # nothing started: the slot is taken
    at.button(key="noise_cancel").click().run()  # bob leaves the queue: the other moves up
    assert s.grid(waiting[0])["status"] == "cancelled" and launch.position(s, waiting[1]) == 1
    assert started == [] and live_worker.poll() is None  # alice's worker runs on


PANEL = """
import pandas as pd
from studio import lab_suspects
lab_suspects.suspects_panel([], grid_detection=pd.DataFrame(
    {"loss": ["pfml"], "noise": [0.2], "margin AUROC": [0.5], "n": [3]}))
"""


@pytest.mark.parametrize("kind", ["run", "folder"])
def test_the_detection_table_belongs_to_the_run_shown(runs_dir, monkeypatch, kind):
    """A grid's detection table shows beside that grid's runs only, never beside a user's
    run folder (it showed the MNIST grid's numbers there)."""
    from studio import lab_suspects

    table = pd.DataFrame({"row": [3, 1], "given_label": ["a", "b"], "suggested_label": ["b", "b"],
                          "score": [0.4, -0.2]})
    monkeypatch.setattr(lab_suspects, "_sources", lambda runs: {"mine": (kind, {})})
    monkeypatch.setattr(lab_suspects, "_load", lambda source: (table, {"cleanlab_issues": 1}, None))
    at = AppTest.from_string(PANEL, default_timeout=30).run()
    assert not at.exception
    assert any(m.value.startswith("True labels unknown") for m in at.markdown)
    shown = [d.value for d in at.dataframe if "margin AUROC" in d.value.columns]
    assert len(shown) == (1 if kind == "run" else 0)
