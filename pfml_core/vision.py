"""torchvision, imported in one place for all of pfml_core (models, transforms.v2).

Why this module exists: PyPI's torchvision wheel is built against a CUDA torch. Next to a
CPU-only torch its C extension (_C.so, which needs libc10_cuda.so) does not load.
torchvision then carries on without its compiled ops (every use of them checks
`torchvision.extension._has_ops()`), except in `torchvision/_meta_registrations.py`, which
registers fake kernels for `torchvision::nms` and `torchvision::qnms` unconditionally.
Those operators were never defined, so `import torchvision` dies with
"RuntimeError: operator torchvision::nms does not exist".

When, and only when, the import fails with that error, this module drops the half-imported
`torchvision*` entries from sys.modules, defines the two operator schemas (the ones
torchvision's C++ code declares, with no kernel behind them) and imports again. What
pfml_core uses, the ResNets of torchvision.models and torchvision.transforms.v2, is pure
Python on top of torch and works unchanged; the detection ops (NMS, RoIAlign) stay
unavailable and pfml_core never calls them. With a torch that matches the wheel the first
import simply succeeds and nothing is patched.
"""
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
