"""pfml_core.training.models / resnet / transforms: embedding shapes and norms, and ResNets whose
state_dict layout is torchvision's (checked against torchvision's published numbers)."""
import numpy as np
import pytest
import torch

from pfml_core.training import models
from pfml_core.training import resnet
from pfml_core.data import batch_transforms as transforms


@pytest.mark.parametrize("name, params, n_keys", [
    ("resnet18", 11_689_512, 122),   # torchvision's documented parameter counts
    ("resnet50", 25_557_032, 320),
])
def test_resnet_matches_torchvision_layout(name, params, n_keys):
    net = resnet.resnet(name, pretrained=False)
    state = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == params
    assert len(state) == n_keys
    assert state["conv1.weight"].shape == (64, 3, 7, 7)
    assert state["fc.weight"].shape[0] == 1000
    assert "layer2.0.downsample.1.running_mean" in state and "layer2.1.downsample.0.weight" not in state


def test_resnet50_bottleneck_keys():
    state = resnet.resnet("resnet50").state_dict()
    assert state["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert state["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)


def test_pretrained_loads_weights_from_hub(monkeypatch):
    donor = resnet.resnet("resnet18").state_dict()
    calls = []

    def fake_load(url, **kw):
        calls.append((url, kw.get("weights_only")))
        return donor

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_load)
    net = resnet.resnet("resnet18", pretrained=True)
    assert calls == [(resnet.WEIGHT_URLS["resnet18"], True)]
    assert torch.equal(net.state_dict()["layer3.1.bn2.weight"], donor["layer3.1.bn2.weight"])


@pytest.mark.parametrize("name, shape", [("mlp", (5,)), ("mlp", (1, 8, 8)), ("cnn", (1, 28, 28)),
                                         ("resnet18", (3, 32, 32)), ("resnet18", (1, 32, 32))])
def test_embeddings_are_unit_norm(name, shape):
    torch.manual_seed(0)
    net = models.build_model(name, shape, embedding_size=16).eval()
    out = net(torch.rand(4, *shape))
    assert out.shape == (4, 16)
    assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)


def test_auto_and_bad_model():
    assert models.resolve("auto", (10,)) == "mlp"
    assert models.resolve("auto", (1, 28, 28)) == "cnn"
    assert models.resolve("auto", (3, 64, 64)) == "resnet18"
    with pytest.raises(ValueError, match="needs image data"):
        models.build_model("cnn", (10,))
    with pytest.raises(ValueError, match="model must be one of"):
        models.build_model("vgg", (10,))


def test_transforms_against_direct_indexing():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    assert torch.equal(transforms.center_crop(x, 4), x[..., 1:5, 1:5])
    flipped = transforms.hflip(x, p=1.0)
    assert torch.equal(flipped[..., 0], x[..., 5])
    n = transforms.normalize(torch.ones(1, 3, 2, 2))
    expect = (1 - np.array(transforms.IMAGENET_MEAN)) / np.array(transforms.IMAGENET_STD)
    assert np.allclose(n[0, :, 0, 0].numpy(), expect)
    g = torch.Generator().manual_seed(0)
    crop = transforms.random_resized_crop(torch.rand(3, 3, 16, 16), 16, gen=g)
    assert crop.shape == (3, 3, 16, 16) and crop.min() >= 0 and crop.max() <= 1
