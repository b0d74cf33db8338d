"""The networks whose gradients LM-GC compresses, sized for scikit-learn's 8x8 digits.

ConvNet is the reference's (width 128, depth 3, ReLU, instance norm, average pooling): each
block is conv 3x3 (padding 1) -> instance norm (GroupNorm with one group per channel, affine)
-> ReLU -> 2x2 average pooling, so 8x8 -> 4x4 -> 2x2 -> 1x1, then one linear classifier. The
reference pads MNIST's first convolution to reach 32x32; 8x8 digits need no such trick. The MLP
is the plain baseline: 64 -> width -> ... -> 10 with ReLU. Neither has buffers, so the
state_dict holds exactly the trained tensors, in the order the gradient files list them.
"""

from __future__ import annotations

import torch
from torch import nn

from sublora.core.errors import ConfigError

NETWORKS = ("convnet", "mlp")
DEFAULT_WIDTH = {"convnet": 128, "mlp": 128}
DEFAULT_DEPTH = {"convnet": 3, "mlp": 2}


class ConvNet(nn.Module):
    def __init__(self, channels: int = 1, num_classes: int = 10, width: int = 128, depth: int = 3,
                 image_size: int = 8):
        super().__init__()
        self.width, self.depth = width, depth
        layers: list[nn.Module] = []
        size, in_channels = image_size, channels
        for _ in range(depth):
            layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
                       nn.GroupNorm(width, width, affine=True),  # instance norm, as the reference builds it
                       nn.ReLU(inplace=True)]
            if size >= 2:
                layers.append(nn.AvgPool2d(kernel_size=2, stride=2))
                size //= 2
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        return self.classifier(self.features(x).flatten(1))


class MLP(nn.Module):
    def __init__(self, inputs: int = 64, num_classes: int = 10, width: int = 128, depth: int = 2):
        super().__init__()
        self.width, self.depth = width, depth
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(inputs if i == 0 else width, width), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(width if depth else inputs, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 8, 8) or (B, 64) -> (B, classes)
        return self.layers(x.flatten(1))


def build_network(name: str, width: int | None = None, depth: int | None = None, seed: int = 0) -> nn.Module:
    """A freshly initialized network (``seed`` fixes its init, without touching the global RNG)."""
    if name not in NETWORKS:
        raise ConfigError(f"Unknown network {name!r}.", hint=f"Available: {', '.join(NETWORKS)}.")
    width = DEFAULT_WIDTH[name] if width is None else width
    depth = DEFAULT_DEPTH[name] if depth is None else depth
    if width < 1 or depth < (1 if name == "convnet" else 0):
        raise ConfigError(f"{name} needs width >= 1 and depth >= {1 if name == 'convnet' else 0} "
                          f"(got width {width}, depth {depth}).")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConvNet(width=width, depth=depth) if name == "convnet" else MLP(width=width, depth=depth)
