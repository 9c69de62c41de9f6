"""torchvision, imported in one place for all of pfml_core (models, transforms.v2).

Why: PyPI's torchvision wheel is built against a CUDA torch; next to a CPU-only torch
`import torchvision` dies with "RuntimeError: operator torchvision::nms does not exist".
`_import_torchvision` works around exactly that error and changes nothing otherwise."""
from __future__ import annotations

import re
import sys

import torch

# the schemas torchvision's C++ extension declares for these two operators
SCHEMAS = {
    "torchvision::nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "torchvision::qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_MISSING_OP = re.compile(r"operator torchvision::q?nms does not exist")


def _import_torchvision():
    """torchvision, imported once more after defining its two missing operator schemas.

    Next to a CPU-only torch the wheel's C extension (_C.so, which needs libc10_cuda.so) does
    not load. torchvision then carries on without its compiled ops (every use of them checks
    `torchvision.extension._has_ops()`), except in `torchvision/_meta_registrations.py`, which
    registers fake kernels for `torchvision::nms` and `torchvision::qnms` unconditionally, and
    those operators are not defined. When, and only when, the import fails with that error,
    drop the half-imported `torchvision*` entries from sys.modules, define the two schemas
    (SCHEMAS, with no kernel behind them) and import again. What pfml_core uses, the ResNets of
    torchvision.models and torchvision.transforms.v2, is pure Python on top of torch and works
    unchanged; the detection ops (NMS, RoIAlign) stay unavailable and pfml_core never calls
    them. With a torch that matches the wheel the first import succeeds and nothing is patched.
    """
    try:
        import torchvision
    except RuntimeError as e:
        if not _MISSING_OP.search(str(e)):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        for qualname, schema in SCHEMAS.items():
            torch.library.define(qualname, schema)  # kept alive by torch.library
        import torchvision
    return torchvision


torchvision = _import_torchvision()
from torchvision import models  # noqa: E402  (only after the import above has succeeded)
from torchvision.transforms import v2  # noqa: E402

__all__ = ["models", "torchvision", "v2"]
