"""Batch image transforms in plain torch (no torchvision): random resized crop, horizontal
flip, centre crop, ImageNet normalisation. Inputs are (B, C, H, W) floats in [0, 1]."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., top:top + size, left:left + size]


def hflip(x: torch.Tensor, gen: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Flip each image left-right with probability p."""
    mask = torch.rand(x.shape[0], generator=gen) < p  # (B,)
    out = x.clone()
    out[mask.to(x.device)] = x[mask.to(x.device)].flip(-1)
    return out


def random_resized_crop(x: torch.Tensor, size: int, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3),
                        gen: torch.Generator | None = None) -> torch.Tensor:
    """Per image: a crop of random area fraction and aspect ratio, resized to size."""
    h, w = x.shape[-2:]
    out = []
    for img in x:
        area = h * w * float(torch.empty(1).uniform_(*scale, generator=gen))
        logr = torch.empty(1).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
        r = math.exp(float(logr))
        cw, ch = min(w, round(math.sqrt(area * r))), min(h, round(math.sqrt(area / r)))
        top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        out.append(resize(img[None, :, top:top + ch, left:left + cw], size))
    return torch.cat(out)


def normalize(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def augment(x: torch.Tensor, gen: torch.Generator | None = None, flip: bool = True):
    """Training augmentation for natural images: random resized crop (+ flip)."""
    x = random_resized_crop(x, x.shape[-1], gen=gen)
    return hflip(x, gen) if flip else x
