"""`python -m pfml_core suspects RUN_DIR` ranks a run folder's training labels;
`suspects --data FILE [--clean drop|relabel]` checks every label of a dataset
(pfml_core.lab.check_labels), writes every row ranked to a CSV, and optionally cleans the top
suspects, retrains and exports the cleaned data in the file's own format."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pfml_core.lab import check_labels, clean_export, cleaning, suspects


def add_parser(subparsers) -> None:
    u = subparsers.add_parser("suspects", help="rank a run folder's training labels, most "
                              "suspect first", description=suspects.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    u.add_argument("run_dir", nargs="?", default=None,
                   help="a run folder (python -m pfml_core train ... --out DIR); or --data")
    u.add_argument("--top", type=int, default=None, help="rows to write (default: all)")
    u.add_argument("--out", default="suspects.csv", help="CSV to write (default suspects.csv)")
    u.add_argument("--window", default="peak", help="epochs averaged: peak | all | a number")
    add_arguments(u)
    u.set_defaults(func=run_suspects)


def add_arguments(p) -> None:
    """The --data mode's flags, on the suspects subcommand's parser."""
    p.add_argument("--data", default=None,
                   help="check every label of this dataset instead (digits, mnist5k, .npz, "
                        ".csv, .zip of class folders): trains on every class and ranks every row")
    p.add_argument("--epochs", type=int, default=10, help="--data: epochs (default 10)")
    p.add_argument("--noise", type=float, default=0.0,
                   help="--data: flip this share of all labels first, to see how well the "
                        "flips are found (adds a 'flipped' column)")
    p.add_argument("--seed", type=int, default=0, help="--data: seed of training and noise")
    p.add_argument("--model", default="auto", help="--data: model (default auto)")
    p.add_argument("--device", default="auto", help="--data: auto | cpu | cuda | mps")
    p.add_argument("--max-batches", type=int, default=None, help="--data: batches per epoch")
    p.add_argument("--clean", choices=cleaning.HOWS, default=None,
                   help="--data: drop or relabel the top suspects (--top, default the estimated "
                        "number of label errors), retrain, compare R@1, export the cleaned data")
    p.add_argument("--cleaned", default=None,
                   help="--data --clean: where to write the cleaned data (default: beside --out, "
                        "in the data's format)")


def _cleaned_path(args) -> Path:
    if args.cleaned:
        return Path(args.cleaned)
    out = Path(args.out)
    return out.with_name(f"{out.stem}.cleaned{clean_export.suffix(args.data)}")


def run(args) -> int:
    """Check, write the CSV and print the cut-off and the top suspects; then clean. --top:
    the suspects listed and cleaned (default: the estimated number of label errors)."""
    if (args.run_dir is None) == (args.data is None):
        raise ValueError("give a run folder or --data FILE, one of them")
    if args.top is not None and args.top < 0:
        raise ValueError(f"--top must be at least 0, got {args.top}")
    cleaned = _cleaned_path(args) if args.clean else None
    extra = {"model": args.model, "device": args.device,
             "max_batches_per_epoch": args.max_batches}

    def on_epoch(snap):
        print(f"epoch {snap.epoch}/{args.epochs}: R@1 on the given labels "
              f"{100 * snap.metrics['R@1']:.1f}", file=sys.stderr, flush=True)

    chk = check_labels.check(args.data, args.epochs, args.noise, args.seed, callback=on_epoch,
                             **extra)
    n = check_labels.write_csv(chk, args.out)
    k = chk.cutoff if args.top is None else args.top
    print(f"wrote all {n} rows, most suspect first, to {args.out}\n"
          f"{check_labels.describe(chk)}\n{check_labels.SCORES}")
    cols = [*check_labels.COLUMNS, *(["flipped"] if chk.injected else [])]
    shown = chk.frame[cols].head(min(k, 20))
    print(f"top {len(shown)} of the {k} suspects:\n{shown.to_string(index=False)}")
    if args.clean:
        result = cleaning.retrain(chk, k, args.clean)
        print(cleaning.report([result]))
        y, keep = cleaning.cleaned_labels(chk, cleaning.top_rows(chk, k), args.clean)
        clean_export.export(args.data, chk.data, y, keep, cleaned)
        print(f"wrote the cleaned data ({int(keep.sum())} rows, {int((y != chk.data.y).sum())} "
              f"relabelled) to {cleaned}")
    return 0


def run_suspects(args) -> int:
    """Rank a run folder's training labels into a CSV; print the detection figures where
    the run flipped labels itself (true labels known), cleanlab's beside them."""
    if args.data is not None or args.run_dir is None:  # --data: every label of a dataset
        return run(args)
    if args.top is not None and args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    window = args.window if args.window in ("peak", "all") else _window(args.window)
    rm = suspects.from_run_folder(args.run_dir)
    frame = suspects.table(rm, window)
    n = suspects.write_csv(frame, args.out, args.top)
    s = suspects.summary(rm, window)
    print(f"wrote {n} of {len(frame)} training samples, most suspect first, to {args.out} "
          f"(margin averaged over epochs 1-{s['suspect_epochs']}; cleanlab flags "
          f"{s['cleanlab_issues']})")
    if rm.known:
        print(f"flipped labels: {int(rm.margins[-1].flipped.sum())}; AUROC margin "
              f"{s['suspect_auroc']:.3f}, cleanlab {s['cleanlab_auroc']:.3f}; precision at "
              f"that many: margin {s['suspect_precision']:.3f}, cleanlab {s['cleanlab_precision']:.3f}")
    return 0


def _window(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--window must be peak, all or a number of epochs, got {text!r}") from None
