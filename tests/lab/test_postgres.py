"""Workers on two "machines" (separate processes with separate runs folders, sharing only a
real PostgreSQL server) train one grid; the app, on a third runs folder, shows every trial,
its curves and its suspect labels, all read from the database."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pfml_core.lab import grid
from pfml_core.lab.studies import Lab
from tests import postgres
from tests.conftest import free_port
from tests.lab_fakes import EPOCHS, N_ROWS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg_url():
    if postgres.bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    with postgres.server(free_port()) as url:
        yield url


@pytest.mark.slow
def test_two_machines_share_a_grid_through_postgres_and_the_app_shows_all(pg_url, tmp_path, monkeypatch):
    lab = Lab(pg_url)
    spec = grid.noise_grid("digits", ["pfml", "proxy_anchor"], [0.0, 0.25], [0, 1], base={"epochs": EPOCHS})
    gid = lab.create_grid("noise", spec)
    name = lab.grid(gid)["name"]
    procs = []
    for machine in ("a", "b"):
        env = dict(os.environ, PFML_RUNS_DIR=str(tmp_path / machine))
        procs.append(subprocess.Popen([sys.executable, "-m", "pfml_core", "lab-worker", "--study", name,
                                       "--storage", pg_url, "--train-fn", "tests.lab_fakes:slow"],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for p in procs:
        assert p.wait(180) == 0, p.stdout.read().decode()[-2000:]
    runs = lab.runs(gid)
    assert len(runs) == 8 and {r["status"] for r in runs} == {"done"}
    assert len({r["worker"] for r in runs}) == 2  # both machines trained
    assert not any((tmp_path / m / "studies.sqlite").exists() for m in ("a", "b"))
    # the app: its own runs folder, the shared storage only
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path / "app"))
    monkeypatch.setenv("PFML_LAB_STORAGE", pg_url)
    at = AppTest.from_file("../../pages/noise_lab.py", default_timeout=60).run()
    assert not at.exception and at.selectbox(key="noise_grid").value == gid
    table = next(d.value for d in at.dataframe if "R@1" in d.value.columns and "seed" in d.value.columns)
    assert len(table) == 8 and table["R@1"].tolist() == pytest.approx([0.02 * EPOCHS] * 8)  # fakes.paced
    memo = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "memorized" in c.proto.spec.lower())
    assert {t["name"] for t in memo["data"]} >= {"PFML (potential field)", "Proxy Anchor"}
    picks = next(s for s in at.selectbox if s.key and s.key.startswith("noise_suspect_run_"))
    assert sum(o.startswith("run ") for o in picks.options) == 8  # every run's suspects, from the database
    assert "flipped" in " ".join(m.value for m in at.markdown)  # the picked run's detection figures
    noisy = next(r for r in runs if r["params"]["noise"] == 0.25)
    samples = Lab(pg_url).samples(noisy["id"])
    assert len(samples["row"]) == N_ROWS and sum(samples["flipped"]) == N_ROWS // 4
