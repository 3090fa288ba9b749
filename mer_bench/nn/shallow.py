"""The shallow flow CNNs of the MEGC2019 baselines, as their papers define them (not in
torchvision). Inputs are 28 x 28 maps of the onset -> apex flow.

- ``STSTNet`` (Liong et al., FG 2019, Table I; the layer order, batch normalization
  and dropout of the authors' ``main.py``): three parallel 3x3 convolutions of 3, 5 and
  8 filters with "same" padding as the paper's Table I gives it (28x28; the authors'
  ``main.py`` pads by 2, 30x30 maps, which pool to the same 10x10 and 5x5 grids), each
  followed by ReLU, batch normalization, 3x3 max pooling of stride 3 (10x10) and
  dropout; concatenation (16 channels), 2x2 average pooling (5x5x16 = 400), one dense
  layer.
  1,683 parameters for 3 classes (convolutions 448, batch norm 32, dense 1,203; the
  paper's text says 1,670, which neither its Table I, 1,651 without batch norm, nor the
  authors' code gives).
- ``OffApexNet`` (Gan et al., Signal Processing: Image Communication 2019): two streams,
  horizontal and vertical flow, each conv 5x5 x 6 (same) - ReLU - 2x2 max pool -
  conv 5x5 x 16 - ReLU - 2x2 max pool (7x7x16 = 784); concatenation (1,568), dense
  1,024 - 1,024 - classes with ReLU and dropout 0.5. 2,664,475 parameters for 3 classes,
  i.e. 2.66 M (the STSTNet paper's Table V lists 2.77 M; the difference is not
  explained there).
"""

from __future__ import annotations

import torch
from torch import nn

STSTNET_FILTERS = (3, 5, 8)


class STSTNet(nn.Module):
    """(b, 3, 28, 28) u, v, optical strain -> (b, n_classes) logits.

    The three streams read the same input and every layer after their convolutions
    (ReLU, batch norm, max pooling, dropout) acts channel by channel, so they are
    computed as one convolution of 3 + 5 + 8 = 16 filters whose channels 0-2, 3-7 and
    8-15 are the streams: the same parameters and outputs as three separate
    convolutions concatenated, in one call (about twice as fast on a CPU)."""

    def __init__(self, in_channels: int = 3, n_classes: int = 3, dropout: float = 0.5):
        super().__init__()
        width = sum(STSTNET_FILTERS)
        self.streams = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                     nn.BatchNorm2d(width), nn.MaxPool2d(3, stride=3, padding=1),
                                     nn.Dropout(dropout))
        self.pool = nn.AvgPool2d(2, stride=2)
        self.fc = nn.Linear(5 * 5 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.streams(x)).flatten(1))


def lenet_stream() -> nn.Sequential:
    """One OFF-ApexNet stream: (b, 1, 28, 28) -> (b, 16, 7, 7)."""
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))


class OffApexNet(nn.Module):
    """(b, 2, 28, 28) horizontal, vertical flow -> (b, n_classes) logits."""

    def __init__(self, in_channels: int = 2, n_classes: int = 3, dropout: float = 0.5):
        super().__init__()
        self.streams = nn.ModuleList(lenet_stream() for _ in range(in_channels))
        self.head = nn.Sequential(
            nn.Linear(in_channels * 16 * 7 * 7, 1024), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(dropout), nn.Linear(1024, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [stream(x[:, i:i + 1]).flatten(1) for i, stream in enumerate(self.streams)]
        return self.head(torch.cat(parts, dim=1))
