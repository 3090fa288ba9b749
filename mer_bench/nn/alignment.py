"""Distribution alignment between feature sets: the unbiased Gaussian-kernel MMD²
(Gretton et al. 2012), used by LightmanNet's auxiliary micro/macro alignment branch.

LightmanNet's equation 3 writes only the cross term, the mean kernel value between the
micro and the macro features; alone that term rewards collapsing both sets onto one
point. The full unbiased estimate adds the two within-set terms:

    MMD²_u = mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j)

with k a sum of Gaussian kernels at bandwidths ``scales`` × the median pairwise distance
(median heuristic, computed without gradient), so no single σ has to be tuned.
"""

from __future__ import annotations

import torch

BANDWIDTH_SCALES = (0.5, 1.0, 2.0)


def gaussian_mmd2(x: torch.Tensor, y: torch.Tensor,
                  scales: tuple[float, ...] = BANDWIDTH_SCALES) -> torch.Tensor:
    """Unbiased MMD² between samples ``x`` (n, d) and ``y`` (m, d), n, m >= 2; a scalar
    tensor that can be slightly negative when the two distributions are equal."""
    if len(x) < 2 or len(y) < 2:
        raise ValueError("MMD² needs at least two samples on each side")
    joint = torch.cat([x, y])
    norms = joint.pow(2).sum(1)
    # explicit squared distances: torch.cdist has no double backward (second-order MAML)
    sq = (norms[:, None] + norms[None, :] - 2 * joint @ joint.T).clamp_min(0)
    with torch.no_grad():
        off = sq[~torch.eye(len(joint), dtype=torch.bool, device=sq.device)]
        median = off.median().clamp_min(1e-12)
    kernel = sum(torch.exp(-sq / (2 * median * s ** 2)) for s in scales)
    n = len(x)
    kxx, kyy, kxy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    within = lambda k: (k.sum() - k.diagonal().sum()) / (len(k) * (len(k) - 1))
    return within(kxx) + within(kyy) - 2 * kxy.mean()
