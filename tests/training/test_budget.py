"""A training run's resource budget (pfml_core/training/budget.py, issue 18 item 1): the
issue's settings (proxies_per_class 200000 and 1e9, samples_per_class 10000 on digits) are
refused at once with the setting and the budget named, in the library, the CLI, the lab's
grids, the engine and when a past run is opened; alpha and delta keep the loss finite."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from pfml_core import cli
from pfml_core.data import split
from pfml_core.data.bundled import load_dataset
from pfml_core.physics import PotentialFieldLoss
from pfml_core.training import budget, run_folder
from pfml_core.training.config import TrainConfig
from pfml_core.training.engine import train
from tests import abuse_files as af


def digits(**kw) -> TrainConfig:
    return TrainConfig(**{"data": "digits", "device": "cpu", **kw})


def _noop():
    return 0


@pytest.mark.parametrize("m", [200_000, 1_000_000, 10**9])
def test_proxies_per_class_is_refused_fast_without_allocating(m):
    digits().validate()  # imports and the model's size, once
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=rf"proxies_per_class={m} \({5 * m:,} proxies\).*") as e:
        digits(loss_params={"proxies_per_class": m}).validate()
    assert time.perf_counter() - t0 < 0.5
    assert "PFML_MAX_RUN_MEMORY" in str(e.value) and "\n" not in str(e.value)
    # the 1e9 case once tried to allocate 512 GB: the refusal must cost nothing
    base = af.measure(_noop)["peak_mib"]
    got = af.measure(lambda: digits(loss_params={"proxies_per_class": m}).validate())
    assert got["outcome"] == "refused" and got["peak_mib"] - base < 100, got


def test_the_proxies_disk_estimate_is_the_issues_256_mb_epoch_file():
    """digits, zero-shot: 5 training classes x 200000 proxies x 64 float32 = 256 MB in each
    of the 11 epoch files (epochs 0..10, as the issue measured), and 3 copies in the
    checkpoint (the proxies and Adam's two moments)."""
    cfg = digits(loss_params={"proxies_per_class": 200_000})
    mem, disk = budget.estimate(cfg, budget.bundled_shape("digits", "zero-shot"))
    assert disk["proxies_per_class"] == 256_000_000 * (11 + 3)
    assert mem["proxies_per_class"] > 4 * 256_000_000  # weights, gradient, two moments


def test_samples_per_class_10000_is_refused_and_1000_is_not():
    with pytest.raises(ValueError, match=r"classes_per_batch x samples_per_class \(a batch of "
                                         r"50,000\).*") as e:
        digits(samples_per_class=10_000).validate()  # 5 training classes x 10000
    assert "PFML_MAX_RUN_MEMORY" in str(e.value) and "2.0 GiB" in str(e.value)
    digits(samples_per_class=1000).validate()
    TrainConfig(data="mnist5k", device="cpu").validate()


def test_the_budgets_come_from_the_environment(monkeypatch):
    cfg = digits(loss_params={"proxies_per_class": 200_000})
    shape = budget.bundled_shape("digits", "zero-shot")
    monkeypatch.setenv("PFML_MAX_RUN_MEMORY", "64G")
    with pytest.raises(ValueError, match=r"write about 3.3 GiB to disk over 10 epochs, over the "
                                         r"512 MiB per run \(PFML_MAX_RUN_DISK\); most of it for "
                                         r"proxies_per_class=200000"):
        budget.check(cfg, shape)  # a run folder's disk: checked where one is written
    budget.check(cfg, shape, disk=False)
    monkeypatch.setenv("PFML_MAX_RUN_DISK", "4G")
    budget.check(cfg, shape)
    with pytest.raises(ValueError, match=r"proxies_per_class must be at most 1000, got 200000"):
        cfg.validate()  # past the budgets, the loss's own bound
    monkeypatch.setenv("PFML_MAX_RUN_MEMORY", "1536")
    assert budget.limit("MAX_RUN_MEMORY") == 1536 * 2**20
    monkeypatch.setenv("PFML_MAX_RUN_MEMORY", "800M")
    assert budget.limit("MAX_RUN_MEMORY") == 800 * 2**20
    monkeypatch.setenv("PFML_MAX_RUN_MEMORY", "lots")
    with pytest.raises(ValueError, match=r"PFML_MAX_RUN_MEMORY must be a size"):
        digits().validate()


def test_bundled_shapes_match_the_data_and_bound_its_split():
    for name in ("digits", "mnist5k"):
        d = load_dataset(name)
        assert budget.BUNDLED[name] == (d.X.shape[1:], tuple(np.bincount(d.y)))
        for mode in ("zero-shot", "same-classes"):
            got = budget.bundled_shape(name, mode)
            assert got == budget.dataset_shape(d, mode)
            tr, te = split(d, mode, 0)
            assert got.train_rows >= len(tr.y) and got.test_rows >= len(te.y)
            assert got.train_rows - len(tr.y) <= 10 and got.train_classes == tr.num_classes
    assert budget.bundled_shape("digits", "zero-shot").train_rows == 178 + 182 + 177 + 183 + 181


def test_cli_and_lab_grid_refuse_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["train", "--data", "digits", "--proxies-per-class", "1000000", "--epochs",
                   "1", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "PFML_MAX_RUN_MEMORY" in err and err.count("\n") == 1, err
    assert not out.exists()
    from pfml_core.lab import grid

    with pytest.raises(ValueError, match="PFML_MAX_RUN_MEMORY.*samples_per_class"):
        grid.noise_grid("digits", ["pfml"], [0.0], [0], base={"samples_per_class": 10_000,
                                                               "device": "cpu"})


def test_the_engine_refuses_user_data_before_the_model_exists(tmp_path):
    """Data that validate() cannot size (a path, a Dataset) is checked once loaded."""
    cfg = TrainConfig(data="mine", device="cpu", samples_per_class=10_000).validate()
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"PFML_MAX_RUN_MEMORY.*a batch of 50,000"):
        train(cfg, out_dir=tmp_path / "r", dataset=load_dataset("digits"))
    assert time.perf_counter() - t0 < 2 and not (tmp_path / "r" / "config.json").exists()


def _fake_run(path, mb: float):
    (path / "embeddings").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(TrainConfig(data="digits").to_dict()))
    np.savez(path / "embeddings" / "static.npz", labels=np.zeros(4, np.int64))
    np.savez(path / "embeddings" / "epoch-0000.npz",
             emb=np.zeros((int(mb * 2**20) // 256, 64), np.float32))
    return path


def test_a_past_run_over_the_memory_budget_is_not_opened(tmp_path, monkeypatch):
    """3 MiB of arrays: read and stacked (2 x 3) plus one epoch's map (9 x 3) = 33 MiB."""
    run = _fake_run(tmp_path / "big", 3)
    monkeypatch.setenv("PFML_MAX_RUN_MEMORY", "34M")
    assert run_folder.load_run(run).embeddings["emb"].shape == (1, 3 * 4096, 64)
    monkeypatch.setenv("PFML_MAX_RUN_MEMORY", "32M")
    with pytest.raises(ValueError, match=r"^run big would take about 33 MiB to open \(3 MiB of "
                                         r"arrays\), over the 32 MiB per run "
                                         r"\(PFML_MAX_RUN_MEMORY\): it is not opened$"):
        run_folder.load_run(run)


def test_alpha_and_delta_keep_the_loss_finite_in_float32():
    with pytest.raises(ValueError, match=r"alpha must be at most 16 .*got 1e\+06"):
        digits(loss_params={"alpha": 1e6}).validate()
    # delta^-alpha: 0.001^-10 = 1e30 is the largest pair term allowed, 0.001^-10.5 is not
    PotentialFieldLoss(2, 8, alpha=10.0, delta=1e-3)
    with pytest.raises(ValueError, match=r"delta=0.001 with alpha=10.5 .*raise delta"):
        PotentialFieldLoss(2, 8, alpha=10.5, delta=1e-3)
    with pytest.raises(ValueError, match=r"delta=1e-300"):
        digits(loss_params={"delta": 1e-300}).validate()
    # 1000 coincident same-class points: 999,000 ordered pairs, each -delta^-alpha
    same = torch.zeros(1000, dtype=torch.long)
    loss = PotentialFieldLoss(1, 8, proxies_per_class=0, alpha=3.0, delta=0.2, check=True)
    assert loss(torch.ones(1000, 8), same).item() == pytest.approx(-999_000 * 125, rel=1e-5)
    for alpha, delta in ((10.0, 1e-3), (16.0, 0.0134)):  # the worst cases allowed
        loss = PotentialFieldLoss(1, 8, proxies_per_class=0, alpha=alpha, delta=delta, check=True)
        energy = loss(torch.ones(1000, 8), same).item()
        assert -999_000 * 1e30 <= energy < 0  # finite in float32


def test_disk_is_checked_only_where_a_run_folder_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_MAX_RUN_DISK", "1M")  # a digits epoch file alone is ~0.5 MiB
    cfg = digits(epochs=1, max_batches_per_epoch=1).validate()
    with pytest.raises(ValueError, match=r"over 1 epochs, over the 1 MiB per run "
                                         r"\(PFML_MAX_RUN_DISK\)"):
        train(cfg, out_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    assert len(train(cfg).history) == 2  # no folder (the lab's runs): nothing to refuse


def test_the_restated_engine_sizes_are_the_engines():
    from pfml_core.training import engine, loaders

    assert (budget.MARGIN_ROWS, budget.FULL_METRICS_ROWS) == (engine.MARGIN_ROWS,
                                                             engine.FULL_METRICS_ROWS)
    assert (budget.SNAPSHOT_ROWS, budget.EVAL_BATCH) == (loaders.SNAPSHOT_ROWS, loaders.EVAL_BATCH)
