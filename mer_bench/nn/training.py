"""Trainers shared by the adapters: episodic meta-training with a prototype classifier,
input standardization, and the step from a score tensor to a ``Prediction``. One place,
reused by every torch adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_bench.data.samples import SampleSet
from mer_bench.method import Prediction, restrict_to_support
from mer_bench.nn.batchnorm import recalibrate_batch_norm
from mer_bench.nn.episodes import feasible_episode, sample_episode
from mer_bench.nn.prototypes import cosine_logits, mean_prototypes
from mer_bench.progress import stage


def prediction_from_scores(scores: torch.Tensor, support: SampleSet | None = None) -> Prediction:
    """A ``Prediction`` from (n, C) scores on any device and in any dtype (bf16 under
    ``--amp``): float32 numpy scores, labels by argmax (over the support's classes when a
    support set is given; ``restrict_to_support``)."""
    values = scores.detach().float().cpu().numpy()
    return Prediction(restrict_to_support(values, support), values)


@dataclass(frozen=True)
class Execution:
    """How a step is executed, not what it computes: ``micro_batch`` splits each batch
    into parts of at most that many samples whose gradients are accumulated (None or 0:
    one part); ``amp`` runs the forward pass under bf16 autocast on CUDA (ignored on CPU).

    Batch normalization sees each part on its own: a part is normalized with its own
    statistics and the running statistics are updated once per part, as in data-parallel
    training without synchronized batch norm; parts are kept balanced and of at least
    two samples. Everything else is the full batch's gradient (parts are weighted by
    their share of the batch)."""

    micro_batch: int | None = None
    amp: bool = False


def accumulated_backward(loss_of: Callable[[np.ndarray], torch.Tensor], index: np.ndarray,
                         execution: Execution, device: str, min_part: int = 2) -> float:
    """Backward of the batch loss over ``index`` in parts (``Execution``) of at least
    ``min_part`` items (2 for samples, for batch norm; 1 for whole episodes): ``loss_of``
    returns the mean loss over the items it is given. Returns the batch's mean loss."""
    parts = 1 if not execution.micro_batch else int(np.ceil(len(index) / execution.micro_batch))
    parts = max(1, min(parts, len(index) // min_part))
    total = 0.0
    for part in np.array_split(index, parts):
        with torch.autocast("cuda", dtype=torch.bfloat16,
                            enabled=execution.amp and device.startswith("cuda")):
            loss = loss_of(part) * (len(part) / len(index))
        loss.backward()
        total += float(loss.detach())
    return total


@dataclass(frozen=True)
class EpisodicSchedule:
    """``steps`` optimizer steps, each averaging the loss of ``tasks_per_batch``
    N-way K-shot Q-query episodes (``n_way=None``: every class with enough samples,
    capped at the number present). SGD with momentum, fixed learning rate."""

    steps: int = 1000
    n_way: int | None = None
    k_shot: int = 5
    q_query: int = 5
    tasks_per_batch: int = 4
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scale: float = 10.0


def episodic_train(encoder: nn.Module, x: np.ndarray, labels: np.ndarray,
                   schedule: EpisodicSchedule, rng: np.random.Generator, device: str,
                   execution: Execution = Execution()) -> list[float]:
    """Meta-train ``encoder`` (maps (b, C, H, W) -> (b, d)) on episodes drawn from
    (x, labels): cosine similarity to mean prototypes, softmax cross-entropy.

    ``x`` float32 (n, C, H, W), ``labels`` int64 (n,). Returns the loss per step.
    Classes with fewer than k_shot + q_query samples are left out of episodes; if fewer
    than two classes qualify, K and Q shrink to what the smallest usable class allows
    (``feasible_episode``, which warns with the effective N, K, Q). Ends with the
    batch-norm statistics re-estimated on ``x`` and the encoder in eval mode
    (``recalibrate_batch_norm``: statistics tracked over a few small episodes left
    MPFNet-C's planted-signal training accuracy at 0.67 instead of 0.96).
    """
    n_way, k, q = feasible_episode(labels, schedule.n_way, schedule.k_shot, schedule.q_query)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=schedule.lr, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay)
    xt = torch.from_numpy(x)
    losses = []
    encoder.train()
    episode_labels = torch.arange(n_way, device=device)
    per_task = n_way * (k + q)
    tasks_per_part = Execution(max(1, execution.micro_batch // per_task)
                               if execution.micro_batch else None, execution.amp)

    def task_losses(episodes: list) -> Callable[[np.ndarray], torch.Tensor]:
        def loss_of(part: np.ndarray) -> torch.Tensor:
            total = 0.0
            for t in part:
                ep = episodes[t]
                emb = encoder(xt[np.concatenate([ep.support, ep.query])].to(device))
                support, query = emb[: len(ep.support)], emb[len(ep.support):]
                protos, _ = mean_prototypes(support, episode_labels.repeat_interleave(k))
                logits = cosine_logits(query.float(), protos.float(), schedule.scale)
                total = total + F.cross_entropy(logits, episode_labels.repeat_interleave(q))
            return total / len(part)
        return loss_of

    for _ in stage(schedule.steps, "meta-training steps"):
        optimizer.zero_grad()
        episodes = [sample_episode(labels, n_way, k, q, rng) for _ in range(schedule.tasks_per_batch)]
        losses.append(accumulated_backward(task_losses(episodes),
                                           np.arange(schedule.tasks_per_batch), tasks_per_part,
                                           device, min_part=1))
        optimizer.step()
    recalibrate_batch_norm(encoder, x, device)
    return losses


@dataclass
class ChannelStandardizer:
    """Per-channel mean/std of (n, C, ...) training inputs, applied to any split."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "ChannelStandardizer":
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        return cls(x.mean(axes).reshape(shape), x.std(axes).reshape(shape) + 1e-6)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


@torch.no_grad()
def embed(encoder: nn.Module, x: np.ndarray, device: str, batch_size: int = 128) -> torch.Tensor:
    """Encoder outputs for (n, C, H, W) inputs, in batches, eval mode; (n, d) on device."""
    encoder.eval()
    parts = [encoder(torch.from_numpy(x[i:i + batch_size]).to(device))
             for i in range(0, len(x), batch_size)]
    return torch.cat(parts)


def minibatches(n: int, batch_size: int, rng: np.random.Generator):
    """One epoch of shuffled index batches (int64 arrays) over ``n`` samples; a final
    batch of a single sample is dropped (BatchNorm and pairwise losses need two)."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        batch = order[start:start + batch_size]
        if len(batch) >= 2:
            yield batch


def minibatch_epochs(loss_of: Callable[[np.ndarray], torch.Tensor], n: int, epochs: int,
                     batch_size: int, optimizer: torch.optim.Optimizer, rng: np.random.Generator,
                     label: str, after_epoch: Callable[[], None] | None = None,
                     execution: Execution | None = None, device: str = "cpu") -> list[float]:
    """``epochs`` passes over ``n`` samples in shuffled mini-batches (``minibatches``):
    the loss ``loss_of(index)`` of each batch is back-propagated and ``optimizer`` steps;
    ``after_epoch`` (e.g. a learning-rate schedule) runs after every epoch. With
    ``execution`` each batch's backward runs in accumulated parts (``Execution``,
    ``accumulated_backward``; ``device`` decides whether its autocast applies). Returns
    the mean loss per epoch."""
    losses = []
    for _ in stage(epochs, label):
        total = 0.0
        for idx in minibatches(n, batch_size, rng):
            optimizer.zero_grad()
            if execution is None:
                loss = loss_of(idx)
                loss.backward()
                batch_loss = float(loss.detach())
            else:
                batch_loss = accumulated_backward(loss_of, idx, execution, device)
            optimizer.step()
            total += batch_loss * len(idx)
        if after_epoch is not None:
            after_epoch()
        losses.append(total / n)
    return losses


@dataclass(frozen=True)
class SupervisedSchedule:
    """Mini-batch SGD with momentum and cross-entropy through a temporary linear head;
    the learning rate is multiplied by ``lr_gamma`` every ``lr_step`` epochs (never when
    ``lr_step`` is None)."""

    epochs: int = 50
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step: int | None = None
    lr_gamma: float = 0.1


def supervised_train(encoder: nn.Module, x: np.ndarray, labels: np.ndarray, n_classes: int,
                     schedule: SupervisedSchedule, rng: np.random.Generator, device: str,
                     params: list | None = None, execution: Execution = Execution()
                     ) -> list[float]:
    """Pre-train ``encoder`` (with ``out_features``) as a classifier of (x, labels);
    the head is discarded afterwards. ``params``: the encoder parameters to update
    (default all). Returns the mean loss per epoch."""
    head = nn.Linear(encoder.out_features, n_classes).to(device)
    params = list(encoder.parameters() if params is None else params) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=schedule.lr, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay)
    scheduler = (torch.optim.lr_scheduler.StepLR(optimizer, schedule.lr_step, schedule.lr_gamma)
                 if schedule.lr_step else None)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.tensor(labels)
    losses = []
    encoder.train()
    for _ in stage(schedule.epochs, "supervised epochs"):
        total = 0.0
        for batch in minibatches(len(x), schedule.batch_size, rng):
            optimizer.zero_grad()
            loss = accumulated_backward(
                lambda part: F.cross_entropy(head(encoder(xt[part].to(device))).float(),
                                             yt[part].to(device)), batch, execution, device)
            optimizer.step()
            total += loss * len(batch)
        if scheduler:
            scheduler.step()
        losses.append(total / len(x))
    encoder.eval()
    return losses


@dataclass(frozen=True)
class TripletSchedule:
    """Triplet-network pre-training: every clip is an anchor once per epoch, with a random
    positive (same class, never the anchor itself) and negative (other class); SGD with
    momentum (``sample_triplets``)."""

    epochs: int = 60
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    margin: float = 0.2


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float) -> torch.Tensor:
    """mean(max(||a - p||^2 - ||a - n||^2 + margin, 0)), Euclidean, over (b, d) batches."""
    d_ap = (anchor - positive).pow(2).sum(1)
    d_an = (anchor - negative).pow(2).sum(1)
    return F.relu(d_ap - d_an + margin).mean()


def sample_triplets(anchors: np.ndarray, labels: np.ndarray, by_class: dict,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each anchor a random positive of its class other than itself and a random
    negative of another class; anchors whose class has no other member are left out.
    Returns (anchors, positives, negatives), int arrays of equal length."""
    kept = np.array([a for a in anchors if len(by_class[labels[a]]) > 1], dtype=np.int64)
    positives = np.array([rng.choice(by_class[labels[a]][by_class[labels[a]] != a]) for a in kept],
                         dtype=np.int64)
    negatives = np.array([rng.choice(np.flatnonzero(labels != labels[a])) for a in kept],
                         dtype=np.int64)
    return kept, positives, negatives


def triplet_train(encoder: nn.Module, x: np.ndarray, labels: np.ndarray, schedule: TripletSchedule,
                  rng: np.random.Generator, device: str, execution: Execution = Execution()
                  ) -> list[float]:
    """Train ``encoder`` as a triplet network (one set of weights for anchor, positive and
    negative) on L2-normalized embeddings. Returns the mean loss per epoch."""
    optimizer = torch.optim.SGD(encoder.parameters(), lr=schedule.lr, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay)
    xt = torch.from_numpy(np.ascontiguousarray(x))
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    losses = []
    encoder.train()
    for _ in stage(schedule.epochs, "triplet epochs"):
        order, total = rng.permutation(len(x)), 0.0
        for start in range(0, len(order), schedule.batch_size):
            anchors, positives, negatives = sample_triplets(
                order[start:start + schedule.batch_size], labels, by_class, rng)
            if not len(anchors):
                continue
            optimizer.zero_grad()

            def loss_of(part: np.ndarray) -> torch.Tensor:
                clips = np.concatenate([anchors[part], positives[part], negatives[part]])
                emb = F.normalize(encoder(xt[clips].to(device)).float(), dim=1)
                return triplet_loss(*emb.split(len(part)), schedule.margin)

            loss = accumulated_backward(loss_of, np.arange(len(anchors)),
                                        Execution(max(1, execution.micro_batch // 3)
                                                  if execution.micro_batch else None,
                                                  execution.amp), device)
            optimizer.step()
            total += loss * len(anchors)
        losses.append(total / len(x))
    encoder.eval()
    return losses
