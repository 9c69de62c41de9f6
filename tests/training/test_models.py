"""pfml_core.training.models: embedding shapes and norms, and ResNet trunks that are
torchvision's own (state_dict keys and parameter counts checked against torchvision's
published numbers; the ImageNet weights requested, never downloaded, in tests)."""
import numpy as np
import pytest
import torch

from pfml_core.training import models
from pfml_core.vision import models as tv_models
from pfml_core.vision import torchvision

FC = {"resnet18": 512 * 1000 + 1000, "resnet50": 2048 * 1000 + 1000}  # the classifier removed


@pytest.mark.parametrize("name, params, n_keys, feat", [
    ("resnet18", 11_689_512, 122, 512),   # torchvision's documented parameter counts
    ("resnet50", 25_557_032, 320, 2048),
])
def test_resnet_trunk_is_torchvision_resnet(name, params, n_keys, feat):
    torch.manual_seed(0)
    net = models.build_model(name, (3, 32, 32), embedding_size=16)
    resnet = net.trunk[1]
    assert isinstance(resnet, tv_models.ResNet) and isinstance(resnet.fc, torch.nn.Identity)
    assert sum(p.numel() for p in resnet.parameters()) == params - FC[name]
    state = net.state_dict()
    reference = getattr(tv_models, name)(weights=None).state_dict()
    assert len(reference) == n_keys
    trunk_keys = {k[len("trunk.1."):] for k in state if k.startswith("trunk.1.")}
    assert trunk_keys == {k for k in reference if not k.startswith("fc.")}  # torchvision's names
    assert set(state) - {f"trunk.1.{k}" for k in trunk_keys} == {"head.weight", "head.bias"}
    assert state["trunk.1.conv1.weight"].shape == (64, 3, 7, 7)
    assert state["head.weight"].shape == (16, feat)
    assert "trunk.1.layer2.0.downsample.1.running_mean" in state
    assert "trunk.1.layer2.1.downsample.0.weight" not in state


def test_resnet50_bottleneck_keys():
    state = models.build_model("resnet50", (3, 32, 32)).state_dict()
    assert state["trunk.1.layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert state["trunk.1.layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)


def test_pretrained_asks_torchvision_for_imagenet_weights(monkeypatch):
    donor = tv_models.resnet18(weights=None).state_dict()
    calls = []

    def fake_load(url, **kw):  # what torchvision would download (no network in tests)
        calls.append(url)
        return donor

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fake_load)
    net = models.build_model("resnet18", (3, 32, 32), pretrained=True)
    assert calls == [tv_models.ResNet18_Weights.IMAGENET1K_V1.url]
    assert calls[0] == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert torch.equal(net.state_dict()["trunk.1.layer3.1.bn2.weight"], donor["layer3.1.bn2.weight"])


@pytest.mark.parametrize("name, shape", [("mlp", (5,)), ("mlp", (1, 8, 8)), ("cnn", (1, 28, 28)),
                                         ("resnet18", (3, 32, 32)), ("resnet18", (1, 32, 32))])
def test_embeddings_are_unit_norm(name, shape):
    torch.manual_seed(0)
    net = models.build_model(name, shape, embedding_size=16).eval()
    out = net(torch.rand(4, *shape))
    assert out.shape == (4, 16)
    assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)


def test_resnet_input_is_imagenet_normalised_rgb():
    net = models.build_model("resnet18", (1, 8, 8)).eval()
    x = torch.full((2, 1, 8, 8), 0.5)  # grey, one channel
    seen = net.trunk[0](x)  # what the torchvision ResNet receives
    assert seen.shape == (2, 3, 8, 8)
    expect = (0.5 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(seen[1, :, 3, 4].numpy(), expect, rtol=1e-6)


def test_auto_and_bad_model():
    assert models.resolve("auto", (10,)) == "mlp"
    assert models.resolve("auto", (1, 28, 28)) == "cnn"
    assert models.resolve("auto", (3, 64, 64)) == "resnet18"
    with pytest.raises(ValueError, match="needs image data"):
        models.build_model("cnn", (10,))
    with pytest.raises(ValueError, match="model must be one of"):
        models.build_model("vgg", (10,))
    with pytest.raises(ValueError, match="embedding_size"):
        models.build_model("mlp", (10,), embedding_size=1)
