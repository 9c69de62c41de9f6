"""Training: the config, embedding models, the loss registry (PFML and its baselines),
the engine, run folders, background jobs and torchrun support."""
from pfml_core.training.config import TrainConfig
from pfml_core.training.engine import resolve_device, train
from pfml_core.training.job import TrainJob
from pfml_core.training.losses import LOSSES
from pfml_core.training.models import MODELS
from pfml_core.training.run_folder import list_runs, load_run, new_run_dir, runs_dir, snapshots
from pfml_core.training.snapshot import EpochSnapshot, TrainResult

__all__ = ["EpochSnapshot", "LOSSES", "MODELS", "TrainConfig", "TrainJob", "TrainResult",
           "list_runs", "load_run", "new_run_dir", "resolve_device", "runs_dir", "snapshots", "train"]
