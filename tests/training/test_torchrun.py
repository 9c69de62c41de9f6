"""`torchrun -m pfml_core train` end to end on CPU (gloo): two processes train exactly as one
process on the concatenated batch, rank 0 alone writes the run folder, and a benchmark
folder (tiny generated SOP layout) trains a ResNet-18 (weights=None) with the paper's
config file under two processes."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pfml_core.training import run_folder as runs

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.distributed, pytest.mark.timeout(300)]


def _features(path: Path) -> Path:
    """8 classes x 12 samples of 20-d Gaussian blobs (zero-shot: 4 train, 4 test classes)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 12)
    X = rng.normal(size=(8, 20))[y] + 0.5 * rng.normal(size=(len(y), 20))
    np.savez(path, X=X.astype(np.float32), y=y)
    return path


def _train(args, out: Path, nproc: int):
    launcher = [sys.executable, "-m", "pfml_core"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "-m", "pfml_core"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    proc = subprocess.run([*launcher, "train", *args, "--out", str(out), "--device", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_processes_train_like_one(tmp_path):
    data = _features(tmp_path / "blobs.npz")
    args = ["--data", str(data), "--model", "mlp", "--freeze-bn", "--warmup-epochs", "1",
            "--epochs", "3", "--max-batches", "3", "--classes-per-batch", "2",
            "--samples-per-class", "4", "--embedding-size", "24", "--eval-subset", "48",
            "--proxies-per-class", "2"]
    _train(args, tmp_path / "one", 1)
    _train(args, tmp_path / "two", 2)
    one, two = (torch.load(tmp_path / n / "checkpoint.pt", weights_only=True) for n in ("one", "two"))
    assert one["epoch"] == two["epoch"] == 3
    assert set(one["model"]) == set(two["model"])  # no 'module.' prefix from DDP
    for k, v in one["model"].items():
        torch.testing.assert_close(two["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
    torch.testing.assert_close(two["loss"]["loss.proxies"], one["loss"]["loss.proxies"],
                               rtol=1e-4, atol=1e-5)
    m1, m2 = runs.load_run(tmp_path / "one").metrics, runs.load_run(tmp_path / "two").metrics
    np.testing.assert_allclose(m2["loss"][1:], m1["loss"][1:], rtol=1e-4)
    np.testing.assert_allclose(m2["R@1"], m1["R@1"], atol=1e-6)
    assert not (tmp_path / "two" / "rank1").exists() and len(list(tmp_path.iterdir())) == 3


def test_warmup_keeps_the_backbone_fixed(tmp_path):
    data = _features(tmp_path / "blobs.npz")
    args = ["--data", str(data), "--model", "mlp", "--epochs", "1", "--warmup-epochs", "1",
            "--max-batches", "2", "--classes-per-batch", "2", "--samples-per-class", "2",
            "--eval-subset", "48", "--seed", "3"]
    _train(args, tmp_path / "warm", 2)
    _train([*args[:-2], "--seed", "3", "--warmup-epochs", "0"], tmp_path / "cold", 2)
    warm, cold = (torch.load(tmp_path / n / "checkpoint.pt", weights_only=True)["model"]
                  for n in ("warm", "cold"))
    torch.manual_seed(3)  # the untrained network of seed 3, as the engine builds it
    from pfml_core.training.models import build_model
    init = build_model("mlp", (20,), 64).state_dict()
    torch.testing.assert_close(warm["trunk.1.weight"], init["trunk.1.weight"])  # untouched
    assert not torch.allclose(warm["head.weight"], init["head.weight"])  # the head learned
    assert not torch.allclose(cold["trunk.1.weight"], init["trunk.1.weight"])


def _sop(root: Path) -> Path:
    """SOP layout: 4 train and 4 test classes of 3 small JPEGs each."""
    rng = np.random.default_rng(0)
    header = "image_id class_id super_class_id path\n"
    i = 1
    for fname, classes in (("Ebay_train.txt", range(1, 5)), ("Ebay_test.txt", range(5, 9))):
        lines = []
        for c in classes:
            for j in range(3):
                rel = f"chair_final/{c}_{j}.JPG"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                img = (rng.random((40, 48, 3)) * 80 + 20 * c).astype(np.uint8)
                Image.fromarray(img).save(root / rel)
                lines.append(f"{i} {c} 1 {rel}")
                i += 1
        (root / fname).write_text(header + "\n".join(lines) + "\n")
    return root


def test_benchmark_config_under_two_processes(tmp_path):
    root = _sop(tmp_path / "Stanford_Online_Products")
    config = tmp_path / "sop_tiny.toml"  # the paper's SOP config, shrunk to CPU size
    text = (ROOT / "configs" / "sop_resnet50.toml").read_text()
    for old, new in (('model = "resnet50"', 'model = "resnet18"'), ("pretrained = true", "pretrained = false"),
                     ("embedding_size = 512", "embedding_size = 16"), ("epochs = 200", "epochs = 1"),
                     ("classes_per_batch = 50", "classes_per_batch = 2"),
                     ("eval_subset = 60502", "eval_subset = 12"), ("warmup_epochs = 1", "warmup_epochs = 0")):
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    proc = _train(["--config", str(config), "--data-root", str(root), "--max-batches", "1"],
                  tmp_path / "run", 2)
    assert "done: 1 epochs" in proc.stdout
    run = runs.load_run(tmp_path / "run")
    assert (run.config.data, run.config.model, run.config.freeze_bn) == ("sop", "resnet18", True)
    assert run.config.loss_params["proxies_per_class"] == 2
    assert list(run.metrics["epoch"]) == [0, 1] and run.embeddings["emb"].shape == (2, 12, 16)
    assert run.embeddings["proxies"].shape == (2, 4 * 2, 16)  # 4 train classes x M = 2
    assert np.isfinite(run.metrics["loss"][1]) and 0 <= run.metrics["R@1"][1] <= 1
