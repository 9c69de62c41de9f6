"""pages/sweep.py under AppTest: TPE is the default search; a tiny alpha x delta grid on two
seeds runs in a background worker (fake training, known R@1); the best setting is a train
command the CLI parses, the heatmap shows mean ± spread and marks the settings within the
seeds' spread of the best, Optuna's importance and contour are drawn, the line plots carry
the paper's curve; bad input is an error; a sweep started while the slots are full waits."""
from __future__ import annotations

import json
import shlex
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pfml_core.cli import build_parser
from pfml_core.lab import Lab, launch
from pfml_core.lab import grid as lab_grid
from pfml_core.lab import paper as lab_paper
from pfml_core.lab.procs import me
from tests.lab_fakes import expected_r1
from tests.lab_helpers import arr, traces, wait_for


def page() -> AppTest:
    return AppTest.from_file("../../pages/sweep.py", default_timeout=60).run()


@pytest.fixture
def fake_workers(monkeypatch):
    """Workers the page starts train with tests.lab_fakes.quick (known R@1, no training)."""
    start = launch.start
    monkeypatch.setattr(launch, "start", lambda lab, gid, train_fn=None: start(lab, gid, "tests.lab_fakes:quick"))


def charts(at: AppTest) -> dict:
    """{title: figure JSON} of the page's Plotly charts."""
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"].get("title", {}).get("text", ""): f for f in figs}


def test_tpe_is_the_default_search(runs_dir):
    at = page()
    assert not at.exception and at.radio(key="sweep_mode").value == "tpe"
    assert at.radio(key="sweep_mode").options == ["TPE", "random", "grid"]


@pytest.mark.slow  # a background worker process
def test_tiny_grid_best_command_ties_and_optuna_plots(runs_dir, fake_workers):
    at = page()
    at.selectbox(key="sweep_data").set_value("digits")
    at.radio(key="sweep_mode").set_value("grid")
    at.text_input(key="sweep_alpha").set_value("1,3")
    at.text_input(key="sweep_delta").set_value("0.1,0.2")
    at.text_input(key="sweep_seeds").set_value("0,1")
    at.number_input(key="sweep_epochs").set_value(1)
    at.number_input(key="sweep_batches").set_value(2)
    at.button[0].click().run()
    assert not at.exception and not at.error
    (grid,) = Lab().grids("sweep")
    wait_for(lambda: Lab().grid(grid["id"])["status"] == "done", 150, "sweep done")
    at.run()
    assert not at.exception
    runs = Lab().runs(grid["id"])
    assert len(runs) == 8 and [r["metrics"]["R@1"] for r in runs] == [expected_r1(r["config"]) for r in runs]

    (code,) = at.code  # alpha 3 is best (R@1 + 0.001 per unit of alpha); delta has no effect
    args = build_parser().parse_args(shlex.split(code.value)[3:])
    assert args.command == "train" and args.alpha == 3.0 and args.epochs == 1 and args.max_batches == 2
    assert args.delta in (0.1, 0.2) and args.delta_rep == args.delta and args.proxies_per_class == 5
    said = next(m.value.replace("\\", "").replace("\u200b", "") for m in at.markdown if m.value.startswith("**Best:**"))
    assert f"alpha 3.0, delta {args.delta}, delta_gap 0.0, proxies_per_class 5: R@1 50.8 (± 0.7 over 2 seeds)" in said

    figs = charts(at)
    title = "R@1 (%): delta (attraction radius) by alpha (decay exponent)"
    heat = traces(figs[title])["mean R@1"]
    want = {(a, d): np.mean([r["metrics"]["R@1"] for r in runs if r["params"]["alpha"] == a
                             and r["params"]["delta"] == d]) for a in (1.0, 3.0) for d in (0.1, 0.2)}
    assert np.allclose(arr(heat["z"]), [[100 * want[1.0, 0.1], 100 * want[3.0, 0.1]],
                                        [100 * want[1.0, 0.2], 100 * want[3.0, 0.2]]])
    (box,) = figs[title]["layout"]["shapes"]  # alpha 3 outlined; its deltas tie exactly, so
    assert (box["x0"], box["x1"]) == (0.5, 1.5)  # which one is best is pandas' pick
    top = (0.1, 0.2)[round(box["y0"] + 0.5)]
    # seeds 0 and 1 differ by 0.01, alpha 1 and 3 by 0.002: every other setting is tied
    mark = lambda a, d: "best" if (a, d) == (3.0, top) else "≈ best"  # noqa: E731
    assert heat["text"] == [[f"{100 * want[a, d]:.1f} ± 0.7<br>{mark(a, d)}" for a in (1.0, 3.0)]
                            for d in (0.1, 0.2)]
    assert any("cannot tell it from the best (3 settings)" in c.value for c in at.caption)

    (bar,) = figs["Parameter importance (fANOVA, finished trials)"]["data"]
    assert sorted(bar["y"]) == ["alpha", "delta", "seed"]  # the seed's share is the noise
    contour = next(t for t in figs["R@1 contour: delta (attraction radius) by alpha (decay exponent) "
                                   "(finished trials)"]["data"] if t["type"] == "contour")
    assert np.isfinite(arr(contour["z"]).astype(float)).any()

    alpha_line = next(f for f in figs.values() if "paper Cars R@1 (%)" in traces(f) and
                      list(arr(traces(f)["paper Cars R@1 (%)"]["x"])) == lab_paper.ABLATIONS["alpha"][0])
    assert np.allclose(arr(traces(alpha_line)["measured R@1"]["y"]),
                       [np.mean([want[a, d] for d in (0.1, 0.2)]) for a in (1.0, 3.0)])
    assert "status" in at.dataframe[-1].value and set(at.dataframe[-1].value["status"]) == {"done"}


def test_bad_axis_values_are_errors(runs_dir):
    at = page()
    at.text_input(key="sweep_alpha").set_value("1,x")
    at.button[0].click().run()
    assert not at.exception and "alpha" in at.error[0].value
    at.text_input(key="sweep_alpha").set_value("0")
    at.button[0].click().run()
    assert "alpha" in at.error[0].value and Lab().grids() == []


def test_run_sweep_queues_behind_a_running_grid(runs_dir, monkeypatch):
    """Cap 1 and a grid running: the new sweep waits (position 1), no second worker starts."""
    monkeypatch.setenv("PFML_MAX_LAB_WORKERS", "1")
    started = []
    monkeypatch.setattr(launch, "start", lambda *a, **k: started.append(a) or [])
    lab = Lab()
    busy = lab.create_grid("noise", lab_grid.noise_grid("digits", ["pfml"], [0.0], [0], base={"epochs": 1}),
                           owner="someone")
    lab.set(busy, pid=[me()], launched=time.time())  # this process passes for its worker
    at = page()
    at.selectbox(key="sweep_data").set_value("digits")
    at.button[0].click().run()
    assert not at.exception and not at.error and started == []
    (grid,) = Lab().grids("sweep")
    assert grid["status"] == "queued" and launch.position(Lab(), grid["id"]) == 1
    assert f"Grid #{grid['id']}: **queued (position 1)**" in at.get("progress")[0].proto.text
    assert grid["owner"] == at.session_state["lab_owner"]
    assert not at.button(key="sweep_cancel").disabled
