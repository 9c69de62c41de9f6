"""`python -m pfml_core train`: writes a run folder the app can reopen; bad input gives a
one-line error and exit code 2, no traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

from pfml_core import cli
from pfml_core.training import run_folder as runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_writes_run_folder(tmp_path):
    out = tmp_path / "r1"
    rc = cli.main(["train", "--data", "digits", "--loss", "pfml", "--alpha", "2.5", "--delta", "0.25",
                   "--noise", "0.2", "--epochs", "2", "--max-batches", "3", "--eval-subset", "200",
                   "--out", str(out)])
    assert rc == 0
    assert {"config.json", "metrics.csv", "checkpoint.pt", "embeddings.npz"} <= {p.name for p in out.iterdir()}
    run = runs.load_run(out)
    assert run.config.loss_params == {"alpha": 2.5, "delta": 0.25} and run.config.noise == 0.2
    assert list(run.metrics["epoch"]) == [0, 1, 2]
    assert run.embeddings["emb"].shape == (3, 200, 64)


def test_bad_input_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,nan,1\n")
    proc = subprocess.run([sys.executable, "-m", "pfml_core", "train", "--data", str(bad),
                           "--out", str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "NaN" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_loss_param():
    assert cli.main(["train", "--loss", "triplet", "--alpha", "3"]) == 2
