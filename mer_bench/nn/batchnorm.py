"""Batch-norm running statistics re-estimated on a set of inputs.

Episodic and meta-training update the running statistics from small episodes only
(momentum 0.1 over a few dozen steps), which leaves them far from the statistics of
the training data the embedding is then used on; every episodic trainer ends by
re-estimating them on its training inputs (the plain average over them).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

Params = dict[str, torch.Tensor]


def batch_bounds(n: int, batch: int) -> list[tuple[int, int]]:
    """[start, stop) of consecutive parts of ``batch`` items; a last part of a single
    item joins the one before (batch norm cannot take the statistics of one vector)."""
    bounds = [(start, min(start + batch, n)) for start in range(0, n, batch)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def batch_norm_statistics(model: nn.Module, params: Params, x: np.ndarray, device: str,
                          batch: int = 32) -> Params:
    """The model's buffers with every batch-norm running statistic re-estimated as the
    plain average over ``x`` (n, ...) float32 under the weights ``params`` (fresh
    copies: the model's own buffers are not touched); the model is left in eval mode."""
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    norms = {name: m for name, m in model.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    for name in norms:
        buffers[f"{name}.running_mean"].zero_()
        buffers[f"{name}.running_var"].fill_(1.0)
        buffers[f"{name}.num_batches_tracked"].zero_()
    momenta = {name: m.momentum for name, m in norms.items()}
    for m in norms.values():
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for start, stop in batch_bounds(len(x), batch):
            functional_call(model, (params, buffers),
                            (torch.from_numpy(np.ascontiguousarray(x[start:stop])).to(device),))
    for name, m in norms.items():
        m.momentum = momenta[name]
    model.eval()
    return buffers


def recalibrate_batch_norm(model: nn.Module, x: np.ndarray, device: str, batch: int = 32) -> None:
    """Batch-norm running statistics re-estimated as the plain average over ``x`` (the
    training clips), then eval mode. Episodic training updates them from small
    episodes only, which leaves them far from the data after few steps (MAML sidesteps
    this with transductive batch statistics at test time; we keep inference inductive)."""
    statistics = batch_norm_statistics(model, dict(model.named_parameters()), x, device, batch)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(statistics[name])
