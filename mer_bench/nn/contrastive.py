"""Cross-modal contrastive loss (attribute paper, equations 3-5).

For a batch of paired codes — video ``z_m`` (b, d) and text ``z_a`` (b, d) of the same
clips, row i with row i — clip i's positive pair is (v_i, t_i) and its negatives are
(v_i, t_j) for every other clip j in the batch:

    L = -mean_i log( d(v_i, t_i) / (d(v_i, t_i) + sum_{j != i} d(v_i, t_j)) ),
    d(v, t) = exp(cos(z_m, z_a) / temperature).

The paper's d is exp(cosine), i.e. ``temperature`` = 1. Clips whose AU sentences are
identical are still each other's negatives, as in the paper's definition.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_modal_contrastive_loss(video: torch.Tensor, text: torch.Tensor,
                                 temperature: float = 1.0) -> torch.Tensor:
    """Scalar loss for (b, d) video and text codes, row-aligned; b >= 2."""
    similarity = F.normalize(video, dim=1) @ F.normalize(text, dim=1).T / temperature
    return F.cross_entropy(similarity, torch.arange(len(video), device=video.device))
