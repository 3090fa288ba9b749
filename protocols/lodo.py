"""Leave-one-dataset-out over the MEGC2019 composite (cross-dataset generalization)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mer_bench.protocols.base import pooled_summary, subject_folds
from mer_bench.protocols.cde import CDE


@dataclass(frozen=True)
class LODO(CDE):
    """Three folds over the official 442 clips in the MEGC2019 3-class space: train on
    two of SMIC-HS / CASME II / SAMM, test on the third. Metrics: UF1/UAR per held-out
    dataset (``per_dataset``) and pooled over the three folds, with a bootstrap over
    subjects. Runs on ``megc2019`` (real) or ``synth-megc2019`` (twins, the default)."""

    name = "lodo"

    def folds(self, samples: pd.DataFrame, seed: int):
        by_source = samples.groupby("dataset", sort=True)["subject"].unique()
        return subject_folds(samples, {f"test-{source}": list(subjects)
                                       for source, subjects in by_source.items()})

    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        return pooled_summary(predictions, classes, per_subject=False, per_dataset=True)
