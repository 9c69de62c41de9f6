"""Command line, the one entry point: `python -m pfml_core train --data mnist5k --loss pfml
--out runs/NAME` writes a run folder (pfml_core.training.run_folder); the lab's commands are
pfml_core.lab.commands; under torchrun the same engine runs on N processes. A flag given on
the command line always wins over the --config file, whose values win over TrainConfig's
defaults. Bad input and storage faults are one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

from pfml_core.data import faults
from pfml_core.data.dataset import SPLITS
from pfml_core.lab import commands as lab_cli
from pfml_core.lab import studies
from pfml_core.training.config import TrainConfig
from pfml_core.training.models import MODELS

LOSS_FLAGS = {"alpha": float, "delta": float, "delta_rep": float, "proxies_per_class": int,
              "margin": float}
VALUE_FLAGS = {  # TrainConfig field: type; the flag is --field-name
    "data": str, "split": str, "model": str, "embedding_size": int, "loss": str,
    "noise": float, "epochs": int, "lr": float, "proxy_lr_multiplier": float,
    "weight_decay": float, "classes_per_batch": int, "samples_per_class": int,
    "eval_subset": int, "seed": int, "device": str, "warmup_epochs": int}
BOOL_FLAGS = ("pretrained", "freeze_bn", "amp")  # --amp / --no-amp
OUT_FILES = {"lab-export": ("out", "curves"), "suspects": ("out",),  # CSVs written
             "noise-lab": ("export", "curves"), "sweep": ("export",)}
CHOICES = {"split": SPLITS, "model": MODELS}
HELP = {
    "data": "mnist5k | digits | image folder | .zip | .npz | .csv | cub200 | cars196 | sop",
    "loss": "pfml | proxy_anchor | proxy_nca | multi_similarity | triplet | contrastive",
    "warmup_epochs": "first epochs train only the head and proxies",
    "pretrained": "ImageNet weights (needs internet)",
    "freeze_bn": "BatchNorm fixed (ResNets)",
    "amp": "bfloat16 autocast on CUDA (ignored elsewhere)",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train an embedding network and write a run folder",
                       description="A flag left out takes the --config file's value if there "
                                   "is one, else the default shown.")
    d = TrainConfig()
    p.add_argument("--config", default=None,
                   help="a configs/*.toml name or path (the paper's benchmark setups)")
    p.add_argument("--data-root", default=None, help="a benchmark's unpacked folder")
    # default=None means "not given": only then does the config file or TrainConfig decide
    for name, typ in VALUE_FLAGS.items():
        p.add_argument(_flag(name), type=typ, default=None, choices=CHOICES.get(name),
                       help=f"{HELP.get(name, '')} (default: {getattr(d, name)})".lstrip())
    for name in BOOL_FLAGS:
        p.add_argument(_flag(name), action=argparse.BooleanOptionalAction, default=None,
                       help=f"{HELP[name]} (default: {getattr(d, name)})")
    for name, typ in LOSS_FLAGS.items():
        p.add_argument(_flag(name), type=typ, default=None,
                       help="loss parameter (only for losses that take it)")
    p.add_argument("--loss-params", default=None, help="JSON dict of further loss parameters")
    p.add_argument("--max-batches", type=int, default=None, help="cap batches per epoch")
    p.add_argument("--out", default=None, help="run folder (default runs/<time>-<loss>-<data>)")
    p.set_defaults(func=run_train)


def _loss_params(a) -> dict:
    """--loss-params (a JSON dict) with the named loss flags laid over it."""
    params = {}
    if a.loss_params is not None:
        try:
            params = json.loads(a.loss_params)
        except RecursionError:
            raise ValueError("--loss-params is nested too deeply; it must be a flat JSON dict") from None
        except ValueError as e:
            raise ValueError(f"--loss-params must be a JSON dict, got {a.loss_params[:80]!r} "
                             f"({e})") from None
        if not isinstance(params, dict):
            raise ValueError(f"--loss-params must be a JSON dict, got {a.loss_params!r}")
    params.update({k: getattr(a, k) for k in LOSS_FLAGS if getattr(a, k) is not None})
    return params


def given_fields(a) -> dict:
    """The TrainConfig fields set on the command line (a flag left out is None)."""
    given = {k: getattr(a, k) for k in (*VALUE_FLAGS, *BOOL_FLAGS) if getattr(a, k) is not None}
    if a.max_batches is not None:
        given["max_batches_per_epoch"] = a.max_batches
    if a.data_root is not None:
        given["data_root"] = a.data_root
    return given


def config_from_args(a) -> TrainConfig:
    """TrainConfig from the flags given, laid over the --config file when there is one, laid
    over TrainConfig's defaults. The file's loss_params are kept only for the file's loss."""
    given, params = given_fields(a), _loss_params(a)
    if a.config is None:
        return TrainConfig(**given, loss_params=params).validate()
    from pfml_core.training import presets

    base = presets.load_config(a.config, data_root=a.data_root)
    flat = {**base, **given}
    kept = base["loss_params"] if flat["loss"] == base["loss"] else {}
    return presets.train_config({**flat, "loss_params": {**kept, **params}}).validate()


def run_train(a) -> int:
    from tqdm import tqdm

    from pfml_core.data.benchmarks import BENCHMARKS
    from pfml_core.data.bundled import load_dataset
    from pfml_core.training import distributed, run_folder
    from pfml_core.training.engine import train

    config = config_from_args(a)
    distributed.init_from_env()  # torchrun: join the group; a plain run: nothing
    lead = distributed.rank() == 0
    if not distributed.is_distributed():  # torchrun picks each rank's device itself
        check_device(config.device)
    out, created = a.out, None
    if lead:  # made before the data loads, so a bad --out fails at once
        created = run_folder.new_run_dir(config) if out is None else _make_out(out)
        out = created if out is None else out
    bar = None

    def on_epoch(s):
        if s.epoch:
            bar.update(1)
        bar.set_postfix(loss=f"{s.loss:.4g}", R1=f"{s.metrics['R@1']:.3f}")

    try:
        # bad data fails here, before the progress bar; benchmarks are read lazily by train()
        dataset = None if config.data in BENCHMARKS else load_dataset(config.data)
        bar = tqdm(total=config.epochs, unit="epoch", desc=f"{config.loss} on {config.data}",
                   disable=not lead)
        result = train(config, callback=on_epoch, out_dir=out, dataset=dataset)
    except BaseException as e:
        if bar is not None:
            bar.close()
        kept = not _discard(created, out)
        if not isinstance(e, KeyboardInterrupt):
            raise
        print(f"interrupted; finished epochs are in {out}" if kept else
              "interrupted before the first epoch; no run folder was kept", file=sys.stderr)
        return 130
    bar.close()
    distributed.shutdown()
    if not lead:
        return 0
    last = result.history[-1]
    print(f"done: {len(result.history) - 1} epochs, R@1 {last.metrics['R@1']:.4f}, MAP@R {last.metrics['MAP@R']:.4f} "
          f"-> {result.out_dir}")
    return 0


def _make_out(out: str) -> Path | None:
    """Create --out (and missing parents); the topmost folder this made, None if it existed."""
    path = Path(out)
    if path.exists() and not path.is_dir():  # a file, /dev/null
        raise ValueError(f"--out {out} exists and is not a folder; give a run folder")
    made = next((p for p in reversed([path, *path.parents]) if not p.exists()), None)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: the folder cannot be made ({_said(e)})") from None
    return made


def _discard(created: Path | None, out) -> bool:
    """Remove the folder this command made for a run that wrote no epoch; True if removed."""
    if created is None or out is None or (Path(out) / "metrics.csv").exists():
        return False
    shutil.rmtree(created, ignore_errors=True)
    return True


def check_device(name: str) -> None:
    """A device this machine has ('auto' always); checked before any data is read."""
    import torch

    kind, _, index = str(name).partition(":")
    if kind == "cuda" and re.fullmatch(r"\d*", index):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not n or int(index or 0) >= n:
            raise ValueError(f"device {name!r}: this machine has {n} CUDA GPUs; use --device cpu or auto")
    mps = getattr(torch.backends, "mps", None)
    if kind == "mps" and not (mps and mps.is_available()):
        raise ValueError("device 'mps': no Apple GPU here; use --device cpu or auto")


def _check_file(path: str) -> None:
    """A CSV the command will write: not a folder, and in a folder that exists."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{path} is a folder; give a file name to write")
    if not p.parent.is_dir():
        raise ValueError(f"{path}: the folder {p.parent} does not exist")


def check_args(a) -> None:
    """What was typed, checked before any work: files to write, the store, the device."""
    for flag in OUT_FILES.get(a.command, ()):
        if getattr(a, flag) is not None:
            _check_file(getattr(a, flag))
    store = getattr(a, "store", None)
    if store is not None and not Path(store).parent.is_dir():
        raise ValueError(f"--store {store}: the folder {Path(store).parent} does not exist")
    named, file = getattr(a, "storage", None) or os.environ.get(studies.ENV), Path(store or studies.default_path())
    if a.command in ("lab-export", "lab-resume") and not named and not file.exists():
        raise ValueError(f"no lab store at {file}")
    if a.command in ("noise-lab", "sweep"):
        check_device(a.device)
    tiny = [d for d in a.delta if 0 < d < 1e-6] if a.command == "sweep" else []
    if tiny:  # the sweep keeps delta + gap to 6 decimals: smaller is 0
        raise ValueError(f"--delta must be at least 1e-6, got {tiny[0]:g}")


def _said(e: Exception) -> str:
    """A fault (full, read-only, forbidden disk) as faults says it, else the error's words."""
    if isinstance(e, ValueError) or (said := faults.describe(e)) is not None:
        return str(e) if isinstance(e, ValueError) else said
    if isinstance(e, OSError):
        return (e.strerror or str(e)) + (f": {e.filename}" if e.filename else "")
    return f"the lab store could not be used ({type(e).__name__})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pfml_core", description="PFML Studio tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(sub)
    lab_cli.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
        return int(args.func(args) or 0)
    except (ValueError, OSError, *studies.STORAGE_ERRORS) as e:  # bad input or a storage fault: one line
        print(f"error: {' '.join(_said(e).split())}", file=sys.stderr)
        return 2
