"""pfml_core/paper_transforms.py: geometry checked against hand-computed offsets and numpy
slicing, normalisation against the formula, randomness within its documented bounds."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from pfml_core.data.transforms import (EvalTransform, TrainTransform, crop_box, normalize,
                                        resize_shorter, to_tensor)

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _image(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("w, h, resized, left, top", [
    (400, 300, (341, 256), 58, 16),   # landscape: 400 * 256 / 300 = 341.3 -> 341
    (300, 400, (256, 341), 16, 58),   # portrait
    (256, 256, (256, 256), 16, 16),
])
def test_eval_transform_geometry(w, h, resized, left, top):
    img = _image(w, h)
    assert resize_shorter(img, 256).size == resized
    expected = np.asarray(img.resize(resized, Image.BILINEAR), dtype=np.float64) / 255.0
    expected = expected[top:top + 224, left:left + 224]  # (224, 224, 3)
    got = EvalTransform(normalize=False)(img)
    assert got.shape == (3, 224, 224) and got.dtype == torch.float32
    np.testing.assert_allclose(got.permute(1, 2, 0).numpy(), expected, atol=1e-6)
    normed = EvalTransform()(img).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(normed, (expected - MEAN) / STD, atol=1e-5)


def test_to_tensor_and_normalize():
    img = Image.fromarray(np.array([[[0, 128, 255]]], dtype=np.uint8))  # one pixel
    x = to_tensor(img)
    assert x.shape == (3, 1, 1)
    torch.testing.assert_close(x.flatten(), torch.tensor([0.0, 128 / 255, 1.0]))
    torch.testing.assert_close(normalize(x).flatten().double(),
                               (torch.tensor([0.0, 128 / 255, 1.0]).double()
                                - torch.tensor(MEAN)) / torch.tensor(STD), atol=1e-6, rtol=0)


def test_train_transform_full_crop_and_flip():
    img = _image(40, 30)
    ratio = (40 / 30, 40 / 30)  # the only crop with scale 1 and this aspect is the image
    kw = dict(size=20, scale=(1.0, 1.0), ratio=ratio, normalize=False)
    plain = TrainTransform(flip_p=0.0, generator=torch.Generator().manual_seed(1), **kw)(img)
    flipped = TrainTransform(flip_p=1.0, generator=torch.Generator().manual_seed(1), **kw)(img)
    expected = to_tensor(img.resize((20, 20), Image.BILINEAR))
    torch.testing.assert_close(plain, expected)
    torch.testing.assert_close(flipped, expected.flip(-1))


def test_train_transform_seeded_and_random():
    img = _image(64, 48)
    t = TrainTransform(size=32)
    torch.manual_seed(3)
    a = t(img)
    torch.manual_seed(3)
    assert torch.equal(a, t(img)) and a.shape == (3, 32, 32)
    assert not torch.equal(a, t(img))  # a fresh draw crops elsewhere


def test_crop_box_respects_scale_and_ratio():
    gen = torch.Generator().manual_seed(0)
    w, h = 500, 375
    for _ in range(300):
        left, top, cw, ch = crop_box(w, h, (0.08, 1.0), (3 / 4, 4 / 3), gen)
        assert 0 <= left and left + cw <= w and 0 <= top and top + ch <= h
        assert 0.08 * w * h * 0.9 <= cw * ch <= w * h
        assert 3 / 4 * 0.9 <= cw / ch <= 4 / 3 * 1.1  # rounding to whole pixels


def test_crop_box_falls_back_to_centre_crop():
    # a 1000 x 10 strip: no crop with aspect <= 4/3 covers 8% of it, so the fallback
    # is the centre crop with aspect clamped to 4/3: 13 x 10
    assert crop_box(1000, 10, (0.08, 1.0), (3 / 4, 4 / 3)) == ((1000 - 13) // 2, 0, 13, 10)
    assert crop_box(10, 1000, (0.08, 1.0), (3 / 4, 4 / 3)) == (0, (1000 - 13) // 2, 10, 13)
    assert math.isclose(13 / 10, 4 / 3, rel_tol=0.03)


@pytest.mark.parametrize("make, match", [
    (lambda: TrainTransform(scale=(0.5, 0.2)), "scale"),
    (lambda: TrainTransform(ratio=(0.0, 1.0)), "ratio"),
    (lambda: TrainTransform(flip_p=2.0), "flip_p"),
    (lambda: EvalTransform(resize=200, crop=224), "crop"),
])
def test_bad_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()
