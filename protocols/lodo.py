"""Leave-one-dataset-out over the MEGC2019 composite (cross-dataset generalization)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mer_bench.protocols.base import dataset_folds, pooled_summary, require_composite
from mer_bench.protocols.cde import CDE


@dataclass(frozen=True)
class LODO(CDE):
    """Leave one dataset out in the MEGC2019 3-class space: three folds over the official
    442 clips (train on two of SMIC-HS / CASME II / SAMM, test on the third), or four
    with CAS(ME)^3 part A joined (``megc2019-casme3a``: its clips under the same three
    classes, 'others' dropped). Metrics: UF1/UAR per held-out dataset (``per_dataset``)
    and pooled over the folds, with a bootstrap over subjects. Runs on ``megc2019``,
    ``megc2019-casme3a`` (real) or their twins (``synth-megc2019``, the default, and
    ``synth-megc2019-casme3a``)."""

    name = "lodo"

    def check_dataset(self, dataset: str) -> None:
        require_composite(self.name, dataset, ("megc2019", "megc2019-casme3a"))

    def folds(self, samples: pd.DataFrame, seed: int):
        return dataset_folds(samples)

    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        return pooled_summary(predictions, classes, per_subject=False, per_dataset=True)
