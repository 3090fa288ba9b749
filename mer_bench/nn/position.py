"""MA2MI's facial-position losses (shared/papers/ma2mi.txt, equations 2-6).

``F`` is a position feature map (b, C, H, W); position i is one of its H*W cells and
<.,.> the cosine similarity of two C-vectors.

- L1 (Eq. 2), diversity: the mean cosine between distinct positions of one map.
- L2 (Eq. 3-4), cross-face matching: for two faces' maps F1, F2, every position i of F1
  is matched to its most similar position j*_i of F2; L2 = (mean cosine of the
  unmatched pairs i, j != j*_i) - (mean cosine of the matched pairs).
- L3 (Eq. 5), equivariance: || E_p(tau(I)) - tau(E_p(I)) ||_2 for a random spatial
  transform tau; here the root-mean-square over the map's elements, so that its scale
  does not grow with the map size (the paper writes the plain 2-norm).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from mer_bench.nn.augment import apply_affine


def position_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, C, H, W) x (n, C, H, W) -> (n, HW, HW) cosines between every pair of cells."""
    a = F.normalize(a.flatten(2), dim=1)
    b = F.normalize(b.flatten(2), dim=1)
    return a.transpose(1, 2) @ b


def diversity_loss(maps: torch.Tensor) -> torch.Tensor:
    """Eq. 2 averaged over the batch; needs H*W >= 2."""
    cos = position_cosines(maps, maps)
    hw = cos.shape[-1]
    off_diagonal = cos.sum((1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(1)
    return (off_diagonal / (hw * (hw - 1))).mean()


def matching_loss(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Eq. 3 for row-aligned pairs of faces (first[k], second[k]), averaged; H*W >= 2."""
    cos = position_cosines(first, second)
    hw = cos.shape[-1]
    best = cos.max(dim=2).values                                   # (n, HW): <F1(i), F2(j*_i)>
    unmatched = (cos.sum(2) - best).sum(1) / (hw * (hw - 1))
    return (unmatched - best.mean(1)).mean()


def equivariance_loss(encoder: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                      theta: torch.Tensor) -> torch.Tensor:
    """Eq. 5 (RMS form): ``encoder`` maps (n, 3, H, W) images to (n, C, h, w) maps;
    ``theta`` (n, 2, 3) are the transforms (``random_affine``)."""
    moved_then_encoded = encoder(apply_affine(images, theta))
    encoded_then_moved = apply_affine(encoder(images), theta)
    return (moved_then_encoded - encoded_then_moved).pow(2).flatten(1).mean(1).sqrt().mean()


def position_loss(encoder: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                  theta: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """L_pos = L1 + L2 + L3 (Eq. 6) on a batch of >= 2 different faces: L2 pairs face k
    with face k+1 (cyclically). Returns the loss and its three parts as floats."""
    maps = encoder(images)
    parts = {"L1": diversity_loss(maps), "L2": matching_loss(maps, maps.roll(1, dims=0)),
             "L3": equivariance_loss(encoder, images, theta)}
    return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}
