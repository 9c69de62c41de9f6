"""Command line: `python -m pfml_core train --data mnist5k --loss pfml --alpha 3 --delta 0.2
--noise 0.2 --epochs 20 --out runs/NAME` writes a run folder (see pfml_core.training.run_folder).
`torchrun --nproc_per_node=N -m pfml_core train --config cub200_resnet50 --data-root DIR`
runs the same engine on N processes (pfml_core.training.distributed); flags given explicitly
override the config file."""
from __future__ import annotations

import argparse
import json
import sys

from pfml_core.lab import commands as lab_cli
from pfml_core.training.config import TrainConfig

LOSS_FLAGS = {"alpha": float, "delta": float, "delta_rep": float, "proxies_per_class": int,
              "margin": float}


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train an embedding network and write a run folder")
    d = TrainConfig()
    p.add_argument("--config", default=None,
                   help="a configs/*.toml name or path (the paper's benchmark setups)")
    p.add_argument("--data", default=d.data,
                   help="mnist5k | digits | image folder | .zip | .npz | .csv | cub200 | cars196 | sop")
    p.add_argument("--data-root", default=None, help="a benchmark's unpacked folder")
    p.add_argument("--split", default=d.split, choices=["zero-shot", "same-classes"])
    p.add_argument("--model", default=d.model, choices=["auto", "mlp", "cnn", "resnet18", "resnet50"])
    p.add_argument("--embedding-size", type=int, default=d.embedding_size)
    p.add_argument("--pretrained", action="store_true", help="ImageNet weights (needs internet)")
    p.add_argument("--loss", default=d.loss)
    for flag, typ in LOSS_FLAGS.items():
        p.add_argument("--" + flag.replace("_", "-"), type=typ, default=None,
                       help="loss parameter (only for losses that take it)")
    p.add_argument("--loss-params", default="{}", help="JSON dict of further loss parameters")
    for name in ("noise", "lr", "proxy_lr_multiplier", "weight_decay"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    for name in ("epochs", "classes_per_batch", "samples_per_class", "eval_subset", "seed"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--max-batches", type=int, default=None, help="cap batches per epoch")
    p.add_argument("--device", default=d.device)
    p.add_argument("--freeze-bn", action="store_true", help="BatchNorm fixed (ResNets)")
    p.add_argument("--warmup-epochs", type=int, default=d.warmup_epochs,
                   help="first epochs train only the head and proxies")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    p.add_argument("--out", default=None, help="run folder (default runs/<time>-<loss>-<data>)")
    p.set_defaults(func=run_train)


FIELDS = ("data", "split", "model", "embedding_size", "pretrained", "loss", "noise", "epochs",
          "lr", "proxy_lr_multiplier", "weight_decay", "classes_per_batch", "samples_per_class",
          "eval_subset", "seed", "device", "freeze_bn", "warmup_epochs", "amp")
# flags named exactly like TrainConfig fields


def _loss_params(a) -> dict:
    """--loss-params (a JSON dict) with the named loss flags laid over it."""
    try:
        params = json.loads(a.loss_params)
    except json.JSONDecodeError as e:
        raise ValueError(f"--loss-params must be a JSON dict, got {a.loss_params!r} ({e})") from None
    if not isinstance(params, dict):
        raise ValueError(f"--loss-params must be a JSON dict, got {a.loss_params!r}")
    params.update({k: getattr(a, k) for k in LOSS_FLAGS if getattr(a, k) is not None})
    return params


def config_from_args(a) -> TrainConfig:
    """TrainConfig from flags, or from --config with the flags that differ from their
    defaults laid over it."""
    flags, params = {k: getattr(a, k) for k in FIELDS}, _loss_params(a)
    if a.config is None:
        return TrainConfig(**flags, loss_params=params, data_root=a.data_root,
                           max_batches_per_epoch=a.max_batches).validate()
    from pfml_core.training import presets as configs

    defaults = vars(build_parser().parse_args(["train"]))
    given = {k: v for k, v in flags.items() if v != defaults[k]}
    if a.max_batches is not None:
        given["max_batches_per_epoch"] = a.max_batches
    config = configs.train_config(configs.load_config(a.config, data_root=a.data_root, **given))
    config.loss_params = {**config.loss_params, **params}
    return config.validate()


def run_train(a) -> int:
    import torch.distributed
    from tqdm import tqdm

    from pfml_core.training import distributed
    from pfml_core.training import run_folder as runs
    from pfml_core.data.benchmarks import BENCHMARKS
    from pfml_core.data.bundled import load_dataset
    from pfml_core.training.engine import train

    config = config_from_args(a)
    distributed.init_from_env()  # torchrun: join the group; a plain run: nothing
    lead = distributed.rank() == 0
    # bad data fails here, before the progress bar; benchmarks are read lazily by train()
    dataset = None if config.data in BENCHMARKS else load_dataset(config.data)
    out = a.out
    if out is None and lead:
        out = runs.new_run_dir(config)
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
    if distributed.is_distributed():
        torch.distributed.destroy_process_group()
    if not lead:
        return 0
    last = result.history[-1]
    print(f"done: {len(result.history) - 1} epochs, R@1 {last.metrics['R@1']:.4f}, "
          f"MAP@R {last.metrics['MAP@R']:.4f} -> {result.out_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pfml_core", description="PFML Studio tools")
    sub = parser.add_subparsers(dest="command", required=True)
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
