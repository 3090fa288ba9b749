"""Leave-one-subject-out: one fold per subject, pooled metrics (MEGC2019 convention)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mer_bench.protocols.base import Protocol, one_subject_folds, pooled_summary


@dataclass(frozen=True)
class LOSO(Protocol):
    """Each subject is the test set once; every sample is tested exactly once.

    Metrics: TP/FP/FN pooled over all folds, bootstrap CI over subjects, and a
    per-subject table. The seed does not change the folds (it only seeds the method).
    """

    name = "loso"

    def folds(self, samples: pd.DataFrame, seed: int):
        return one_subject_folds(samples)

    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        return pooled_summary(predictions, classes, per_subject=True)
