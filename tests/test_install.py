"""The package as a user gets it: a wheel built from the project, installed with --no-deps into a
fresh venv that sees the locked dependencies of .venv but not the checkout, then `python -m
pfml_core train --config cub200_resnet50` from a folder outside the checkout, on a tiny
generated CUB layout, shrunk to CPU size by flags (which must win over the file)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pfml_core.training.run_folder import load_embeddings

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
CONFIGS = ["cars196_resnet50.toml", "cub200_resnet50.toml", "sop_resnet50.toml"]


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=400, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _wheel(tmp: Path) -> Path:
    """Build from a copy of what the wheel needs, so no build/ or .egg-info lands in the checkout."""
    src = tmp / "src"
    shutil.copytree(ROOT / "pfml_core", src / "pfml_core",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", tmp / "dist", src])
    (wheel,) = (tmp / "dist").glob("pfml_studio-*.whl")
    return wheel


def _venv(tmp: Path, wheel: Path) -> Path:
    """A venv whose only view of .venv is its site-packages (a .pth line): the editable
    install's finder (a .pth inside that folder) is not run, so pfml_core comes from the wheel."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                   .stdout.strip())
    (purelib / "locked_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", wheel])
    return py


def _cub(root: Path) -> Path:
    """CUB-200-2011 layout: classes 97-100 train, 101-104 test (the split is at 100), 3 JPEGs
    each."""
    rng = np.random.default_rng(0)
    lines, labels = [], []
    for i in range(24):
        cls = 97 + i // 3
        rel = f"{cls:03d}.Bird_{cls}/img_{i}.jpg"
        (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        img = (rng.random((40, 48, 3)) * 80 + 15 * (cls - 96)).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / rel)
        lines.append(f"{i + 1} {rel}")
        labels.append(f"{i + 1} {cls}")
    (root / "images.txt").write_text("\n".join(lines) + "\n")
    (root / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    return root


CHECK = """
import importlib.metadata as md, json, sys
from packaging.requirements import Requirement
import pfml_core
def met(r):
    try:
        return r.specifier.contains(md.version(r.name), prereleases=True)
    except md.PackageNotFoundError:
        return False
dist = md.distribution("pfml-studio")
unmet = [r for r in map(Requirement, dist.requires or []) if not r.marker and not met(r)]
print(json.dumps({"file": pfml_core.__file__, "unmet": [str(r) for r in unmet],
                  "dist": str(dist.locate_file("")), "requires": dist.requires}))
"""


def test_wheel_installs_and_trains_outside_the_checkout(tmp_path):
    wheel = _wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.endswith(".toml")) == CONFIGS
    assert not [n for n in names if n.startswith(("tests/", "studio/", "pages/"))]
    py = _venv(tmp_path, wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"PFML_RUNS_DIR": str(work / "runs"), "OMP_NUM_THREADS": "2"}

    info = json.loads(_run([py, "-c", CHECK], cwd=work, env=env).stdout)
    assert Path(info["file"]).is_relative_to(tmp_path / "venv"), info["file"]
    assert Path(info["dist"]).is_relative_to(tmp_path / "venv")
    assert info["unmet"] == []  # the lock satisfies what the wheel declares
    assert any(r.startswith("torch==2.13.0") for r in info["requires"])

    cub, out = _cub(tmp_path / "CUB_200_2011"), work / "run"
    proc = _run([py, "-m", "pfml_core", "train", "--config", "cub200_resnet50",
                 "--data-root", cub, "--model", "resnet18", "--no-pretrained", "--no-amp",
                 "--embedding-size", "16", "--epochs", "1", "--warmup-epochs", "0",
                 "--classes-per-batch", "2", "--samples-per-class", "2", "--max-batches", "1",
                 "--eval-subset", "12", "--device", "cpu", "--out", out], cwd=work, env=env)
    assert "done: 1 epochs" in proc.stdout

    config = json.loads((out / "config.json").read_text())
    assert (config["data"], config["data_root"], config["model"]) == ("cub200", str(cub), "resnet18")
    assert (config["pretrained"], config["amp"], config["epochs"]) == (False, False, 1)
    # what the flags leave out is the file's
    assert (config["lr"], config["weight_decay"], config["freeze_bn"]) == (1e-4, 5e-4, True)
    assert config["loss_params"] == {"alpha": 3.0, "delta": 0.2, "proxies_per_class": 15}
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1] and np.isfinite(metrics["loss"][1])
    assert 0.0 <= metrics["R@1"][1] <= 1.0
    assert (out / "embeddings" / "static.npz").is_file()  # one file per epoch + the shared arrays
    emb = load_embeddings(out)  # the checkout's reader of the installed package's folder
    assert emb["emb"].shape == (2, 12, 16) and emb["proxies"].shape == (2, 4 * 15, 16)
    assert sorted(set(emb["labels"].tolist())) == [0, 1, 2, 3]  # classes 101-104, renumbered
