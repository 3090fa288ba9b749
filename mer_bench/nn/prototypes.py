"""Prototype classifiers shared by the metric-learning adapters (protonet, MCNet, MPFNet).

A classifier is a set of prototypes (P, d) with the class each one stands for (P,);
a query's score for class c is the best cosine similarity to any prototype of c, times
``scale``. Mean prototypes give one prototype per class (Snell et al.); MCNet's meta-clustering
(``meta_cluster_prototypes``) gives one or more per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def mean_prototypes(embeddings: torch.Tensor, labels: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means of ``embeddings`` (n, d) for the classes present in ``labels`` (n,).

    Returns prototypes (P, d) and their classes (P,), classes ascending."""
    classes = torch.unique(labels)
    onehot = (labels[:, None] == classes[None, :]).to(embeddings.dtype)
    protos = onehot.T @ embeddings / onehot.sum(0)[:, None]
    return protos, classes


def cosine_logits(queries: torch.Tensor, prototypes: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale`` * cosine similarity, (q, d) x (P, d) -> (q, P)."""
    return scale * F.normalize(queries, dim=-1) @ F.normalize(prototypes, dim=-1).T


@dataclass
class PrototypeClassifier:
    """Prototypes (P, d), their class indices (P,), and the number of classes."""

    prototypes: torch.Tensor
    classes: torch.Tensor
    n_classes: int
    scale: float = 10.0

    @classmethod
    def from_mean(cls, embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int,
                  scale: float = 10.0) -> "PrototypeClassifier":
        protos, classes = mean_prototypes(embeddings, labels)
        return cls(protos, classes, n_classes, scale)

    @classmethod
    def from_meta_clusters(cls, embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int,
                           scale: float = 10.0) -> "PrototypeClassifier":
        protos, classes, _ = meta_cluster_prototypes(embeddings, labels)
        return cls(protos, classes, n_classes, scale)

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """(q, n_classes): per class, the best logit over its prototypes; classes
        without a prototype get -inf."""
        logits = cosine_logits(queries, self.prototypes, self.scale)
        out = torch.full((len(queries), self.n_classes), float("-inf"), dtype=logits.dtype,
                         device=logits.device)
        index = self.classes.to(logits.device).expand(len(queries), -1)
        return out.scatter_reduce(1, index, logits, reduce="amax", include_self=True)


def meta_cluster_prototypes(embeddings: torch.Tensor, labels: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MCNet's bottom-up meta-clustering (Eq. 4) of support embeddings (n, d).

    Every sample starts as a cluster of weight 1. Repeatedly, the globally closest pair
    of clusters (cosine distance between centres) is found; if both have the same class
    they merge into their weight-averaged centre, x = (x_i w_i + x_j w_j) / (w_i + w_j),
    w = w_i + w_j; if they have different classes, clustering stops. Every remaining
    cluster is a prototype of its class.

    Returns prototypes (P, d), their classes (P,) and weights (P,), P >= number of classes.
    """
    centres = embeddings.detach().double().cpu().numpy().copy()
    classes = labels.detach().cpu().numpy().copy()
    weights = np.ones(len(centres))
    alive = np.ones(len(centres), bool)
    unit = centres / np.linalg.norm(centres, axis=1, keepdims=True).clip(1e-12)
    distance = 1.0 - unit @ unit.T
    np.fill_diagonal(distance, np.inf)
    while alive.sum() > 1:
        i, j = np.unravel_index(np.argmin(distance), distance.shape)
        if classes[i] != classes[j]:
            break
        centres[i] = (centres[i] * weights[i] + centres[j] * weights[j]) / (weights[i] + weights[j])
        weights[i] += weights[j]
        alive[j] = False
        distance[j, :] = distance[:, j] = np.inf
        unit[i] = centres[i] / max(np.linalg.norm(centres[i]), 1e-12)
        row = 1.0 - unit @ unit[i]
        row[~alive] = np.inf
        row[i] = np.inf
        distance[i, :] = distance[:, i] = row
    keep = np.flatnonzero(alive)
    device, dtype = embeddings.device, embeddings.dtype
    return (torch.as_tensor(centres[keep], dtype=dtype, device=device),
            torch.as_tensor(classes[keep], device=device),
            torch.as_tensor(weights[keep], dtype=dtype, device=device))
