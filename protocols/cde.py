"""MEGC2019 composite database evaluation: LOSO over SMIC-HS + CASME II + SAMM."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mer_bench.data.schemes import base_dataset
from mer_bench.errors import MerBenchError
from mer_bench.protocols.base import pooled_summary
from mer_bench.protocols.loso import LOSO


@dataclass(frozen=True)
class CDE(LOSO):
    """LOSO over the 68 subjects of the official 442-clip composite (3 classes), with
    UF1/UAR pooled overall and per source dataset. Runs on ``megc2019`` (real) or
    ``synth-megc2019`` (twins, the default); the row selection is the dataset's, from
    the official list shipped with the package."""

    name = "cde"
    default_dataset = "synth-megc2019"

    def check_dataset(self, dataset: str) -> None:
        if base_dataset(dataset) != "megc2019":
            raise MerBenchError(f"protocol {self.name!r} runs on the MEGC2019 composite; got dataset "
                                f"{dataset!r}; choose from megc2019, synth-megc2019")

    def summarize(self, predictions: pd.DataFrame, classes: tuple[str, ...]) -> dict:
        return pooled_summary(predictions, classes, per_subject=True, per_dataset=True)
