"""The one N-way K-shot Q-query episode sampler, shared by the ``fewshot`` protocol (test
episodes) and the episodic trainer (meta-training episodes)."""

from __future__ import annotations

import warnings
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


class EpisodeShrinkWarning(UserWarning):
    """Episodes are smaller than asked: too few classes (or clips per class) for N-way
    K-shot Q-query. ``effective`` holds what is used: {n_way, k_shot, q_query}; the
    runner reports it once per run and stores it in the result."""

    def __init__(self, message: str, requested: dict, effective: dict, dropped: list[int]):
        super().__init__(message)
        self.requested, self.effective, self.dropped = requested, effective, dropped


def feasible_episode(labels: np.ndarray, n_way: int | None, k_shot: int, q_query: int
                     ) -> tuple[int, int, int]:
    """(n_way, k_shot, q_query) that ``labels`` can fill: K and Q shrink (Q first) until
    two classes have K + Q clips; classes with fewer than K + Q clips are left out, so N
    shrinks. Any shrink is announced with an ``EpisodeShrinkWarning`` naming the
    effective values and the dropped classes. ``n_way=None`` asks for every class."""
    counts = np.bincount(np.asarray(labels))
    present = np.flatnonzero(counts)
    ranked = np.sort(counts)[::-1]
    if len(ranked) < 2 or ranked[1] < 2:
        raise MerBenchError("episodes need two classes with two samples each")
    k, q = k_shot, q_query
    while k + q > ranked[1]:
        if q > 1:
            q -= 1
        else:
            k -= 1
    asked = len(present) if n_way is None else n_way
    eligible = eligible_classes(labels, k + q)
    n = min(asked, len(eligible))
    if (n, k, q) != (asked, k_shot, q_query):
        dropped = sorted(set(present.tolist()) - set(eligible.tolist()))
        warnings.warn(EpisodeShrinkWarning(
            f"episodes shrink from {asked}-way {k_shot}-shot {q_query}-query to {n}-way {k}-shot "
            f"{q}-query: classes {dropped} have fewer than {k + q} training clips",
            {"n_way": asked, "k_shot": k_shot, "q_query": q_query},
            {"n_way": n, "k_shot": k, "q_query": q}, dropped), stacklevel=2)
    return n, k, q


def training_ways(labels: np.ndarray, n_way: int | None) -> int:
    """N for meta-training episodes: ``n_way`` (None: all) capped at the number of
    classes with at least two clips (one support and one query each)."""
    usable = len(eligible_classes(labels, 2))
    if usable < 2:
        raise MerBenchError("meta-training episodes need two classes with two clips each")
    return usable if n_way is None else min(n_way, usable)


def sample_training_episode(labels: np.ndarray, n_way: int, k_shot: int, q_query: int,
                            rng: np.random.Generator) -> Episode:
    """A meta-training episode that keeps rare classes: ``n_way`` classes drawn among
    those with >= 2 clips; a class with n clips gives min(k_shot, n - 1) support and
    min(q_query, n - support) query clips — its queries shrink first, then its support,
    never below one each. (``sample_episode`` leaves out every class with fewer than
    K + Q clips, so a head over all classes never trains their rows.)"""
    labels = np.asarray(labels)
    classes = np.sort(rng.choice(eligible_classes(labels, 2), size=n_way, replace=False))
    support, query = [], []
    for c in classes:
        members = np.flatnonzero(labels == c)
        k = min(k_shot, len(members) - 1)
        q = min(q_query, len(members) - k)
        chosen = rng.choice(members, size=k + q, replace=False)
        support.append(chosen[:k])
        query.append(chosen[k:])
    return Episode(classes, np.concatenate(support), np.concatenate(query))
