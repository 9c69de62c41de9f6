"""Class-balanced batches sharded over ranks: every rank draws the SAME global batch
(C classes x K samples, from seed + epoch) and keeps its contiguous slice, so the
rank slices concatenated in rank order are exactly the single-process batch."""
from __future__ import annotations

import numpy as np
import torch

from pfml_core import guards


class DistributedClassBalancedSampler(torch.utils.data.Sampler):
    """Batch sampler: yields this rank's list of dataset indices per step.
    Use as DataLoader(dataset, batch_sampler=sampler); call set_epoch(e) each epoch.
    world_size=1 (the default outside torch.distributed) is a plain class-balanced sampler."""

    def __init__(self, labels, classes_per_batch: int, samples_per_class: int,
                 max_batches: int | None = None, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None):
        from pfml_core.training import distributed  # late: keeps this module free of process groups

        self.labels = np.asarray(labels).reshape(-1)
        self.classes = np.unique(self.labels)
        self.c = guards.check_int("classes_per_batch", classes_per_batch, 1, len(self.classes))
        self.k = guards.check_int("samples_per_class", samples_per_class, 1)
        self.world = guards.check_int("world_size", distributed.world_size()
                                      if world_size is None else world_size, 1)
        self.rank = guards.check_int("rank", distributed.rank() if rank is None else rank,
                                     0, self.world - 1)
        if (self.c * self.k) % self.world:
            raise ValueError(f"global batch classes_per_batch*samples_per_class = "
                             f"{self.c * self.k} must be divisible by world_size={self.world}")
        self.num_batches = max(len(self.labels) // (self.c * self.k), 1)  # about one pass
        if max_batches is not None:
            self.num_batches = min(self.num_batches, guards.check_int("max_batches", max_batches, 1))
        self.seed, self.epoch = int(seed), 0
        self._by_class = {c: np.flatnonzero(self.labels == c) for c in self.classes}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = guards.check_int("epoch", epoch, 0)

    def global_batch(self, rng: np.random.Generator) -> np.ndarray:
        """C distinct classes, K indices each (without replacement when the class has K)."""
        chosen = rng.choice(self.classes, size=self.c, replace=False)
        parts = [rng.choice(self._by_class[c], size=self.k,
                            replace=len(self._by_class[c]) < self.k) for c in chosen]
        return np.concatenate(parts)  # (C * K,)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])  # same stream on every rank
        share = self.c * self.k // self.world
        for _ in range(self.num_batches):
            batch = self.global_batch(rng)
            yield batch[self.rank * share:(self.rank + 1) * share].tolist()

    def __len__(self) -> int:
        return self.num_batches
