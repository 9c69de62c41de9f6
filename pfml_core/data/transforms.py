"""Image transforms, all built from torchvision.transforms.v2 (via pfml_core.vision), for PIL
images (benchmark files) and (C, H, W) float tensors (in-memory images) alike. The paper's
protocol (the usual DML one, docs/method.md, section 6.1): `train_transform` and
`eval_transform`. Randomness comes from torch's RNG, so torch.manual_seed (and the seeds
DataLoader hands its workers) controls it."""
from __future__ import annotations

import torch
from PIL import Image

from pfml_core import guards
from pfml_core.vision import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the statistics torchvision's ImageNet weights expect
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_RATIO = (3 / 4, 4 / 3)  # aspect ratios of a random crop (torchvision's default)
# Area share of a random training crop. The paper's (torchvision's default) suits photos of
# 224 px and more, where even 8% of the image is a recognisable part of the object.
PAPER_CROP_SCALE = (0.08, 1.0)
# In-memory images are small (28 px MNIST digits, 40-64 px user folders): 8% of a 28 x 28
# digit is an 8 x 8 patch, often a bare stroke or background, and the label stops being
# true. Crops of at least half the image keep the object while still varying it.
SMALL_IMAGE_CROP_SCALE = (0.5, 1.0)


def _rgb(img: Image.Image) -> Image.Image:
    return img.convert("RGB")


def _to_float(normalize: bool) -> list:
    """PIL or tensor -> plain float32 tensor in [0, 1] (PIL images made RGB first)."""
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()]
    return steps + [v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)] if normalize else steps


def normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of (..., 3, H, W): one image or a batch, on any device."""
    return v2.functional.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD))


def _interval(name: str, value, high: float | None) -> tuple[float, float]:
    """(low, high) with 0 < low <= high (<= `high` when given)."""
    try:
        low_v, high_v = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not 0 < low_v <= high_v or (high is not None and high_v > high):
        bound = f" <= {high}" if high is not None else ""
        raise ValueError(f"{name} must satisfy 0 < low <= high{bound}, got {value!r}")
    return low_v, high_v


def random_crop_flip(size: int, scale=PAPER_CROP_SCALE, ratio=CROP_RATIO,
                     flip_p: float = 0.5) -> v2.Compose:
    """THE random augmentation: a random resized crop to size x size (area share in scale,
    aspect in ratio, log-uniform; after 10 misses the centre crop with the aspect clamped to
    ratio), then a horizontal flip with probability flip_p. Same output type as the input."""
    size = guards.check_int("size", size, 1)
    scale, ratio = _interval("scale", scale, 1.0), _interval("ratio", ratio, None)
    flip_p = guards.check_range("flip_p", flip_p, 0.0, 1.0)
    return v2.Compose([v2.RandomResizedCrop(size, scale, ratio, antialias=True),
                       v2.RandomHorizontalFlip(flip_p)])


def train_transform(size: int = 224, scale=PAPER_CROP_SCALE, ratio=CROP_RATIO,
                    flip_p: float = 0.5, normalize: bool = True) -> v2.Compose:
    """Training: random_crop_flip (the paper's: a random resized crop to 224 x 224 and a
    horizontal flip), then float32 (3, size, size) in [0, 1] [ImageNet-normalised]."""
    crop_flip = random_crop_flip(size, scale, ratio, flip_p)
    return v2.Compose([v2.Lambda(_rgb, Image.Image), crop_flip, *_to_float(normalize)])


def eval_transform(resize: int = 256, crop: int = 224, normalize: bool = True) -> v2.Compose:
    """Evaluation: shorter side to resize (aspect kept, longer side truncated), centre crop
    crop x crop (the paper's: 256, then the centre 224 x 224), then float32 (3, crop, crop)
    in [0, 1] [ImageNet-normalised]."""
    resize = guards.check_int("resize", resize, 1)
    crop = guards.check_int("crop", crop, 1, resize)
    return v2.Compose([v2.Lambda(_rgb, Image.Image), v2.Resize(resize), v2.CenterCrop(crop),
                       *_to_float(normalize)])


def augment_batch(x: torch.Tensor, crop_flip: v2.Transform) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size): crop_flip (random_crop_flip) drawn anew per image."""
    return torch.stack([crop_flip(img) for img in x])
