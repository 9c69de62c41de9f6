"""pfml_core/benchmarks.py on tiny generated copies of the CUB, Cars and SOP layouts
(a few 8x8 JPEGs): splits, class counts, labels, lazy reading, bad folders."""
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from pfml_core.data.benchmarks import ImageListDataset, load_benchmark, load_cars, load_cub, load_sop
from pfml_core.data.transforms import EvalTransform


def _jpeg(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


@pytest.fixture
def cub(tmp_path):
    """Classes 1, 2 (train when the split is at 2) and 3, 4 (test); 2 images each."""
    lines, labels = [], []
    for i in range(8):
        cls = i // 2 + 1
        rel = f"{cls:03d}.Bird_{cls}/img_{i}.jpg"
        _jpeg(tmp_path / "images" / rel, 30 * i)
        lines.append(f"{i + 1} {rel}")
        labels.append(f"{i + 1} {cls}")
    (tmp_path / "images.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    return tmp_path


def test_cub_split_and_labels(cub):
    split = load_cub(cub, num_train_classes=2)
    assert (split.num_train_classes, split.num_test_classes) == (2, 2)
    assert [y for _, y in split.train] == [0, 0, 1, 1]
    assert [y for _, y in split.test] == [0, 0, 1, 1]  # classes 3, 4 renumbered
    assert split.test[0][0].endswith("003.Bird_3/img_4.jpg")


def test_cub_default_split_is_1_to_100(cub):
    with pytest.raises(ValueError, match="0 test images"):  # all 4 classes are <= 100
        load_cub(cub)


def test_cub_missing_and_malformed(cub, tmp_path_factory):
    (cub / "images" / "001.Bird_1" / "img_0.jpg").unlink()
    with pytest.raises(ValueError, match="1 of 8 listed images are missing"):
        load_cub(cub, num_train_classes=2)
    assert len(load_cub(cub, num_train_classes=2, check_files=False).train) == 4
    (cub / "image_class_labels.txt").write_text("1 1\n2\n")
    with pytest.raises(ValueError, match="line 2 has 1 fields"):
        load_cub(cub, num_train_classes=2)
    (cub / "image_class_labels.txt").write_text("1 1\n")
    with pytest.raises(ValueError, match="8 images but image_class_labels.txt has 1"):
        load_cub(cub, num_train_classes=2)
    (cub / "image_class_labels.txt").write_text("".join(f"{i} x\n" for i in range(1, 9)))
    with pytest.raises(ValueError, match="image 1: expected an integer"):
        load_cub(cub, num_train_classes=2, check_files=False)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ValueError, match="missing folder"):
        load_cub(empty)
    with pytest.raises(ValueError, match="not a folder"):
        load_cub(empty / "nope")


def _cars_images(root, n_classes=4, per_class=2):
    rows = []
    for i in range(n_classes * per_class):
        rel = f"car_ims/{i + 1:06d}.jpg"
        _jpeg(root / rel, 20 * i)
        rows.append((rel, i // per_class + 1))
    return rows


def test_cars_annos_mat(tmp_path):
    rows = _cars_images(tmp_path)
    ann = np.array([(p, c, i % 2) for i, (p, c) in enumerate(rows)],
                   dtype=[("relative_im_path", "O"), ("class", "O"), ("test", "O")])
    scipy.io.savemat(tmp_path / "cars_annos.mat", {"annotations": ann[None, :]})
    split = load_cars(tmp_path, num_train_classes=2)
    assert len(split.train) == len(split.test) == 4  # the mat's own test flag is ignored
    assert [y for _, y in split.train] == [0, 0, 1, 1]
    assert split.train[0][0].endswith("car_ims/000001.jpg")
    assert split.test[0][0].endswith("car_ims/000005.jpg")


def test_cars_bad_mat(tmp_path):
    scipy.io.savemat(tmp_path / "cars_annos.mat", {"something": np.zeros(3)})
    with pytest.raises(ValueError, match="'annotations'"):
        load_cars(tmp_path)


def test_cars_class_folders_train_test_merged(tmp_path):
    for part, start in (("train", 0), ("test", 1)):
        for name in ("Acura RL 2012", "AM General Hummer 2000", "BMW M3 2012"):
            _jpeg(tmp_path / part / name / f"{part}{start}.jpg")
    (tmp_path / "train" / "BMW M3 2012" / "notes.txt").write_text("not an image")
    split = load_cars(tmp_path, num_train_classes=2)
    # by name: "AM General..." < "Acura..." (ASCII) < "BMW..."
    assert [p.split("/")[-2] for p, _ in split.train] == \
        ["AM General Hummer 2000", "Acura RL 2012", "AM General Hummer 2000", "Acura RL 2012"]
    assert (split.num_train_classes, split.num_test_classes, len(split.test)) == (2, 1, 2)


def test_cars_numeric_folders_sort_numerically(tmp_path):
    for c in (1, 2, 10, 11):
        _jpeg(tmp_path / str(c) / "a.jpg")
    split = load_cars(tmp_path, num_train_classes=2)
    assert [p.split("/")[-2] for p, _ in split.train] == ["1", "2"]


def test_cars_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="neither cars_annos.mat nor class folders"):
        load_cars(tmp_path)


@pytest.fixture
def sop(tmp_path):
    header = "image_id class_id super_class_id path\n"
    for fname, classes, start in (("Ebay_train.txt", (1, 2, 3), 1), ("Ebay_test.txt", (4, 5), 7)):
        lines, i = [], start
        for c in classes:
            for j in range(2):
                rel = f"bicycle_final/{c}_{j}.JPG"
                _jpeg(tmp_path / rel)
                lines.append(f"{i} {c} 1 {rel}")
                i += 1
        (tmp_path / fname).write_text(header + "\n".join(lines) + "\n")
    return tmp_path


def test_sop_split(sop):
    split = load_benchmark("sop", sop)
    assert (split.num_train_classes, split.num_test_classes) == (3, 2)
    assert [y for _, y in split.test] == [0, 0, 1, 1]
    assert split.train[-1][0].endswith("bicycle_final/3_1.JPG")


def test_sop_malformed(sop):
    (sop / "Ebay_test.txt").write_text("id cls path\n1 4 x.jpg\n")
    with pytest.raises(ValueError, match="header"):
        load_sop(sop)
    (sop / "Ebay_test.txt").write_text("image_id class_id super_class_id path\n9 2 1 "
                                       "bicycle_final/2_0.JPG\n")
    with pytest.raises(ValueError, match="both Ebay_train.txt and Ebay_test.txt"):
        load_sop(sop)
    (sop / "Ebay_test.txt").unlink()
    with pytest.raises(ValueError, match="missing file"):
        load_sop(sop)


def test_unknown_benchmark(tmp_path):
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_benchmark("imagenet", tmp_path)


def test_image_list_dataset_reads_lazily(cub):
    split = load_cub(cub, num_train_classes=2)
    ds = ImageListDataset(split.train, EvalTransform(resize=16, crop=8, normalize=False))
    x, y = ds[2]  # img_2.jpg, uniform grey 60
    assert x.shape == (3, 8, 8) and y == 1
    assert torch.allclose(x, torch.full_like(x, 60 / 255), atol=3 / 255)  # JPEG rounding
    assert ds.labels().tolist() == [0, 0, 1, 1]
    (cub / "images" / "001.Bird_1" / "img_0.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read image"):
        ds[0]


def test_lazy_images_decode_only_when_taken(cub):
    from pfml_core.data.benchmarks import LazyImages

    split = load_cub(cub, num_train_classes=2)
    calls = []

    def tf(img):
        calls.append(img.size)
        return EvalTransform(8, 8, normalize=False)(img)

    X = LazyImages([p for p, _ in split.train], tf, size=8)
    view = X[[3, 1]]
    assert X.shape == (4, 3, 8, 8) and view.shape == (2, 3, 8, 8) and not calls
    arr = np.asarray(view)
    assert arr.shape == (2, 3, 8, 8) and arr.dtype == np.float32 and len(calls) == 2
    np.testing.assert_allclose(arr[0], np.asarray(X[3])[0])  # row 3 of the original
    assert np.asarray(X.with_transform(lambda im: torch.zeros(3, 8, 8))[[0]]).sum() == 0
