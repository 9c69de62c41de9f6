"""TrainConfig: every setting of a training run, one declarative table that validates,
serialises to a dict (config.json, CLI, page) and back."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from pfml_core import guards
from pfml_core.data.dataset import SPLITS
from pfml_core.training import budget
from pfml_core.training.models import MODELS


@dataclass
class TrainConfig:
    data: str = "mnist5k"        # "mnist5k" | "digits" | path to image folder / .zip / .npz / .csv
                                 # | a benchmark ("cub200", "cars196", "sop") with data_root
    data_root: str | None = None  # the benchmark's unpacked folder (pfml_core.data.benchmarks)
    split: str = "zero-shot"     # first half of the classes train, the rest test (docs/method.md, section 6)
    model: str = "auto"          # "auto" | "mlp" | "cnn" | "resnet18" | "resnet50"
    embedding_size: int = 64
    pretrained: bool = False
    loss: str = "pfml"           # key of pfml_core.training.losses.LOSSES
    loss_params: dict = field(default_factory=dict)  # overrides of the loss's default_params
    noise: float = 0.0           # fraction of TRAINING labels flipped (seeded)
    epochs: int = 10
    lr: float = 1e-3
    proxy_lr_multiplier: float = 100.0  # docs/method.md, section 3: proxies learn 100x faster
    weight_decay: float = 1e-4   # docs/method.md, section 6 (Cars)
    classes_per_batch: int = 8
    samples_per_class: int = 8
    eval_subset: int = 1000      # fixed subset of held-out samples embedded each epoch
    seed: int = 0
    device: str = "auto"         # auto = cuda, then mps, then cpu
    max_batches_per_epoch: int | None = None
    freeze_bn: bool = False      # BatchNorm in eval mode, affine parameters fixed (ResNets)
    warmup_epochs: int = 0       # first epochs: backbone fixed, head + proxies train
    amp: bool = False            # bfloat16 autocast on CUDA (ignored elsewhere)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {sorted(unknown)}; allowed: {sorted(names)}")
        return cls(**d)

    def check_budget(self, dataset) -> TrainConfig:
        """Raise ValueError when a run of this config on dataset (a pfml_core.data Dataset,
        before its split) would pass PFML_MAX_RUN_MEMORY or PFML_MAX_RUN_DISK."""
        budget.check(self, budget.dataset_shape(dataset, self.split))
        return self

    def validate(self) -> TrainConfig:
        """Raise ValueError naming the first bad field; returns self."""
        from pfml_core.training.losses import LOSSES

        if not isinstance(self.data, str) or not self.data.strip():
            raise ValueError(f"data must be a dataset name or a path, got {self.data!r}")
        guards.check_choice("split", self.split, SPLITS)
        guards.check_choice("model", self.model, MODELS)
        guards.check_int("embedding_size", self.embedding_size, 2, 4096)
        guards.check_choice("loss", self.loss, LOSSES)
        if not isinstance(self.loss_params, dict):
            raise ValueError(f"loss_params must be a dict, got {type(self.loss_params).__name__}")
        unknown = set(self.loss_params) - set(LOSSES[self.loss].default_params)
        if unknown:
            raise ValueError(f"loss {self.loss!r} does not take {sorted(unknown)}; its "
                             f"parameters are {sorted(LOSSES[self.loss].default_params)}")
        guards.check_range("noise", self.noise, 0.0, 0.95)
        guards.check_int("epochs", self.epochs, 1, 100_000)
        guards.check_positive("lr", self.lr)
        guards.check_positive("proxy_lr_multiplier", self.proxy_lr_multiplier)
        guards.check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        guards.check_int("classes_per_batch", self.classes_per_batch, 2, 10_000)
        guards.check_int("samples_per_class", self.samples_per_class, 2, 10_000)
        guards.check_int("eval_subset", self.eval_subset, 10)
        guards.check_int("seed", self.seed, 0, 2**32 - 1)  # numpy seeds stop there
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(self.device)):
            raise ValueError(f"device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', "
                             f"got {self.device!r}")
        if self.max_batches_per_epoch is not None:
            guards.check_int("max_batches_per_epoch", self.max_batches_per_epoch, 1)
        for name in ("freeze_bn", "amp", "pretrained"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        guards.check_int("warmup_epochs", self.warmup_epochs, 0, self.epochs)
        from pfml_core.data.benchmarks import BENCHMARKS

        if self.data in BENCHMARKS and not self.data_root:
            raise ValueError(f"data {self.data!r} is a benchmark: give data_root, its unpacked "
                             f"folder (--data-root on the command line)")
        shape = budget.bundled_shape(self.data, self.split)  # other data: once it is loaded
        if shape is not None:  # memory only: disk where a run folder is written (engine, page)
            budget.check(self, shape, disk=False)
        # checks the values; last, as it makes the proxies the budget has just sized
        LOSSES[self.loss].make(2, self.embedding_size, **self.loss_params)
        return self
