"""The paper's image transforms for the benchmarks, on PIL images (no torchvision): training
= random resized crop 224 + horizontal flip; test = resize shorter side to 256 + centre crop
224; both then to a (3, H, W) float tensor in [0, 1] and ImageNet-normalised.
Randomness comes from torch's RNG (or a given generator), so DataLoader workers and
torch.manual_seed control it. Geometry follows torchvision's RandomResizedCrop, Resize
and CenterCrop (scale (0.08, 1), ratio (3/4, 4/3), bilinear)."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from pfml_core import guards
from pfml_core.data.batch_transforms import IMAGENET_MEAN, IMAGENET_STD


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float32 (3, H, W) in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(3, 1, 1)
    return (x - mean) / std


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to size, aspect kept (longer side truncated, as torchvision does)."""
    w, h = img.size
    short, long = min(w, h), max(w, h)
    new_long = int(size * long / short)
    return img.resize((size, new_long) if w <= h else (new_long, size), Image.BILINEAR)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))  # PIL pads with black if too small


def _uniform(low: float, high: float, gen) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def crop_box(w: int, h: int, scale, ratio, gen=None) -> tuple[int, int, int, int]:
    """(left, top, width, height) of a random crop: area share in scale, aspect in ratio
    (log-uniform); after 10 misses, the centre crop clamped to ratio (torchvision)."""
    area = w * h
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], gen)
        aspect = math.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), gen))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
            return left, top, cw, ch
    in_ratio = w / h
    cw, ch = (w, round(w / min(ratio))) if in_ratio < min(ratio) else \
        (round(h * max(ratio)), h) if in_ratio > max(ratio) else (w, h)
    return (w - cw) // 2, (h - ch) // 2, cw, ch


class TrainTransform:
    """Random resized crop (size) + horizontal flip (p) [+ ImageNet normalisation]."""

    def __init__(self, size: int = 224, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                 flip_p: float = 0.5, normalize: bool = True, generator=None):
        self.size = guards.check_int("size", size, 1)
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale!r}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio!r}")
        self.flip_p = guards.check_range("flip_p", flip_p, 0.0, 1.0)
        self.normalize, self.generator = normalize, generator

    def __call__(self, img: Image.Image) -> torch.Tensor:
        left, top, cw, ch = crop_box(*img.size, self.scale, self.ratio, self.generator)
        img = img.resize((self.size, self.size), Image.BILINEAR,
                         box=(left, top, left + cw, top + ch))
        if float(torch.rand((), generator=self.generator)) < self.flip_p:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = to_tensor(img)  # (3, size, size)
        return normalize(x) if self.normalize else x


class EvalTransform:
    """Resize shorter side to resize, centre crop crop [+ ImageNet normalisation]."""

    def __init__(self, resize: int = 256, crop: int = 224, normalize: bool = True):
        self.resize = guards.check_int("resize", resize, 1)
        self.crop = guards.check_int("crop", crop, 1, self.resize)
        self.normalize = normalize

    def __call__(self, img: Image.Image) -> torch.Tensor:
        x = to_tensor(center_crop(resize_shorter(img, self.resize), self.crop))
        return normalize(x) if self.normalize else x
