"""Command line, the one entry point: `python -m pfml_core train --data mnist5k --loss pfml
--alpha 3 --delta 0.2 --noise 0.2 --epochs 20 --out runs/NAME` writes a run folder (see
pfml_core.training.run_folder); `noise-lab`, `sweep`, `lab-resume` and `lab-export` are
the lab's (pfml_core.lab.commands). `torchrun --nproc_per_node=N -m pfml_core train --config
cub200_resnet50 --data-root DIR` runs the same engine on N processes
(pfml_core.training.distributed).

A flag given on the command line always wins over the --config file, even when it equals
TrainConfig's default (`--lr 0.001`, `--no-amp`); TrainConfig's defaults fill in only what
neither the flags nor the file set."""
from __future__ import annotations

import argparse
import json
import sys

from pfml_core.data.dataset import SPLITS
from pfml_core.lab import commands as lab_cli
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
        except json.JSONDecodeError as e:
            raise ValueError(f"--loss-params must be a JSON dict, got {a.loss_params!r} "
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
    flat["loss_params"] = {**kept, **params}
    return presets.train_config(flat).validate()


def run_train(a) -> int:
    from tqdm import tqdm

    from pfml_core.data.benchmarks import BENCHMARKS
    from pfml_core.data.bundled import load_dataset
    from pfml_core.training import distributed
    from pfml_core.training import run_folder
    from pfml_core.training.engine import train

    config = config_from_args(a)
    distributed.init_from_env()  # torchrun: join the group; a plain run: nothing
    lead = distributed.rank() == 0
    # bad data fails here, before the progress bar; benchmarks are read lazily by train()
    dataset = None if config.data in BENCHMARKS else load_dataset(config.data)
    out = a.out
    if out is None and lead:
        out = run_folder.new_run_dir(config)
    bar = tqdm(total=config.epochs, unit="epoch", desc=f"{config.loss} on {config.data}",
               disable=not lead)

    def on_epoch(s):
        if s.epoch:
            bar.update(1)
        bar.set_postfix(loss=f"{s.loss:.4g}", R1=f"{s.metrics['R@1']:.3f}")

    try:
        result = train(config, callback=on_epoch, out_dir=out, dataset=dataset)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted; finished epochs are in {out}", file=sys.stderr)
        return 130
    bar.close()
    distributed.shutdown()
    if not lead:
        return 0
    last = result.history[-1]
    print(f"done: {len(result.history) - 1} epochs, R@1 {last.metrics['R@1']:.4f}, "
          f"MAP@R {last.metrics['MAP@R']:.4f} -> {result.out_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pfml_core", description="PFML Studio tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(sub)
    lab_cli.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as e:  # bad input: a clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
