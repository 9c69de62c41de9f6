"""A tiny Stanford Online Products folder of generated JPEGs and the torchrun launch of
`pfml_core train` on it: the CPU smoke test and the CUDA check share both."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def sop_folder(root: Path, classes: int, size: tuple[int, int]) -> Path:
    """SOP's layout: `classes` train and as many test classes of 3 JPEGs each (h, w = size),
    each class a little brighter than the one before."""
    rng = np.random.default_rng(0)
    header, i = "image_id class_id super_class_id path\n", 1
    for fname, ids in (("Ebay_train.txt", range(1, classes + 1)),
                       ("Ebay_test.txt", range(classes + 1, 2 * classes + 1))):
        lines = []
        for c in ids:
            for j in range(3):
                rel = f"chair_final/{c}_{j}.JPG"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                img = rng.random((*size, 3)) * 60 + 120 * c / (2 * classes)
                Image.fromarray(img.astype(np.uint8)).save(root / rel)
                lines.append(f"{i} {c} 1 {rel}")
                i += 1
        (root / fname).write_text(header + "\n".join(lines) + "\n")
    return root


def torchrun_train(nproc: int, args: list[str], **env) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=nproc -m pfml_core train ARGS` from the repo."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "pfml_core", "train", *args]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=280)
