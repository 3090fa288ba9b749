"""Prototype classifiers shared by the metric-learning adapters (protonet, MCNet, MPFNet).

A classifier is a set of prototypes (P, d) with the class each one stands for (P,);
a query's score for class c is the best cosine similarity to any prototype of c, times
``scale``. Mean prototypes give one prototype per class (Snell et al.); other builders
(MCNet's meta-clustering) give several.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """(q, n_classes): per class, the best logit over its prototypes; classes
        without a prototype get -inf."""
        logits = cosine_logits(queries, self.prototypes, self.scale)
        out = torch.full((len(queries), self.n_classes), float("-inf"), dtype=logits.dtype,
                         device=logits.device)
        index = self.classes.to(logits.device).expand(len(queries), -1)
        return out.scatter_reduce(1, index, logits, reduce="amax", include_self=True)
