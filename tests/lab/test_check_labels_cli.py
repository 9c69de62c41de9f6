"""`python -m pfml_core suspects --data FILE`: scikit-learn's digits saved as a .npz with 15%
of its labels flipped over all 10 classes (the app is not told which), every row ranked
and found, cleaned, retrained and exported; --noise makes the app flip them itself."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pfml_core import cli
from pfml_core.data.bundled import load_dataset
from pfml_core.data.dataset import flip_labels

pytestmark = pytest.mark.slow  # trains five short runs
FAST = ["--epochs", "3", "--device", "cpu", "--model", "mlp"]


def test_users_own_noisy_npz_checked_cleaned_and_exported(tmp_path, capsys):
    digits = load_dataset("digits")
    y, flipped = flip_labels(digits.y, 0.15, 7, 10)
    np.savez(tmp_path / "digits.npz", X=digits.X.reshape(len(y), -1), y=y)
    out = tmp_path / "s.csv"
    assert cli.main(["suspects", "--data", str(tmp_path / "digits.npz"), *FAST, "--out", str(out),
                     "--clean", "drop"]) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["row", "given_label", "suggested_label", "score",
                                 "cleanlab_score", "rank"]  # no flips known to the app
    assert sorted(got["row"]) == list(range(len(y)))
    by_row = got.set_index("row").sort_index()
    assert list(by_row["given_label"]) == list(y) and len(set(y[flipped])) == 10
    assert roc_auc_score(flipped, by_row["score"]) > 0.95
    assert roc_auc_score(flipped, by_row["cleanlab_score"]) > 0.9
    text = capsys.readouterr().out
    k = int(re.search(r"Estimated label errors: (\d+)", text).group(1))
    assert k == int((got["score"] > 0).sum()) and abs(k - flipped.sum()) < 0.3 * flipped.sum()
    assert flipped[got["row"][:k]].mean() > 0.85  # the cut-off's list is mostly real flips
    r1 = dict(re.findall(r"^  (given labels|cleaned by the margin score)\s+(\d+\.\d)\b", text, re.M))
    assert len(r1) == 2 and "±" not in text  # one seed, points with one decimal
    assert re.search(r"cleaned by the margin score\s+\d+\.\d  \([+-]\d+\.\d\)", text)
    with np.load(tmp_path / "s.cleaned.npz") as f:
        assert len(f["y"]) == len(y) - k and f["X"].shape[1] == 64


def test_injected_noise_adds_the_flipped_column(tmp_path, capsys):
    digits = load_dataset("digits")
    pd.DataFrame(digits.X[:400].reshape(400, -1)).assign(label=digits.y[:400]).to_csv(
        tmp_path / "d.csv", index=False)
    out = tmp_path / "s.csv"
    assert cli.main(["suspects", "--data", str(tmp_path / "d.csv"), *FAST, "--noise", "0.2",
                     "--out", str(out)]) == 0
    got = pd.read_csv(out)
    assert len(got) == 400 and got["flipped"].sum() == 80
    assert "80 labels were flipped on purpose" in capsys.readouterr().out


def test_run_folder_or_data_one_of_them(capsys):
    assert cli.main(["suspects"]) == 2
    assert "give a run folder or --data FILE" in capsys.readouterr().err
