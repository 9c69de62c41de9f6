"""pfml_core/data/benchmarks.py on tiny generated copies of the CUB, Cars and SOP layouts
(a few 8x8 JPEGs): splits, class counts, labels, lazy reading, bad folders; and
pfml_core/training/loaders.py: the DataLoaders that feed training from them (and from
in-memory arrays) yield exactly the class-balanced sampler's rows, sharded per rank."""
import dataclasses

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from pfml_core.data import transforms
from pfml_core.data.benchmarks import (
    ImageListDataset,
    benchmark_datasets,
    load_benchmark,
    load_cars,
    load_cub,
    load_sop,
)
from pfml_core.data.images import IMAGE_EXTS
from pfml_core.data.transforms import eval_transform
from pfml_core.training import distributed, loaders
from pfml_core.training.config import TrainConfig
from pfml_core.training.sampler import DistributedClassBalancedSampler


def classes(items) -> int:
    """How many classes a split's (path, label) items hold."""
    return len({y for _, y in items})


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
    assert (classes(split.train), classes(split.test)) == (2, 2)
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
    assert (classes(split.train), classes(split.test), len(split.test)) == (2, 1, 2)


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
    assert (classes(split.train), classes(split.test)) == (3, 2)
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
    ds = ImageListDataset(split.train, eval_transform(resize=16, crop=8, normalize=False))
    x, y = ds[2]  # img_2.jpg, uniform grey 60
    assert x.shape == (3, 8, 8) and y == 1
    assert torch.allclose(x, torch.full_like(x, 60 / 255), atol=3 / 255)  # JPEG rounding
    assert [ds[i][1] for i in range(len(ds))] == [0, 0, 1, 1]
    (cub / "images" / "001.Bird_1" / "img_0.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read image .*img_0.jpg.*corrupt"):
        ds[0]


def test_one_list_of_image_types():
    assert {".jpg", ".jpeg", ".png", ".bmp", ".webp"} <= IMAGE_EXTS  # what Cars folders hold


def _grey_sop(root, train=(1, 2, 3, 4), test=(5, 6), per_class=3):
    """SOP layout; image k (counted over both files) is a uniform grey of value 10 * k."""
    header, k = "image_id class_id super_class_id path\n", 0
    for fname, classes in (("Ebay_train.txt", train), ("Ebay_test.txt", test)):
        lines = []
        for c in classes:
            for j in range(per_class):
                rel = f"chair_final/{c}_{j}.JPG"
                _jpeg(root / rel, 10 * k)
                lines.append(f"{k + 1} {c} 1 {rel}")
                k += 1
        (root / fname).write_text(header + "\n".join(lines) + "\n")
    return root


def _grey(x: torch.Tensor) -> list[int]:
    """(B, 3, H, W) uniform images -> their grey value, 0..255 (JPEG rounding removed)."""
    return [int(round(float(v) * 255 / 10)) * 10 for v in x.mean(dim=(1, 2, 3))]


def test_benchmark_records_hold_paths(tmp_path):
    train, test = benchmark_datasets("sop", _grey_sop(tmp_path))
    assert train.X.shape == (12,) and train.X[4].endswith("chair_final/2_1.JPG")
    assert train.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] and train.num_classes == 4
    assert test.y.tolist() == [0, 0, 0, 1, 1, 1] and test.kind == "image"


@pytest.mark.parametrize("workers", [0, 2])
def test_benchmark_loader_yields_the_samplers_batches(tmp_path, workers):
    cfg = TrainConfig(data="sop", data_root=str(_grey_sop(tmp_path)), model="resnet18",
                      classes_per_batch=2, samples_per_class=3, eval_subset=10, seed=4)
    prep = dataclasses.replace(loaders.prepare_data(cfg), workers=workers)
    assert prep.input_shape == (3, 224, 224)
    sampler = loaders.class_balanced(cfg, prep.train.y)
    sampler.set_epoch(2)
    loader = loaders.train_loader(prep, sampler, "cpu")
    assert loader.num_workers == workers and len(loader) == len(sampler) == 2
    seen = list(loader)
    for (x, y), rows in zip(seen, sampler):  # the sampler replays the same epoch
        assert x.shape == (6, 3, 224, 224) and x.dtype == torch.float32
        assert y.tolist() == prep.train.y[rows].tolist()
        assert sorted(np.unique(y, return_counts=True)[1]) == [3, 3]  # 2 classes x 3 images
        assert _grey(x) == [10 * r for r in rows]  # each row's own file, cropped and resized
    assert len(seen) == 2


def test_loader_rank_slices_concatenate_to_the_global_batch(tmp_path):
    cfg = TrainConfig(data="sop", data_root=str(_grey_sop(tmp_path)), classes_per_batch=2,
                      samples_per_class=2, eval_subset=10)
    prep = loaders.prepare_data(cfg)
    y = prep.train.y

    def batches(rank, world):
        s = DistributedClassBalancedSampler(y, 2, 2, seed=1, rank=rank, world_size=world)
        return [(_grey(x), b.tolist()) for x, b in loaders.train_loader(prep, s, "cpu")]

    single, r0, r1 = batches(0, 1), batches(0, 2), batches(1, 2)
    assert [a[0] + b[0] for a, b in zip(r0, r1)] == [s[0] for s in single]
    assert [a[1] + b[1] for a, b in zip(r0, r1)] == [s[1] for s in single]
    assert all(len(a[0]) == 2 for a in r0 + r1)


def test_eval_loader_reads_this_ranks_share_in_order(tmp_path, monkeypatch):
    cfg = TrainConfig(data="sop", data_root=str(_grey_sop(tmp_path)), eval_subset=10)
    prep = loaders.prepare_data(cfg)
    x, y = next(iter(loaders.eval_loader(prep.test_images, np.array([5, 0, 3]), 0, "cpu")))
    assert _grey(x) == [10 * (12 + r) for r in (5, 0, 3)]  # test images follow the 12 train
    assert y.tolist() == [1, 0, 1]
    view = next(iter(loaders.eval_loader(prep.view_images, np.arange(4), 0, "cpu")))[0]
    assert _grey(view) == [0, 10, 20, 30]  # training images, centre-cropped
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    x, _ = next(iter(loaders.eval_loader(prep.test_images, np.array([5, 0, 3, 4, 1]), 0, "cpu")))
    assert _grey(x) == [10 * (12 + r) for r in (4, 1)]  # rank 1 of 2: the last two rows


def test_in_memory_loader_batches_rows_and_augments_only_resnets():
    cnn = TrainConfig(data="digits", model="cnn", classes_per_batch=3, samples_per_class=4)
    prep = loaders.prepare_data(cnn)
    assert isinstance(prep.train_images, loaders.ArrayImages) and prep.workers == 0
    assert prep.train_images.crop_flip is None and prep.input_shape == (1, 8, 8)
    sampler = loaders.class_balanced(cnn, prep.train.y)
    for (x, y), rows in zip(loaders.train_loader(prep, sampler, "cpu"), sampler):
        assert torch.equal(x, torch.from_numpy(prep.train.X[rows]))  # exactly the rows
        assert y.tolist() == prep.train.y[rows].tolist() and len(set(y.tolist())) == 3
    rows = np.arange(300)
    got = torch.cat([x for x, _ in loaders.eval_loader(prep.test_images, rows, 0, "cpu")])
    assert torch.equal(got, torch.from_numpy(prep.test.X[rows]))  # 256 + 44, in order
    res = loaders.prepare_data(dataclasses.replace(cnn, model="resnet18"))
    crop = res.train_images.crop_flip.transforms[0]
    assert crop.scale == transforms.SMALL_IMAGE_CROP_SCALE and crop.size == (8, 8)
    torch.manual_seed(0)
    x, _ = res.train_images[[0, 1, 2]]
    assert x.shape == (3, 1, 8, 8) and not torch.equal(x, torch.from_numpy(res.train.X[:3]))
    assert res.view_images.crop_flip is None and res.test_images.crop_flip is None


def test_default_workers_share_the_cpus_among_ranks(monkeypatch):
    monkeypatch.setattr(loaders.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert loaders.default_workers() == 8  # 15 spare CPUs, capped
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert loaders.default_workers() == 3  # 4 CPUs per rank, one for the rank itself
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert loaders.default_workers() == 0  # decode in the training process
