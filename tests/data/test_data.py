"""pfml_core.data: dataset, user_files, images: bundled sets, splits, label noise, and every kind
of bad user input turning into a clear ValueError (never a pickle load)."""
import zipfile

import numpy as np
import pytest
from PIL import Image

from pfml_core import data
from pfml_core.data import user_files


def test_bundled_shapes_and_ranges():
    m = data.load_dataset("mnist5k")
    assert m.X.shape == (5000, 1, 28, 28) and m.X.dtype == np.float32
    assert 0.0 <= m.X.min() and m.X.max() == 1.0 and sorted(set(m.y)) == list(range(10))
    d = data.load_dataset("digits")
    assert d.X.shape == (1797, 1, 8, 8) and d.kind == "image"


def test_zero_shot_split_disjoint_halves():
    d = data.load_dataset("digits")
    tr, te = data.split(d, "zero-shot")
    # first half of the classes train, the rest test, renumbered from 0 on each side
    assert tr.class_names == ["0", "1", "2", "3", "4"] and te.class_names == ["5", "6", "7", "8", "9"]
    assert set(d.y[tr.index]) == {0, 1, 2, 3, 4} and set(d.y[te.index]) == {5, 6, 7, 8, 9}
    assert np.array_equal(te.y, d.y[te.index] - 5)
    assert len(tr.y) + len(te.y) == len(d.y)


def test_same_classes_split_is_stratified_and_disjoint():
    d = data.load_dataset("digits")
    tr, te = data.split(d, "same-classes", seed=1)
    assert not set(tr.index) & set(te.index) and len(tr.y) + len(te.y) == len(d.y)
    for c in range(10):
        assert abs((tr.y == c).sum() - (te.y == c).sum()) <= 1


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.2, 0.5])
def test_flip_labels_exact_fraction(rate):
    y = np.repeat(np.arange(5), 200)
    noisy, flipped = data.flip_labels(y, rate, seed=3)
    assert flipped.sum() == round(rate * len(y))
    # flipped exactly where the label changed, and always to another class
    assert np.array_equal(flipped, noisy != y)
    assert noisy.min() >= 0 and noisy.max() <= 4
    again, _ = data.flip_labels(y, rate, seed=3)
    assert np.array_equal(noisy, again)


def test_with_noise_keeps_true_labels():
    tr, _ = data.split(data.load_dataset("digits"))
    noisy = data.with_noise(tr, 0.2, seed=0)
    assert np.array_equal(noisy.true_y, tr.y)
    assert np.array_equal(noisy.flipped, noisy.y != tr.y)


def _folder(root, counts, size=(20, 16)):
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.png")
    return root


def test_image_folder_and_zip_load_identically(tmp_path):
    root = _folder(tmp_path / "imgs", {"cat": 3, "dog": 2})
    a = data.load_dataset(str(root))
    assert a.X.shape == (5, 3, 64, 64) and a.class_names == ["cat", "dog"]
    assert list(a.y) == [0, 0, 0, 1, 1]
    z = tmp_path / "imgs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(root.rglob("*.png")):
            zf.write(f, f.relative_to(tmp_path))
    b = data.load_dataset(str(z))
    assert np.allclose(a.X, b.X) and np.array_equal(a.y, b.y)


def test_corrupt_image_named(tmp_path):
    root = _folder(tmp_path / "imgs", {"a": 2, "b": 2})
    (root / "b" / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="bad.png.*corrupt"):
        data.load_dataset(str(root))


def test_empty_class_folder_named(tmp_path):
    root = _folder(tmp_path / "imgs", {"a": 2, "b": 2})
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*no images"):
        data.load_dataset(str(root))


def test_features_npz_and_csv(tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 4))
    y = np.repeat([3, 7, 9], 10)
    np.savez(tmp_path / "f.npz", X=X, y=y)
    d = data.load_dataset(str(tmp_path / "f.npz"))
    assert d.kind == "features" and d.X.shape == (30, 4) and d.class_names == ["3", "7", "9"]
    assert list(np.bincount(d.y)) == [10, 10, 10]
    (tmp_path / "f.csv").write_text("a,b,label\n" + "".join(
        f"{r[0]},{r[1]},{c}\n" for r, c in zip(X, y)))
    c = data.load_dataset(str(tmp_path / "f.csv"))
    assert np.allclose(c.X, X[:, :2], atol=1e-6) and np.array_equal(c.y, d.y)


@pytest.mark.parametrize("content, match", [
    ("a,b,label\n1,2,0\n3,nan,1\n", "NaN"),
    ("a,b,label\n1,2,0\n3,4,5,6,1\n", "ragged|well-formed"),
    ("a,b,label\n1,2,0\n3,4,0\n", "at least 2 classes"),
    ("a,b,label\n1,2,cat\n3,4,dog\n", "non-numeric"),
    ("a,b\n1,2\n", "label column"),
])
def test_bad_csv(tmp_path, content, match):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(ValueError, match=match):
        data.load_dataset(str(f))


def test_bad_npz_never_unpickled(tmp_path):
    ragged = np.array([np.zeros(2), np.zeros(3)], dtype=object)
    np.savez(tmp_path / "obj.npz", X=ragged, y=np.array([0, 1]))
    with pytest.raises(ValueError, match="ragged|objects"):
        data.load_dataset(str(tmp_path / "obj.npz"))
    np.savez(tmp_path / "nan.npz", X=np.array([[0.0, np.nan], [1, 2]]), y=np.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        data.load_dataset(str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "str.npz", X=np.zeros((2, 2)), y=np.array(["a", "b"]))
    with pytest.raises(ValueError, match="non-numeric"):
        data.load_dataset(str(tmp_path / "str.npz"))


def test_size_limit(tmp_path):
    f = tmp_path / "big.csv"
    f.write_text("a,label\n" + "1,0\n" * 1000)
    with pytest.raises(ValueError, match="over the"):
        user_files.load_path(f, max_bytes=100)


def test_missing_path_and_few_classes():
    with pytest.raises(ValueError, match="no such file"):
        data.load_dataset("/no/such/thing.npz")
    d = data.Dataset(np.zeros((6, 2), np.float32), np.array([0, 0, 1, 1, 2, 2]), ["a", "b", "c"], "features")
    with pytest.raises(ValueError, match="at least 4 classes"):
        data.split(d, "zero-shot")
