"""pages/noise_lab.py under AppTest: a tiny grid runs in a real background worker and its
results show in the table and figures (R@1 vs noise, memorization curves, suspect labels as
captioned images with the detection figures); the form starts from the default regime; an
ETA shows while a grid runs; bad input is an st.error; Cancel stops a grid, and only the
session that started it sees Cancel enabled; a queued grid shows its queue position; grids
already in the store (a restarted app) are listed."""
from __future__ import annotations

import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from pfml_core.lab import grid as lab
from pfml_core.lab import regime, worker
from pfml_core.lab.store import Store
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
    (grid,) = Store().grids("noise")
    wait_for(lambda: Store().grid(grid["id"])["status"] == "done", 150, "grid done")
    at.run()
    runs = Store().runs(grid["id"])
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
    captions = [c for e in at.get("image") for c in e.captions]
    assert len(captions) == 16 and captions[0] == "#0: 1 → 0 · 0.200 · flipped"
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
    assert "losses" in at.error[0].value and Store().grids() == []


@pytest.mark.slow  # a background worker process
def test_cancel_button_stops_a_running_grid(runs_dir):
    s = Store()
    spec, runs = lab.noise_grid("digits", ["pfml"], [0.0], [1, 2], base={"epochs": 1})
    gid = s.create_grid("noise", spec, runs, owner="mine")
    worker.start(gid, s, "tests.lab_fakes:blocking")  # seed 1 blocks until cancelled
    wait_for(lambda: s.runs(gid)[0]["status"] == "running", 60, "run started")
    at = page(owner="mine")
    assert not at.button(key="noise_cancel").disabled
    at.button(key="noise_cancel").click().run()
    assert not at.exception
    assert s.grid(gid)["status"] == "cancelled"
    assert [r["status"] for r in s.runs(gid)] == ["cancelled", "cancelled"]
    assert at.button(key="noise_resume")  # a stopped grid offers Resume


def test_restarted_app_lists_stored_grids(runs_dir):
    s = Store()
    for _ in range(2):
        spec, runs = lab.noise_grid("digits", ["triplet"], [0.2], [0], base={"epochs": 1})
        gid = s.create_grid("noise", spec, runs)
        r = s.claim_next(gid, 1)
        s.end_run(r["id"], "done", {"R@1": 0.625, "R@2": 0.75})
        s.finalize_grid(gid)
    at = page()
    sb = at.selectbox(key="noise_grid")
    assert sb.options[0].startswith(f"#{gid} · digits · triplet · 1 runs") and len(sb.options) == 2
    assert f"Grid #{gid}: **done**" in at.get("progress")[0].proto.text
    assert frame_with(at, "R@1 mean")["R@1 mean"].tolist() == [0.625]
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
def test_eta_shows_while_a_grid_runs(runs_dir):
    s = Store()
    spec, runs = lab.noise_grid("digits", ["pfml"], [0.0], [0, 1, 2], base={"epochs": 4})
    gid = s.create_grid("noise", spec, runs)
    worker.start(gid, s, "tests.lab_fakes:blocking")  # seed 0 done, seed 1 at epoch 1, blocking
    wait_for(lambda: s.runs(gid)[1]["progress"] == 1, 60, "one epoch reported")
    at = page()
    text = at.get("progress")[0].proto.text
    assert "1 done" in text and " left" in text
    worker.cancel(gid, s)
    assert " left" not in page().get("progress")[0].proto.text


def test_eta_text_by_hand():
    grid = {"status": "running", "spec": {"parallel": 2}}
    runs = [{"status": "done", "config": {"epochs": 10}, "started": 0.0, "finished": 200.0},
            {"status": "queued", "config": {"epochs": 10}, "started": None},
            {"status": "queued", "config": {"epochs": 10}, "started": None}]
    assert lab_panel.eta_text(grid, runs, now=300.0) == " · about 3.3 min left"  # 400 s / 2
    assert lab_panel.eta_text(grid, runs[1:], now=300.0) == " · estimating time left…"
    assert lab_panel.eta_text({**grid, "status": "done"}, runs, now=300.0) == ""


def _running_grid(s: Store, owner: str) -> int:
    """A grid whose worker is alive (a fresh heartbeat; its pid is nobody's to kill)."""
    spec, runs = lab.noise_grid("digits", ["pfml"], [0.0], [0, 1], base={"epochs": 1})
    gid = s.create_grid("noise", spec, runs, owner=owner)
    assert s.mark_running(gid, 2**22 + 7)  # above any pid this machine hands out
    s._conn.execute("UPDATE grids SET heartbeat=? WHERE id=?", (time.time() + 3600, gid))
    return gid  # alive for the whole test, however slow the machine


def test_another_sessions_grid_shows_a_disabled_cancel(runs_dir):
    s = Store()
    gid = _running_grid(s, owner="alice")
    at = page(owner="bob")
    cancel = at.button(key="noise_cancel")
    assert cancel.disabled and cancel.help == lab_panel.NOT_YOURS
    assert f"Grid #{gid}: **running**" in at.get("progress")[0].proto.text
    with pytest.raises(PermissionError):  # what the button would do, refused in the store too
        worker.cancel(gid, s, owner="bob")
    assert s.grid(gid)["status"] == "running"
    at = page(owner="alice")
    assert not at.button(key="noise_cancel").disabled
    at.button(key="noise_cancel").click().run()
    assert not at.exception and s.grid(gid)["status"] == "cancelled"


def test_a_queued_grid_shows_its_position(runs_dir, monkeypatch):
    monkeypatch.setenv("PFML_MAX_LAB_WORKERS", "1")
    s = Store()
    first = _running_grid(s, owner="alice")  # holds the one slot
    waiting = []
    for _ in range(2):
        spec, runs = lab.noise_grid("digits", ["triplet"], [0.0], [0], base={"epochs": 1})
        waiting.append(s.create_grid("noise", spec, runs, owner="bob"))
        s.submit(waiting[-1])
    at = page(owner="bob")  # the newest grid is picked: second in the queue
    assert not at.exception
    assert f"Grid #{waiting[1]}: **queued (position 2)** — 1 queued" in at.get("progress")[0].proto.text
    assert not at.button(key="noise_cancel").disabled  # bob's own grid, though not started
    at.selectbox(key="noise_grid").set_value(waiting[0]).run()
    assert f"Grid #{waiting[0]}: **queued (position 1)**" in at.get("progress")[0].proto.text
    assert s.grid(first)["status"] == "running" and s.position(waiting[0]) == 1  # nothing started
    at.button(key="noise_cancel").click().run()  # bob leaves the queue: the other moves up
    assert s.grid(waiting[0])["status"] == "cancelled" and s.position(waiting[1]) == 1


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
