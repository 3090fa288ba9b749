"""The AU task's protocols: ``au-lodo`` (MEB's CD6ME: leave one dataset out) and
``au-loso`` (leave one subject out within one dataset)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mer_bench.protocols.base import Protocol, dataset_folds, one_subject_folds, require_composite
from mer_bench.report.au_metrics import au_summary


@dataclass(frozen=True)
class AULODO(Protocol):
    """MEB's cross-dataset AU protocol (CD6ME): one fold per source dataset of the
    composite — train on the others, detect the 12 AUs (``au12``) of the held-out one.
    Metrics (``mer_bench.report.au_metrics``): F1 per AU, the mean over AUs per held-out
    dataset and the mean over datasets, with a subject bootstrap. Runs on ``cd6me``
    (real: CASME, CASME II, SAMM, 4DME, MMEW, CAS(ME)^3-A) or ``synth-cd6me`` (twins,
    the default). MEB repeats it over 5 seeds (``--seeds 0 1 2 3 4``); one is the default."""

    name = "au-lodo"
    task = "au"
    default_dataset = "synth-cd6me"

    def check_dataset(self, dataset: str) -> None:
        require_composite(self.name, dataset, ("cd6me",))

    def folds(self, samples: pd.DataFrame, seed: int):
        return dataset_folds(samples)

    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        return au_summary(predictions, classes)


@dataclass(frozen=True)
class AULOSO(Protocol):
    """AU detection within one dataset, one fold per subject (MEB's individual-dataset
    AU validation); metrics pooled over the folds as ``au-lodo``'s with one dataset.
    Default dataset ``synth-casme2``."""

    name = "au-loso"
    task = "au"

    def folds(self, samples: pd.DataFrame, seed: int):
        return one_subject_folds(samples)

    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        return au_summary(predictions, classes)
