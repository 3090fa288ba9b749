"""torchvision's ResNet-18 and 3D ResNets with configurable stems and widths (see
``mer_bench.nn.backbones`` for what each is); a module of its own so that torchvision is
imported only where one of these networks is built."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet as resnet2d
from torchvision.models.video import resnet as resnet3d

from mer_bench.errors import MerBenchError

VIDEO_DEPTHS = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}
"""Blocks per stage of ``VideoResNet3d`` by depth."""


def _rebuild_stages(net: nn.Module, block, width: int, layers: list[int], *builder) -> None:
    """Replace ``net.layer1..4`` by stages of widths width * (1, 2, 4, 8) made with
    torchvision's ``_make_layer`` (``builder``: the video conv maker, when 3D)."""
    net.inplanes = width
    for k, (blocks, stride) in enumerate(zip(layers, (1, 2, 2, 2))):
        setattr(net, f"layer{k + 1}", net._make_layer(block, *builder, width * 2 ** k, blocks,
                                                      stride=stride))


def _init_like_torchvision(net: nn.Module) -> None:
    """torchvision's initialization: Kaiming-normal (fan-out) convs, unit BatchNorm,
    N(0, 0.01) linear weights with zero bias."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class ResNet18(resnet2d.ResNet):
    """torchvision ResNet-18 trunk (no classifier); ``out_features`` = 8 * width."""

    def __init__(self, in_channels: int = 3, width: int = 64):
        super().__init__(resnet2d.BasicBlock, [2, 2, 2, 2])
        self.fc = nn.Identity()
        if in_channels != 3 or width != 64:
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            if width != 64:
                _rebuild_stages(self, resnet2d.BasicBlock, width, [2, 2, 2, 2])
            _init_like_torchvision(self)
        self.out_features = 8 * width

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(b, C, H, W) -> (b, out_features, H/32, W/32): the trunk before pooling."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class VideoResNet3d(resnet3d.VideoResNet):
    """torchvision 3D ResNet: (b, C, T, H, W) -> (b, out_features) through its final
    linear layer (the attribute paper's "128-d fc").

    Stem: Conv3d 3x7x7, stride (``temporal_stride``, 2, 2), ``width`` channels, BN, ReLU;
    stages of width * (1, 2, 4, 8) channels, the last three halving T, H and W; global
    average pool. ``depth`` picks the blocks per stage (``VIDEO_DEPTHS``). With the
    defaults but ``depth`` and ``out_features`` it is torchvision's ``r3d`` layout."""

    def __init__(self, depth: int = 18, in_channels: int = 3, out_features: int = 400,
                 width: int = 64, temporal_stride: int = 1):
        if depth not in VIDEO_DEPTHS:
            raise MerBenchError(f"3D ResNet depth {depth} is not one of {sorted(VIDEO_DEPTHS)}")
        layers, block = VIDEO_DEPTHS[depth], resnet3d.BasicBlock
        super().__init__(block, [resnet3d.Conv3DSimple] * 4, layers, resnet3d.BasicStem,
                         num_classes=out_features)
        if (in_channels, width, temporal_stride) != (3, 64, 1):
            self.stem = nn.Sequential(
                nn.Conv3d(in_channels, width, (3, 7, 7), (temporal_stride, 2, 2), (1, 3, 3),
                          bias=False),
                nn.BatchNorm3d(width), nn.ReLU(inplace=True))
            if width != 64:
                _rebuild_stages(self, block, width, layers, resnet3d.Conv3DSimple)
                self.fc = nn.Linear(8 * width, out_features)
            _init_like_torchvision(self)
        self.out_features = out_features
