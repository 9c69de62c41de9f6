"""The training engine's data: the train / held-out records of a TrainConfig (noisy labels,
fixed evaluation rows) and the torch DataLoaders that read their images, with batch samplers:
in-memory arrays (`ArrayImages`, one fancy index per batch) or benchmark image files
(`ImageListDataset`, decoded in worker processes). Training batches are class-balanced: under
torchrun every rank draws the same global batch and reads only its slice."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader

from pfml_core.data import transforms
from pfml_core.data.benchmarks import BENCHMARKS, ImageListDataset, benchmark_datasets
from pfml_core.data.bundled import load_dataset
from pfml_core.data.dataset import Dataset, split, with_noise
from pfml_core.training import distributed
from pfml_core.training.budget import EVAL_BATCH, SNAPSHOT_ROWS
from pfml_core.training.config import TrainConfig
from pfml_core.training.models import resolve
from pfml_core.training.presets import IMAGE_SIZE, build_transforms
from pfml_core.training.sampler import DistributedClassBalancedSampler

MAX_WORKERS = 8       # decoding processes per rank for image files


class ArrayImages(torch.utils.data.Dataset):
    """In-memory samples X (n, ...) and labels y (n,): ds[rows] -> the whole batch,
    (float32 (B, ...), int64 (B,)); each image goes through crop_flip when one is given.
    Read in this process (DataLoader(sampler=<batch sampler>, batch_size=None)): no per-item
    work, so a bundled set trains as fast as indexing the array directly."""

    def __init__(self, X: np.ndarray, y: np.ndarray, crop_flip=None):
        self.X, self.y, self.crop_flip = X, y, crop_flip

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, rows):
        x = torch.from_numpy(np.asarray(self.X[rows], dtype=np.float32))  # (B, ...)
        if self.crop_flip is not None:
            x = transforms.augment_batch(x, self.crop_flip)
        return x, torch.from_numpy(self.y[rows])


@dataclass
class Prepared:
    train: Dataset           # the record: noisy labels in y, true labels in true_y
    test: Dataset
    eval_rows: np.ndarray    # fixed rows of test embedded every epoch
    view_rows: np.ndarray    # fixed rows of train embedded every epoch
    keep: np.ndarray         # positions in eval_rows kept in snapshots (<= SNAPSHOT_ROWS)
    input_shape: tuple       # one sample as the model sees it, (F,) or (C, H, W)
    train_images: torch.utils.data.Dataset  # what training batches read (augmented)
    test_images: torch.utils.data.Dataset   # held-out samples as evaluated
    view_images: torch.utils.data.Dataset   # training samples as evaluated (no augmentation)
    workers: int = 0         # decoding processes per loader (0: in this process)


def default_workers() -> int:
    """Decoding processes per rank for image files: the CPUs this process may use, shared
    by the ranks on this machine (torchrun's LOCAL_WORLD_SIZE), one left to the training
    process itself, at most MAX_WORKERS."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_rank = (cpus or 1) // max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    return int(np.clip(per_rank - 1, 0, MAX_WORKERS))


def _file_images(config: TrainConfig, train: Dataset, test: Dataset):
    """Benchmarks: X holds paths, read with the paper's transforms (224 crops)."""
    train_tf, eval_tf = build_transforms()
    items = lambda d: list(zip(d.X.tolist(), d.y.tolist()))  # noqa: E731
    return ((3, IMAGE_SIZE, IMAGE_SIZE), ImageListDataset(items(train), train_tf),
            ImageListDataset(items(test), eval_tf), ImageListDataset(items(train), eval_tf),
            default_workers())


def _array_images(config: TrainConfig, train: Dataset, test: Dataset):
    """Bundled sets and user files: arrays already in memory. ResNets (models for natural
    images) train on random crops of them, at the milder scale that small images need."""
    shape = tuple(train.X.shape[1:])
    crop_flip = None
    if resolve(config.model, shape).startswith("resnet") and len(shape) == 3:
        crop_flip = transforms.random_crop_flip(shape[-1], transforms.SMALL_IMAGE_CROP_SCALE)
    return (shape, ArrayImages(train.X, train.y, crop_flip), ArrayImages(test.X, test.y),
            ArrayImages(train.X, train.y), 0)


def prepare_data(config: TrainConfig, dataset: Dataset | None = None) -> Prepared:
    """The split (a benchmark's standard zero-shot one, else split(config.split)), label
    noise on the training side, the fixed evaluation rows and the image readers."""
    files = dataset is None and config.data in BENCHMARKS
    if files:
        train_set, test_set = benchmark_datasets(config.data, config.data_root)
    else:
        data = dataset if dataset is not None else load_dataset(config.data)
        train_set, test_set = split(data, config.split, config.seed)
    train_set = with_noise(train_set, config.noise, config.seed)
    rng = np.random.default_rng(config.seed)
    pick = lambda n: np.sort(rng.choice(n, min(n, config.eval_subset), replace=False))  # noqa: E731
    eval_rows, view_rows = pick(len(test_set.y)), pick(len(train_set.y))[:SNAPSHOT_ROWS]
    keep = np.sort(np.random.default_rng(0).choice(
        len(eval_rows), min(len(eval_rows), SNAPSHOT_ROWS), replace=False))
    images = (_file_images if files else _array_images)(config, train_set, test_set)
    return Prepared(train_set, test_set, eval_rows, view_rows, keep, *images)


def class_balanced(config: TrainConfig, labels: np.ndarray) -> DistributedClassBalancedSampler:
    """Class-balanced batches (classes x samples); under torch.distributed every rank draws
    the same global batch and keeps its slice. Call set_epoch(e) each epoch."""
    return DistributedClassBalancedSampler(
        labels, min(config.classes_per_batch, len(np.unique(labels))), config.samples_per_class,
        config.max_batches_per_epoch, config.seed)


def _loader(images, batches, workers: int, device, persistent: bool = False) -> DataLoader:
    """ArrayImages: a batch per index, in this process. Image files: one file per item in
    `workers` processes, pinned memory on CUDA (persistent: workers kept between epochs)."""
    if isinstance(images, ArrayImages):  # one index = one batch: automatic batching off
        return DataLoader(images, sampler=batches, batch_size=None)
    return DataLoader(images, batch_sampler=batches, num_workers=workers,
                      pin_memory=torch.device(device).type == "cuda",
                      persistent_workers=persistent and workers > 0)


def train_loader(prep: Prepared, batches: DistributedClassBalancedSampler, device) -> DataLoader:
    """(x, y) batches of the sampler, this rank's slice, augmented; workers kept alive."""
    return _loader(prep.train_images, batches, prep.workers, device, persistent=True)


def eval_loader(images, rows: np.ndarray, workers: int, device) -> DataLoader:
    """This rank's contiguous share of rows, in order, EVAL_BATCH at a time."""
    share = np.array_split(np.asarray(rows), distributed.world_size())[distributed.rank()]
    return _loader(images, BatchSampler(share.tolist(), EVAL_BATCH, drop_last=False),
                   workers, device)
