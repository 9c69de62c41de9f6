"""Embedding networks: a trunk (small MLP, small CNN, torchvision's ResNet-18/50) and a
linear head whose output is L2-normalised. Every model takes the raw data (images in
[0, 1] or features)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pfml_core import guards
from pfml_core.data import transforms
from pfml_core.vision import models as tv_models

MODELS = ("auto", "mlp", "cnn", "resnet18", "resnet50")
RESNETS = {  # name: (torchvision builder, its ImageNet weights, downloaded on first use)
    "resnet18": (tv_models.resnet18, tv_models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet50": (tv_models.resnet50, tv_models.ResNet50_Weights.IMAGENET1K_V1),
}


def mlp_trunk(in_features: int, hidden: int = 256) -> tuple[nn.Module, int]:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden),
                         nn.ReLU(), nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden),
                         nn.ReLU()), hidden


def cnn_trunk(in_channels: int) -> tuple[nn.Module, int]:
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    layers = [*block(in_channels, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
              *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 128


class ImageNetInput(nn.Module):
    """[0, 1] images -> 3 channels, ImageNet-normalised, as a torchvision ResNet expects."""

    def forward(self, x):
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return transforms.normalize(x)


def resnet_trunk(name: str, pretrained: bool) -> tuple[nn.Module, int]:
    """torchvision's ResNet without its classifier; pretrained=True loads the ImageNet
    weights (torchvision downloads them once into the torch hub cache: needs internet)."""
    build, weights = RESNETS[name]
    net = build(weights=weights if pretrained else None)
    feat = net.fc.in_features
    net.fc = nn.Identity()
    return nn.Sequential(ImageNetInput(), net), feat


class EmbeddingNet(nn.Module):
    """trunk -> linear head -> L2 normalisation: (B, ...) -> (B, embedding_size)."""

    def __init__(self, trunk: nn.Module, feat_dim: int, embedding_size: int):
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(feat_dim, embedding_size)

    def forward(self, x):
        return F.normalize(self.head(self.trunk(x)), dim=-1)


def resolve(name: str, input_shape: tuple[int, ...]) -> str:
    """'auto': MLP for features, small CNN for small images, ResNet-18 for larger ones."""
    guards.check_choice("model", name, MODELS)
    if name != "auto":
        return name
    if len(input_shape) == 1:
        return "mlp"
    return "cnn" if input_shape[-1] < 48 else "resnet18"


def build_model(name: str, input_shape: tuple[int, ...], embedding_size: int = 64,
                pretrained: bool = False) -> EmbeddingNet:
    """input_shape: one sample's shape, (F,) or (C, H, W)."""
    guards.check_int("embedding_size", embedding_size, 2, 4096)
    name = resolve(name, input_shape)
    if name == "mlp":
        trunk, feat = mlp_trunk(int(torch.tensor(input_shape).prod()))
    elif len(input_shape) != 3:
        raise ValueError(f"model {name!r} needs image data (C, H, W), got feature vectors of "
                         f"shape {input_shape}; use model='mlp'")
    elif name == "cnn":
        trunk, feat = cnn_trunk(input_shape[0])
    else:
        trunk, feat = resnet_trunk(name, pretrained)
    return EmbeddingNet(trunk, feat, embedding_size)
