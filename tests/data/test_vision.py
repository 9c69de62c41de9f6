"""pfml_core/vision.py: torchvision imports, with CPU-only torch too, and the workaround acts
only on the one error it is for (the undefined torchvision::nms / qnms operators)."""
import builtins
import subprocess
import sys

import pytest
import torch

from pfml_core import vision


@pytest.mark.slow  # a fresh interpreter
def test_fresh_interpreter_gets_a_working_torchvision():
    code = ("import torch, pfml_core.vision as v, torchvision; assert torchvision is v.torchvision; "
            "print(torch._C._get_schema('torchvision::nms', '')); "
            "print(v.models.resnet18(weights=None).fc.in_features)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == [
        "torchvision::nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor", "512"]


def _fake_import(monkeypatch, errors):
    """`import torchvision` raises errors[0], errors[1], ... then returns a sentinel."""
    real, sentinel, left = builtins.__import__, object(), list(errors)

    def fake(name, *args, **kwargs):
        if name != "torchvision":
            return real(name, *args, **kwargs)
        if left:
            raise left.pop(0)
        return sentinel

    monkeypatch.setattr(builtins, "__import__", fake)
    return sentinel


def test_missing_nms_operator_is_defined_and_the_import_retried(monkeypatch):
    defined = []
    monkeypatch.setattr(torch.library, "define", lambda q, s: defined.append((q, s)))
    for name in [m for m in sys.modules if m.startswith("torchvision")]:
        monkeypatch.setitem(sys.modules, name, sys.modules[name])  # put back after the test
    monkeypatch.setitem(sys.modules, "torchvision.half_imported", object())
    sentinel = _fake_import(monkeypatch, [RuntimeError("operator torchvision::nms does not exist")])
    assert vision._import_torchvision() is sentinel
    assert not [m for m in sys.modules if m.startswith("torchvision")]
    assert [q for q, _ in defined] == ["torchvision::nms", "torchvision::qnms"]
    assert all(s == "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor" for _, s in defined)


@pytest.mark.parametrize("error", [RuntimeError("operator torchvision::roi_align does not exist"),
                                   RuntimeError("CUDA error"), ImportError("no torchvision")])
def test_other_import_errors_propagate(monkeypatch, error):
    monkeypatch.setattr(torch.library, "define", lambda *a: pytest.fail("nothing to define"))
    _fake_import(monkeypatch, [error])
    with pytest.raises(type(error), match=str(error)):
        vision._import_torchvision()
