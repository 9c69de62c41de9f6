"""pfml_core/data/transforms.py (torchvision.transforms.v2): geometry checked against
hand-computed sizes and offsets and plain PIL/numpy slicing, normalisation against the
formula, randomness within its documented bounds, the batch augmentation per image."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from pngs import pil_to_tensor

from pfml_core.data.transforms import (
    PAPER_CROP_SCALE,
    SMALL_IMAGE_CROP_SCALE,
    augment_batch,
    eval_transform,
    normalize,
    random_crop_flip,
    train_transform,
)
from pfml_core.vision import v2

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _image(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("w, h, resized, left, top", [
    (400, 300, (341, 256), 58, 16),   # landscape: 400 * 256 / 300 = 341.3 -> 341; (341-224)/2
    (300, 400, (256, 341), 16, 58),   # portrait
    (256, 256, (256, 256), 16, 16),
])
def test_eval_transform_geometry(w, h, resized, left, top):
    img = _image(w, h)
    assert v2.Resize(256)(img).size == resized  # the shorter side to 256, the longer truncated
    expected = np.asarray(img.resize(resized, Image.BILINEAR), dtype=np.float64) / 255.0
    expected = expected[top:top + 224, left:left + 224]  # (224, 224, 3)
    got = eval_transform(normalize=False)(img)
    assert type(got) is torch.Tensor and got.shape == (3, 224, 224) and got.dtype == torch.float32
    np.testing.assert_allclose(got.permute(1, 2, 0).numpy(), expected, atol=1e-6)
    normed = eval_transform()(img).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(normed, (expected - MEAN) / STD, atol=1e-5)


def test_eval_transform_centre_crop_of_a_tensor():
    x = torch.arange(3 * 7 * 9, dtype=torch.float32).view(3, 7, 9) / 200  # (C, H, W)
    # already at the resize size: only the crop acts, offsets round((7-5)/2)=1, round((9-5)/2)=2
    got = eval_transform(resize=7, crop=5, normalize=False)(x)
    torch.testing.assert_close(got, x[:, 1:6, 2:7])


def test_to_tensor_and_normalize():
    img = Image.fromarray(np.array([[[0, 128, 255]]], dtype=np.uint8))  # one pixel
    x = pil_to_tensor(img)
    assert x.shape == (3, 1, 1)
    torch.testing.assert_close(x.flatten(), torch.tensor([0.0, 128 / 255, 1.0]))
    torch.testing.assert_close(normalize(x).flatten().double(),
                               (torch.tensor([0.0, 128 / 255, 1.0]).double()
                                - torch.tensor(MEAN)) / torch.tensor(STD), atol=1e-6, rtol=0)
    grey = pil_to_tensor(Image.fromarray(np.full((2, 3), 51, np.uint8)))  # mode L -> RGB
    assert grey.shape == (3, 2, 3) and torch.allclose(grey, torch.full_like(grey, 0.2))


def test_normalize_a_batch():
    n = normalize(torch.ones(2, 3, 2, 2))
    expect = (1 - MEAN) / STD
    assert n.shape == (2, 3, 2, 2)
    np.testing.assert_allclose(n[1, :, 1, 0].numpy(), expect, rtol=1e-6)
    np.testing.assert_allclose(n[0, :, 0, 1].numpy(), expect, rtol=1e-6)


def test_train_transform_full_crop_and_flip():
    img = _image(40, 30)
    ratio = (40 / 30, 40 / 30)  # the only crop with scale 1 and this aspect is the image
    kw = dict(size=20, scale=(1.0, 1.0), ratio=ratio, normalize=False)
    plain = train_transform(flip_p=0.0, **kw)(img)
    flipped = train_transform(flip_p=1.0, **kw)(img)
    expected = pil_to_tensor(img.resize((20, 20), Image.BILINEAR))
    torch.testing.assert_close(plain, expected)
    torch.testing.assert_close(flipped, expected.flip(-1))


def test_train_transform_seeded_and_random():
    img = _image(64, 48)
    t = train_transform(size=32)
    torch.manual_seed(3)
    a = t(img)
    torch.manual_seed(3)
    assert torch.equal(a, t(img)) and a.shape == (3, 32, 32)
    assert not torch.equal(a, t(img))  # a fresh draw crops elsewhere


def test_crops_respect_scale_and_ratio():
    crop = random_crop_flip(224).transforms[0]  # the RandomResizedCrop inside
    assert (crop.scale, crop.ratio, crop.size) == (PAPER_CROP_SCALE, (3 / 4, 4 / 3), (224, 224))
    w, h = 500, 375
    img = _image(w, h)
    torch.manual_seed(0)
    for _ in range(300):
        p = crop.make_params([img])
        left, top, cw, ch = p["left"], p["top"], p["width"], p["height"]
        assert 0 <= left and left + cw <= w and 0 <= top and top + ch <= h
        assert 0.08 * w * h * 0.9 <= cw * ch <= w * h
        assert 3 / 4 * 0.9 <= cw / ch <= 4 / 3 * 1.1  # rounding to whole pixels


def test_crop_falls_back_to_centre_crop():
    # a 1000 x 10 strip: no crop with aspect <= 4/3 covers 8% of it, so after 10 misses the
    # crop is the centre one with aspect clamped to 4/3: 13 x 10 at left (1000 - 13) // 2
    t = train_transform(size=8, flip_p=0.0, normalize=False)
    strip = _image(1000, 10)
    torch.manual_seed(0)
    expected = pil_to_tensor(strip.crop((493, 0, 506, 10)).resize((8, 8), Image.BILINEAR))
    torch.testing.assert_close(t(strip), expected, rtol=0, atol=0)
    tall = _image(10, 1000, seed=1)
    expected = pil_to_tensor(tall.crop((0, 493, 10, 506)).resize((8, 8), Image.BILINEAR))
    torch.testing.assert_close(t(tall), expected, rtol=0, atol=0)
    assert math.isclose(13 / 10, 4 / 3, rel_tol=0.03)


def test_augment_batch_draws_per_image():
    x = torch.rand(1, 3, 16, 16).expand(6, -1, -1, -1)  # six copies of one image
    full_flip = random_crop_flip(16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0)
    torch.testing.assert_close(augment_batch(x, full_flip), x.flip(-1))  # whole image, mirrored
    torch.manual_seed(0)
    out = augment_batch(x, random_crop_flip(12, SMALL_IMAGE_CROP_SCALE))
    assert out.shape == (6, 3, 12, 12) and out.min() >= 0 and out.max() <= 1
    assert len({tuple(o.flatten()[:20].tolist()) for o in out}) > 1  # not one crop for all


def test_small_image_scale_is_milder_than_the_papers():
    assert SMALL_IMAGE_CROP_SCALE[0] > PAPER_CROP_SCALE[0] and SMALL_IMAGE_CROP_SCALE[1] == 1.0
    crop = random_crop_flip(28, SMALL_IMAGE_CROP_SCALE).transforms[0]
    torch.manual_seed(1)
    areas = [(lambda p: p["width"] * p["height"])(crop.make_params([torch.zeros(1, 28, 28)]))
             for _ in range(200)]
    assert min(areas) >= 0.5 * 28 * 28 * 0.85  # at least about half the digit, always


@pytest.mark.parametrize("make, match", [
    (lambda: train_transform(scale=(0.5, 0.2)), "scale"),
    (lambda: train_transform(scale=(0.5, 1.5)), "scale"),
    (lambda: train_transform(scale=0.5), "scale must be a pair"),
    (lambda: train_transform(ratio=(0.0, 1.0)), "ratio"),
    (lambda: train_transform(flip_p=2.0), "flip_p"),
    (lambda: train_transform(size=0), "size"),
    (lambda: random_crop_flip(16, flip_p=-0.1), "flip_p"),
    (lambda: eval_transform(resize=200, crop=224), "crop"),
    (lambda: eval_transform(resize=0), "resize"),
])
def test_bad_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()
