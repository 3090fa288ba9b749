"""Five-fold subject-independent cross-validation (MMEW's official protocol)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mer_bench.errors import MerBenchError
from mer_bench.protocols.base import Protocol, pooled_summary, subject_folds
from mer_bench.seeding import stable_seed


def stratified_subject_folds(samples: pd.DataFrame, n_splits: int,
                             rng: np.random.Generator) -> list[list[str]]:
    """Whole subjects dealt into ``n_splits`` folds, class-stratified where possible.

    Subjects are visited in a random order; each goes to the fold whose squared
    distance from the even share (class total / n_splits, per class) grows least by
    adding its clips, ties going to the fold with fewer clips. (scikit-learn's
    ``StratifiedGroupKFold`` was not used: its ``shuffle`` barely changes the folds
    between seeds.)
    """
    table = pd.crosstab(samples["subject"], samples["label"])
    subjects, counts = table.index.to_numpy(), table.to_numpy(np.float64)
    target = counts.sum(0) / n_splits
    folds = np.zeros((n_splits, counts.shape[1]))
    members: list[list[str]] = [[] for _ in range(n_splits)]
    for s in rng.permutation(len(subjects)):
        gain = ((folds + counts[s] - target) ** 2).sum(1) - ((folds - target) ** 2).sum(1)
        cost = (gain, folds.sum(1))
        best = np.lexsort(cost[::-1])[0]
        folds[best] += counts[s]
        members[best].append(subjects[s])
    return [sorted(m) for m in members]


@dataclass(frozen=True)
class KFold(Protocol):
    """``n_splits`` folds of whole subjects, class-stratified where the subjects allow
    and shuffled by the run seed (``stratified_subject_folds``). Every sample is tested
    once per seed; metrics are pooled, the spread over seeds is reported apart, and the
    fold -> subjects assignment is stored in the result."""

    n_splits: int = 5
    name = "kfold5"

    def __post_init__(self):
        self.check_int("n_splits", 2)

    def folds(self, samples: pd.DataFrame, seed: int):
        n_subjects = samples["subject"].nunique()
        if n_subjects < self.n_splits:
            raise MerBenchError(f"kfold5 needs at least {self.n_splits} subjects; the data has "
                                f"{n_subjects}")
        groups = stratified_subject_folds(samples, self.n_splits,
                                          np.random.default_rng(stable_seed("kfold", seed)))
        return subject_folds(samples, {f"fold{k}": g for k, g in enumerate(groups)})

    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        return pooled_summary(predictions, classes)
