"""The paper's ResNet-50 setups (configs/*.toml) -> one flat dict: the TrainConfig fields
(pfml_core.training.config) plus the benchmark extras below, validated; and the BN freezing
and image transforms those settings call for (the model: pfml_core.training.models)."""
from __future__ import annotations

import tomllib
from pathlib import Path

from pfml_core import guards

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # package data
EXTRAS = {  # name: default; fields of a config file beyond TrainConfig's
    "dataset": None,       # key of pfml_core.data.benchmarks.BENCHMARKS (becomes TrainConfig.data)
}
TABLES = ("optim", "batch", "run")  # TOML tables merged into the top level for readability
IMAGE_SIZE, RESIZE = 224, 256  # the paper's crops: train 224 random, test 256 -> centre 224


def config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def _read(path_or_name) -> tuple[Path, dict]:
    path = Path(path_or_name)
    if not path.suffix and not path.exists():
        path = CONFIG_DIR / f"{path_or_name}.toml"
    if not path.is_file():
        raise ValueError(f"config {str(path_or_name)!r} is neither a .toml file nor one of "
                         f"{config_names()}")
    try:
        return path, tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config {str(path)!r} is not valid TOML: {e}") from None


def _flatten(raw: dict, path: Path) -> dict:
    flat = {k: v for k, v in raw.items() if k not in TABLES}
    for table in TABLES:
        for key, value in raw.get(table, {}).items():
            if key in flat:
                raise ValueError(f"config {str(path)!r}: {key!r} is set twice")
            flat[key] = value
    return flat


def load_config(path_or_name, data_root: str | None = None, **overrides) -> dict:
    """A config file (or the name of one in configs/) -> flat dict of TrainConfig fields
    and EXTRAS; data_root/overrides replace file values. data = the dataset name."""
    from pfml_core.data.benchmarks import BENCHMARKS
    from pfml_core.training.config import TrainConfig

    path, raw = _read(path_or_name)
    flat = {**EXTRAS, **_flatten(raw, path), **overrides}
    if data_root is not None:
        flat["data_root"] = str(data_root)
    guards.check_choice("dataset", flat["dataset"], BENCHMARKS)
    flat.setdefault("data", flat["dataset"])
    train_fields = {k: v for k, v in flat.items() if k not in EXTRAS}
    try:
        TrainConfig.from_dict(train_fields).validate()
    except (ValueError, TypeError) as e:
        raise ValueError(f"config {str(path)!r}: {e}") from None
    return flat


def train_config(flat: dict):
    """The TrainConfig part of a loaded config."""
    from pfml_core.training.config import TrainConfig

    return TrainConfig.from_dict({k: v for k, v in flat.items() if k not in EXTRAS})


def freeze_batchnorm(model):
    """BatchNorm layers to eval mode (running statistics fixed) with their weight and bias
    fixed. model.train() switches BN back: call this again after every model.train()."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)
    return model


def build_transforms(config: dict | None = None):
    """(train, eval) PIL -> tensor transforms of the paper: IMAGE_SIZE random resized crops
    (scale (0.08, 1)) + flip; shorter side to RESIZE, centre IMAGE_SIZE crop. The same for
    every config. Not normalised: pfml_core.training.models' ResNet normalises its input."""
    from pfml_core.data.transforms import eval_transform, train_transform

    return (train_transform(IMAGE_SIZE, normalize=False),
            eval_transform(RESIZE, IMAGE_SIZE, normalize=False))
