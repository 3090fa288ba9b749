"""The one N-way K-shot Q-query episode sampler, shared by the ``fewshot`` protocol (test
episodes) and the episodic trainer (meta-training episodes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_bench.errors import MerBenchError


@dataclass(frozen=True)
class Episode:
    """Positions into the sampled pool. ``support`` is (n_way * k_shot,), ``query``
    (n_way * q_query,), both ordered class by class; ``classes`` are the global class
    indices drawn, in episode order (episode label i = ``classes[i]``)."""

    classes: np.ndarray
    support: np.ndarray
    query: np.ndarray


def eligible_classes(labels: np.ndarray, need: int) -> np.ndarray:
    """Classes with at least ``need`` samples in ``labels``, ascending."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return values[counts >= need]


def sample_episode(labels: np.ndarray, n_way: int, k_shot: int, q_query: int,
                   rng: np.random.Generator) -> Episode:
    """Draw ``n_way`` classes among those with >= k_shot + q_query samples, then, per
    class, k_shot support and q_query query samples without replacement (disjoint)."""
    labels = np.asarray(labels)
    pool = eligible_classes(labels, k_shot + q_query)
    if len(pool) < n_way:
        raise MerBenchError(f"{n_way}-way {k_shot}-shot {q_query}-query: only {len(pool)} "
                            f"classes have {k_shot + q_query} samples; lower n_way, "
                            f"k_shot or q_query")
    classes = np.sort(rng.choice(pool, size=n_way, replace=False))
    support, query = [], []
    for c in classes:
        chosen = rng.choice(np.flatnonzero(labels == c), size=k_shot + q_query, replace=False)
        support.append(chosen[:k_shot])
        query.append(chosen[k_shot:])
    return Episode(classes, np.concatenate(support), np.concatenate(query))
