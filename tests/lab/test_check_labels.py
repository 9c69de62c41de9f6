"""pfml_core.lab.check_labels, cleaning and clean_export without training: the all-rows
split, every row of a .npz / .csv / .zip mapped back to the file's own row or image path,
score directions on a tiny hand-made case, the cut-off, cleaning, the export round trip and
R@1 in points."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pfml_core.data import dataset as D
from pfml_core.data.bundled import load_dataset
from pfml_core.eval import label_margin as lm
from pfml_core.lab import check_labels, clean_export, cleaning, suspects
from pfml_core.training.config import TrainConfig


def fake_check(ds: D.Dataset, flipped_rows=(), epochs: int = 3, seed: int = 0):
    """A check of ds without training: each row's embedding is its true class's corner of
    the simplex (plus a little seeded jitter), so a flipped row sits with its true class."""
    rng = np.random.default_rng(seed)
    true = ds.y.copy()
    y = ds.y.copy()
    y[list(flipped_rows)] = (y[list(flipped_rows)] + 1) % ds.num_classes
    noisy = D.Dataset(ds.X, y, ds.class_names, ds.kind, ds.name, sources=ds.sources)
    if len(flipped_rows):
        noisy.true_y, noisy.flipped = true, np.isin(np.arange(len(y)), list(flipped_rows))
    hist, sims = [], []
    for _ in range(epochs):
        emb = np.eye(ds.num_classes)[true] + 0.05 * rng.normal(size=(len(y), ds.num_classes))
        m = lm.train_margins(emb, noisy, np.arange(len(y)))
        hist.append(m)
        sims.append(m.sim)
    rm = suspects.RunMargins(hist, [0.5] * epochs, False, ds.class_names)
    config = TrainConfig(data="x", split="all-rows", seed=seed)
    return check_labels.scored(noisy, rm, config, [], np.mean(sims, axis=0))


def blobs(n_per: int = 12, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat(np.arange(classes), n_per)
    return np.random.default_rng(1).normal(size=(len(y), 4)).astype(np.float32), y


def test_all_rows_split_trains_every_row_and_measures_on_held_out():
    X, y = blobs()
    ds = D.Dataset(X, y, ["a", "b", "c"], "features")
    train, test = D.split(ds, "all-rows")
    assert list(train.index) == list(range(len(y))) and list(test.index) == list(train.index)
    held = ds.subset(np.arange(0, len(y), 3))
    train, test = D.split(D.Dataset(X, y, ds.class_names, "features", held_out=held), "all-rows")
    assert len(train.y) == len(y) and test is held


def test_centroid_anchors_ignore_captured_proxies():
    emb = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    ds = D.Dataset(emb, np.array([0, 0, 1, 1]), ["a", "b"], "features")
    proxies, plabels = np.array([[0.0, 1], [1.0, 0]]), np.array([0, 1])  # each in the other class
    m = lm.train_margins(emb, ds, np.arange(4), proxies, plabels)
    assert (m.margin > 0).all()  # every label is right: nearer its own class's centroid


def test_npz_rows_are_the_files_own_rows(tmp_path):
    X, y = blobs()
    y = np.array([7, 3, 5])[y]  # label values, not ids
    path = tmp_path / "mine.npz"
    np.savez(path, X=X, y=y)
    chk = fake_check(load_dataset(str(path)), flipped_rows=[4, 20])
    f = chk.frame.set_index("row")
    assert sorted(f.index) == list(range(len(y)))  # every row, once
    clean = [r for r in range(len(y)) if r not in (4, 20)]
    assert list(f.loc[clean, "given_label"]) == [str(v) for v in y[clean]]
    assert f.loc[4, "flipped"] and not f.loc[5, "flipped"]


def test_csv_rows_are_the_files_own_rows(tmp_path):
    X, y = blobs()
    order = np.random.default_rng(0).permutation(len(y))  # labels not sorted in the file
    df = pd.DataFrame(X[order], columns=list("abcd")).assign(label=np.array([10, 20, 30])[y[order]])
    df.to_csv(tmp_path / "mine.csv", index=False)
    chk = fake_check(load_dataset(str(tmp_path / "mine.csv")))
    f = chk.frame.set_index("row").sort_index()
    assert list(f.index) == list(range(len(df)))
    assert list(f["given_label"]) == [str(v) for v in df["label"]]


def png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 6), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def image_zip(path, names: list[str]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for i, n in enumerate(names):
            z.writestr(n, png(15 * i))


ZIP_NAMES = [f"pets/{c}/{i:02d}.png" for c in ("dog", "cat", "owl") for i in range(5)]


def test_zip_rows_are_the_images_paths_and_export_moves_a_relabelled_image(tmp_path):
    image_zip(tmp_path / "pets.zip", ZIP_NAMES)
    ds = load_dataset(str(tmp_path / "pets.zip"))
    chk = fake_check(ds, flipped_rows=[0])
    f = chk.frame.set_index("row")
    assert sorted(f.index) == sorted(ZIP_NAMES)
    assert all(f.loc[n, "given_label"] == n.split("/")[1] for n in ZIP_NAMES if n != ds.sources[0])
    y, keep = cleaning.cleaned_labels(chk, cleaning.top_rows(chk, 1), "relabel")
    out = clean_export.export(str(tmp_path / "pets.zip"), chk.data, y, keep, tmp_path / "c.zip")
    names = zipfile.ZipFile(out).namelist()
    moved = f"pets/{ds.class_names[ds.y[0]]}/{ds.sources[0].split('/')[-1]}"
    assert len(names) == len(ZIP_NAMES) and moved in names  # back under its true class
    assert sorted(load_dataset(str(out)).y) == sorted(ds.y)


def test_flipped_row_scores_higher_than_its_clean_twin_on_both_scores():
    X, y = blobs(n_per=15)
    chk = fake_check(D.Dataset(X, y, ["a", "b", "c"], "features"), flipped_rows=[3])
    f = chk.frame.set_index("row")
    twin = 4  # same class, same place, its label kept
    assert f.loc[3, "score"] > 0 > f.loc[twin, "score"]
    assert f.loc[3, "cleanlab_score"] > f.loc[twin, "cleanlab_score"]
    assert f.loc[3, "rank"] == 1 and f.loc[3, "suggested_label"] == "a"
    assert list(chk.frame.columns[:6]) == list(check_labels.COLUMNS)


def test_cut_off_is_the_rows_with_a_negative_mean_margin(tmp_path):
    X, y = blobs(n_per=15)
    flips = [1, 16, 17, 33]
    chk = fake_check(D.Dataset(X, y, ["a", "b", "c"], "features"), flipped_rows=flips)
    assert chk.cutoff == int((chk.frame["score"] > 0).sum()) == len(flips)
    assert set(chk.frame["row"][:chk.cutoff]) == set(flips)
    assert "Estimated label errors: 4" in check_labels.describe(chk)
    assert check_labels.write_csv(chk, tmp_path / "s.csv") == len(y)
    got = pd.read_csv(tmp_path / "s.csv")
    assert list(got.columns) == [*check_labels.COLUMNS, "flipped"] and list(got["rank"]) == \
        list(range(1, len(y) + 1))


def test_cleaning_drops_or_relabels_the_top_k_and_exports_npz_and_csv(tmp_path):
    X, y = blobs()
    np.savez(tmp_path / "d.npz", X=X, y=y + 1, extra=np.arange(len(y)))
    chk = fake_check(load_dataset(str(tmp_path / "d.npz")), flipped_rows=[2, 30])
    rows = cleaning.top_rows(chk, 2)
    assert set(rows) == {2, 30}
    y_drop, keep = cleaning.cleaned_labels(chk, rows, "drop")
    assert keep.sum() == len(y) - 2 and not keep[[2, 30]].any()
    y_fix, _ = cleaning.cleaned_labels(chk, rows, "relabel")
    assert (y_fix == chk.data.true_y).all()
    clean_export.export(str(tmp_path / "d.npz"), chk.data, y_drop, keep, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz") as f:
        assert len(f["X"]) == len(y) - 2 and 2 not in f["extra"] and set(f["y"]) == {1, 2, 3}
    pd.DataFrame(X, columns=list("abcd")).assign(target=y + 1).to_csv(tmp_path / "d.csv", index=False)
    out = clean_export.export(str(tmp_path / "d.csv"), chk.data, y_fix, np.ones(len(y), bool),
                              tmp_path / "c.csv")
    assert list(pd.read_csv(out)["target"]) == list(y + 1)  # the flips put right
    with pytest.raises(ValueError, match="csv file"):
        clean_export.export(str(tmp_path / "d.csv"), chk.data, y_fix, keep, tmp_path / "c.npz")


def test_r1_in_points_and_one_seed_without_plus_minus():
    assert cleaning.points([0.9123]) == "91.2"
    assert cleaning.points([0.9, 0.92]) == "91.0 ± 1.4"
    assert cleaning.gain([0.9], [0.667]) == "+23.3"
    text = cleaning.report([{"k": 5, "how": "drop", "train_rows": 70, "held_out": 30,
                             "truth": True, "r1": {"noisy": 0.8, "margin": 0.9, "cleanlab": 0.85,
                                                   "true": 0.95}}])
    assert "± " not in text and "(+10.0)" in text and "true labels (the ceiling)" in text
