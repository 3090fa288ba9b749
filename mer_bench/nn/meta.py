"""Bi-level meta-auxiliary learning (LightmanNet §4.2; MAML-style, Finn et al. 2017),
with functional parameters (``torch.func.functional_call``).

A model maps a batch (b, ...) to ``(logits, aux)``: class scores (b, n_classes) and an
auxiliary feature vector (b, d) or None. For each task τ_i (an N-way K-shot episode of
the training clips plus a batch of auxiliary macro-expression clips):

- inner level: fast weights θ_i = θ − α ∇θ [λ1 L_pri(support; θ) + λ2 L_aux(support,
  macro; θ)], for ``inner_steps`` steps; L_pri is cross-entropy over the episode's
  classes, L_aux the unbiased Gaussian MMD² between the support's and the macro
  clips' auxiliary features (``mer_bench.nn.alignment``);
- outer level: θ ← Adam step (rate β, weight decay) on Σ_i L_pri(query; θ_i).

``first_order=False`` differentiates through the inner steps (second order);
``first_order=True`` treats the inner gradients as constants (first-order MAML), so the
outer gradient reaches θ only along the identity path. ``adapt`` is the inner update
on the primary loss of labelled data without a graph, for test time, with batch norm
as in the inner steps. After training, batch-norm statistics are re-estimated on the
training clips (``recalibrate_batch_norm``). Meta-training episodes keep every class
with two clips or more: a rare class gets fewer query, then support, clips
(``sample_training_episode``) instead of being left out of every episode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from mer_bench.nn.alignment import gaussian_mmd2
from mer_bench.nn.batchnorm import batch_norm_statistics, recalibrate_batch_norm
from mer_bench.nn.episodes import sample_training_episode, training_ways
from mer_bench.progress import stage

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MetaAuxSchedule:
    """Outer ``steps`` of ``tasks_per_batch`` tasks; ``inner_steps`` inner updates of
    rate ``alpha``; Adam with rate ``beta`` and ``weight_decay`` outside; the inner
    objective weights ``lambda_pri`` and ``lambda_aux``; ``aux_batch`` macro clips per
    task."""

    steps: int = 2000
    tasks_per_batch: int = 4
    n_way: int | None = None
    k_shot: int = 5
    q_query: int = 5
    inner_steps: int = 1
    alpha: float = 0.2
    beta: float = 0.1
    weight_decay: float = 1e-4
    lambda_pri: float = 0.55
    lambda_aux: float = 0.45
    aux_batch: int = 16
    first_order: bool = False


def parameters_of(model: nn.Module) -> Params:
    return dict(model.named_parameters())


def restricted_ce(logits: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the columns ``classes`` (the episode's global class indices);
    ``labels`` are global class indices among them."""
    local = (labels[:, None] == classes[None, :]).float().argmax(1)
    return F.cross_entropy(logits[:, classes], local)


def task_loss(model: nn.Module, params: Params, x: torch.Tensor, labels: torch.Tensor,
              classes: torch.Tensor, aux_x: torch.Tensor | None,
              schedule: MetaAuxSchedule, buffers: Params | None = None) -> torch.Tensor:
    """λ1 L_pri(x) + λ2 MMD²(aux features of x, of ``aux_x``) with ``params`` (and
    ``buffers``: batch-norm statistics, default the model's own)."""
    buffers = dict(model.named_buffers()) if buffers is None else buffers
    logits, features = functional_call(model, (params, buffers), (x,))
    loss = schedule.lambda_pri * restricted_ce(logits, labels, classes)
    if aux_x is not None and features is not None and schedule.lambda_aux:
        _, macro = functional_call(model, (params, buffers), (aux_x,))
        loss = loss + schedule.lambda_aux * gaussian_mmd2(features, macro)
    return loss


def inner_update(model: nn.Module, params: Params, x: torch.Tensor, labels: torch.Tensor,
                 classes: torch.Tensor, aux_x: torch.Tensor | None, schedule: MetaAuxSchedule,
                 create_graph: bool, buffers: Params | None = None) -> Params:
    """``schedule.inner_steps`` gradient steps of rate α from ``params`` (θ untouched)."""
    fast = params
    for _ in range(schedule.inner_steps):
        loss = task_loss(model, fast, x, labels, classes, aux_x, schedule, buffers)
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=create_graph,
                                    allow_unused=True)
        fast = {name: p if g is None else p - schedule.alpha * (g if create_graph else g.detach())
                for (name, p), g in zip(fast.items(), grads)}
    return fast


def meta_aux_train(model: nn.Module, x: np.ndarray, labels: np.ndarray, aux_x: np.ndarray | None,
                   schedule: MetaAuxSchedule, rng: np.random.Generator, device: str) -> list[float]:
    """Meta-train ``model`` on episodes of (x, labels), with ``aux_x`` (macro clips) for
    the auxiliary branch (None: no auxiliary task). Returns the outer loss per step."""
    n_way = training_ways(labels, schedule.n_way)
    optimizer = torch.optim.Adam(model.parameters(), lr=schedule.beta,
                                 weight_decay=schedule.weight_decay)
    xt = torch.from_numpy(np.ascontiguousarray(x))
    losses = []
    model.train()
    for _ in stage(schedule.steps, "meta-auxiliary steps"):
        optimizer.zero_grad()
        total = 0.0
        for _ in range(schedule.tasks_per_batch):
            ep = sample_training_episode(labels, n_way, schedule.k_shot, schedule.q_query, rng)
            classes = torch.as_tensor(ep.classes, device=device)
            support_y = torch.as_tensor(labels[ep.support], device=device)
            query_y = torch.as_tensor(labels[ep.query], device=device)
            macro = aux_batch(aux_x, schedule.aux_batch, rng, device)
            fast = inner_update(model, parameters_of(model), xt[ep.support].to(device), support_y,
                                classes, macro, schedule, create_graph=not schedule.first_order)
            logits, _ = functional_call(model, (fast, dict(model.named_buffers())),
                                        (xt[ep.query].to(device),))
            loss = restricted_ce(logits, query_y, classes) / schedule.tasks_per_batch
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        losses.append(total)
    recalibrate_batch_norm(model, x, device)
    return losses


def adapt(model: nn.Module, x: np.ndarray, labels: np.ndarray, classes: np.ndarray,
          schedule: MetaAuxSchedule, device: str) -> tuple[Params, Params]:
    """Test-time adaptation: ``inner_steps`` steps of rate α from θ on the primary loss of
    labelled ``x`` (a few-shot episode's support, or the fold's training clips),
    restricted to ``classes``. There is no auxiliary task at test time (the paper
    fine-tunes on the task's labelled data). No graph is kept and θ is unchanged.

    Batch norm is used as in meta-training's inner steps: normalized with the batch
    statistics of ``x`` (train mode, on copies of the buffers). Returns the adapted
    weights and batch-norm running statistics re-estimated on ``x`` for them, so that
    prediction normalizes as the adapted weights expect. (Taking the step in eval mode,
    with the statistics of θ, made one step of a trained model blow its logits up from
    about 2 to about 350 and its training accuracy fall from 0.99 to 0.45.)"""
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    primary_only = replace(schedule, lambda_aux=0.0)
    scratch = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.train()
    fast = inner_update(model, parameters_of(model), xt,
                        torch.tensor(np.asarray(labels), device=device),
                        torch.tensor(np.asarray(classes), device=device), None, primary_only,
                        create_graph=False, buffers=scratch)
    fast = {name: p.detach() for name, p in fast.items()}
    return fast, batch_norm_statistics(model, fast, x, device)


def aux_batch(aux_x: np.ndarray | None, size: int, rng: np.random.Generator,
              device: str) -> torch.Tensor | None:
    """``size`` macro clips drawn without replacement (all when fewer), or None."""
    if aux_x is None:
        return None
    chosen = rng.choice(len(aux_x), size=min(size, len(aux_x)), replace=False)
    return torch.from_numpy(np.ascontiguousarray(aux_x[np.sort(chosen)])).to(device)
