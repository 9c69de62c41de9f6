"""`python -m pfml_core suspects --data FILE [--clean drop|relabel]`: check every label of a
dataset (pfml_core.lab.check_labels), write every row ranked to a CSV, and optionally clean
the top suspects, retrain and export the cleaned data in the file's own format
(pfml_core.lab.cleaning, pfml_core.lab.clean_export)."""
from __future__ import annotations

import sys
from pathlib import Path

from pfml_core.lab import check_labels, clean_export, cleaning


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
