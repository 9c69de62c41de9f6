"""Test helpers that read back what a figure ships to the browser (not library code)."""
import base64
import io

import numpy as np
from PIL import Image


def read_png_uri(uri: str) -> np.ndarray:
    """The (h, w, 3) RGB of a viz.fieldmap.png_uri, row 0 the lowest y again (as shown)."""
    raw = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))[::-1]


def pil_to_tensor(img):
    """PIL image (any mode) -> float32 (3, H, W) in [0, 1], the reference the transforms
    are checked against (torchvision's own functional API, no pfml_core code)."""
    import torch
    from torchvision.transforms.v2 import functional as F

    return F.to_dtype(F.pil_to_tensor(img.convert("RGB")), torch.float32, scale=True)
