"""`python -m pfml_core suspects RUN_DIR --top N --out suspects.csv` on real short training
runs: one ranked row per training sample, flips where the run made them, the printed AUROC
equal to scikit-learn's on the written CSV, --top, and bad input as a message."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pfml_core import cli
from pfml_core.data.bundled import load_dataset
from pfml_core.data.dataset import flip_labels, split

ROOT = Path(__file__).resolve().parents[2]
# every test trains the engine briefly (cli train), one also in a fresh interpreter
pytestmark = pytest.mark.slow
TRAIN = ["train", "--data", "digits", "--epochs", "2", "--max-batches", "4", "--device", "cpu",
         "--model", "mlp", "--eval-subset", "200"]


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits_noisy"
    assert cli.main([*TRAIN, "--noise", "0.2", "--out", str(out)]) == 0
    return out


def test_every_training_sample_ranked_with_its_flip(noisy_run, tmp_path, capsys):
    csv = tmp_path / "s.csv"
    assert cli.main(["suspects", str(noisy_run), "--top", "100000", "--out", str(csv)]) == 0
    got = pd.read_csv(csv)
    train, _ = split(load_dataset("digits"), "zero-shot", 0)  # digits 0-4
    noisy, flipped = flip_labels(train.y, 0.2, 0, train.num_classes)
    assert list(got.columns) == ["row", "given_label", "suggested_label", "score", "flipped"]
    assert sorted(got["row"]) == sorted(train.index) and len(got) == len(train.y)
    assert (np.diff(got["score"]) <= 0).all()  # most suspect first
    by_row = got.set_index("row")
    assert list(by_row.loc[train.index, "flipped"]) == list(flipped)
    assert list(by_row.loc[train.index, "given_label"]) == list(noisy)  # names "0".."4" = ids
    out = capsys.readouterr().out
    auroc = roc_auc_score(got["flipped"], got["score"])
    assert f"AUROC margin {auroc:.3f}" in out and f"flipped labels: {flipped.sum()}" in out
    k = int(flipped.sum())
    assert f"precision at that many: margin {got['flipped'][:k].mean():.3f}" in out


def test_top_n_and_a_subprocess_call(noisy_run, tmp_path):
    csv = tmp_path / "top.csv"
    proc = subprocess.run([sys.executable, "-m", "pfml_core", "suspects", str(noisy_run), "--top", "7",
                           "--out", str(csv), "--window", "all"], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    top = pd.read_csv(csv)
    assert len(top) == 7 and "wrote 7 of" in proc.stdout and "epochs 1-2" in proc.stdout


def test_run_without_noise_has_no_flipped_column(tmp_path, capsys):
    out = tmp_path / "clean"
    assert cli.main([*TRAIN, "--out", str(out)]) == 0
    assert cli.main(["suspects", str(out), "--out", str(tmp_path / "c.csv")]) == 0
    got = pd.read_csv(tmp_path / "c.csv")
    assert list(got.columns) == ["row", "given_label", "suggested_label", "score"]
    assert "AUROC" not in capsys.readouterr().out


def test_bad_input_is_a_message(noisy_run, tmp_path, capsys):
    assert cli.main(["suspects", str(tmp_path / "nope")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert cli.main(["suspects", str(noisy_run), "--top", "0"]) == 2
    assert "--top" in capsys.readouterr().err
    assert cli.main(["suspects", str(noisy_run), "--window", "soon"]) == 2
    assert "--window" in capsys.readouterr().err
    old = tmp_path / "old"  # a run folder written before margins were recorded
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"data": "digits"}))
    assert cli.main(["suspects", str(old)]) == 2
    assert "holds no label margins" in capsys.readouterr().err
