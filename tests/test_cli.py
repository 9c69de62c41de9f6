"""`python -m pfml_core train`: writes a run folder the app can reopen; bad input gives a
one-line error and exit code 2, no traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

from pfml_core import cli
from pfml_core.training import run_folder as runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_writes_run_folder(tmp_path):
    out = tmp_path / "r1"
    rc = cli.main(["train", "--data", "digits", "--loss", "pfml", "--alpha", "2.5", "--delta", "0.25",
                   "--noise", "0.2", "--epochs", "2", "--max-batches", "3", "--eval-subset", "200",
                   "--out", str(out)])
    assert rc == 0
    assert {"config.json", "metrics.csv", "checkpoint.pt", "embeddings"} <= {p.name for p in out.iterdir()}
    assert {"static.npz", "epoch-0000.npz", "epoch-0002.npz"} <= {p.name for p in (out / "embeddings").iterdir()}
    run = runs.load_run(out)
    assert run.config.loss_params == {"alpha": 2.5, "delta": 0.25} and run.config.noise == 0.2
    assert list(run.metrics["epoch"]) == [0, 1, 2]
    assert run.embeddings["emb"].shape == (3, 200, 64)


def _bad_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,nan,1\n")
    return bad


def test_bad_data_is_one_clear_line(tmp_path, capsys):
    assert cli.main(["train", "--data", str(_bad_csv(tmp_path)), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "NaN" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # a fresh interpreter: python -m pfml_core
def test_bad_input_is_one_clear_line(tmp_path):
    bad = _bad_csv(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pfml_core", "train", "--data", str(bad),
                           "--out", str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "NaN" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_loss_param():
    assert cli.main(["train", "--loss", "triplet", "--alpha", "3"]) == 2


def _config(*argv):
    return cli.config_from_args(cli.build_parser().parse_args(["train", *argv]))


CUB = ("--config", "cub200_resnet50", "--data-root", "/data/CUB_200_2011")


def test_flag_equal_to_its_default_wins_over_the_config_file():
    # each value is TrainConfig's default (the old parser default), each differs from the file
    c = _config(*CUB, "--lr", "0.001", "--weight-decay", "0.0001", "--epochs", "10",
                "--embedding-size", "64", "--classes-per-batch", "8", "--samples-per-class", "8",
                "--warmup-epochs", "0", "--eval-subset", "1000")
    assert (c.lr, c.weight_decay, c.epochs, c.embedding_size) == (0.001, 0.0001, 10, 64)
    assert (c.classes_per_batch, c.samples_per_class, c.warmup_epochs, c.eval_subset) == \
        (8, 8, 0, 1000)
    # what the flags leave out comes from the file, not from TrainConfig's defaults
    assert (c.data, c.model, c.proxy_lr_multiplier, c.data_root) == \
        ("cub200", "resnet50", 100.0, "/data/CUB_200_2011")
    assert c.loss_params == {"alpha": 3.0, "delta": 0.2, "proxies_per_class": 15}


def test_no_flags_turn_off_the_config_files_booleans():
    on = _config(*CUB)
    assert (on.amp, on.pretrained, on.freeze_bn) == (True, True, True)  # the file's values
    assert on.lr == 1e-4 and on.weight_decay == 5e-4
    off = _config(*CUB, "--no-amp", "--no-pretrained", "--no-freeze-bn")
    assert (off.amp, off.pretrained, off.freeze_bn) == (False, False, False)
    assert _config(*CUB, "--no-amp").freeze_bn is True  # only the flag given changes


def test_plain_run_takes_trainconfig_defaults_and_flags():
    c = _config("--data", "digits")
    assert (c.amp, c.pretrained, c.freeze_bn, c.lr, c.epochs) == (False, False, False, 1e-3, 10)
    c = _config("--data", "digits", "--amp", "--freeze-bn", "--lr", "0.01", "--max-batches", "3")
    assert (c.amp, c.freeze_bn, c.pretrained, c.lr, c.max_batches_per_epoch) == \
        (True, True, False, 0.01, 3)


def test_loss_flags_over_the_config_files_loss_params():
    c = _config(*CUB, "--alpha", "2", "--loss-params", '{"delta_rep": 0.3}')
    assert c.loss_params == {"alpha": 2.0, "delta": 0.2, "proxies_per_class": 15, "delta_rep": 0.3}
    # another loss than the file's: the file's PFML parameters do not carry over
    c = _config(*CUB, "--loss", "triplet", "--margin", "0.1")
    assert (c.loss, c.loss_params) == ("triplet", {"margin": 0.1})


def test_bad_loss_params_json():
    with pytest.raises(ValueError, match="--loss-params must be a JSON dict"):
        _config("--loss-params", "[1, 2]")
    with pytest.raises(ValueError, match="--loss-params must be a JSON dict"):
        _config("--loss-params", "{alpha: 3}")


def test_one_entry_point_and_a_worker_any_machine_can_start():
    import pfml_core.lab.commands
    import pfml_core.lab.worker

    assert not hasattr(pfml_core.lab.commands, "main") and not hasattr(pfml_core.lab.worker, "main")
    parser = cli.build_parser()
    assert "lab-worker" in parser.format_help() and "--train-fn" not in parser.format_help()
    args = parser.parse_args(["lab-worker", "--study", "noise-1", "--storage", "sqlite:///s.sqlite",
                              "--train-fn", "m:f"])
    assert (args.study, args.storage, args.train_fn) == ("noise-1", "sqlite:///s.sqlite", "m:f")


