"""Random spatial transforms on batches of images or feature maps (affine grids).

One transform per sample: rotation, translation and (optionally) a horizontal flip,
applied with ``grid_sample`` (bilinear, border padding). The same matrices can be
applied to an image and to its feature map (MA2MI's equivariance loss L3) or to both
frames of a clip (fine-tuning augmentation), because the grid is in normalized
coordinates and does not depend on resolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(n: int, max_degrees: float, max_shift: float, flip: bool,
                  generator: torch.Generator, device: str = "cpu") -> torch.Tensor:
    """(n, 2, 3) affine matrices: rotation uniform in +-``max_degrees``, translation
    uniform in +-``max_shift`` (fraction of the half-width, normalized coordinates),
    mirrored left-right with probability 1/2 when ``flip``."""
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * max_shift
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if flip \
        else torch.ones(n)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos * mirror, -sin, shift[:, 0]], 1),
                         torch.stack([sin * mirror, cos, shift[:, 1]], 1)], 1)
    return theta.to(device)


def apply_affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``x`` (n, C, H, W) resampled through ``theta`` (n, 2, 3); same shape out."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
