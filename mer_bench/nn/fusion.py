"""Score fusion with a weight chosen on validation subjects drawn from the training
subjects only (MCNet's gamma, MPFNet-P's gamma): shared by the adapters."""

from __future__ import annotations

import numpy as np
import torch

from mer_bench.seeding import stable_seed

GAMMAS = tuple(round(0.1 * k, 1) for k in range(1, 11))
"""MCNet's grid: 0.1, 0.2, ..., 1.0."""
GAMMAS_FROM_ZERO = (0.0,) + GAMMAS
"""MPFNet-P's grid (§5.4): 0.0, 0.1, ..., 1.0."""


def split_validation_subjects(subjects: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask over clips: True for clips of the validation subjects, drawn from
    ``subjects`` (the fold's training subjects) only; at least one subject, and at
    least one left for training."""
    unique = np.unique(subjects)
    n_val = min(max(1, int(round(fraction * len(unique)))), len(unique) - 1)
    chosen = np.random.default_rng(stable_seed("validation-subjects", seed)).permutation(unique)[:n_val]
    return np.isin(subjects, chosen)


def choose_gamma(first: torch.Tensor, second: torch.Tensor, labels: np.ndarray,
                 gammas: tuple[float, ...] = GAMMAS) -> float:
    """The gamma maximizing accuracy of argmax(first + gamma * second) on the validation
    clips (ties: the smallest gamma). Scores are (n, C)."""
    truth = torch.as_tensor(labels, device=first.device)
    accuracy = [float(((first + g * second).argmax(1) == truth).float().mean()) for g in gammas]
    return gammas[int(np.argmax(accuracy))]
