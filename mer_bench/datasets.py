"""Datasets: a validated sample table plus lazy frame access, and the dataset registry.

A ``Dataset`` answers ``frames(sample_id, indices, size)`` with uint8 RGB arrays of shape
(len(indices), size, size, 3): the face region resized to ``size`` x ``size``. Frame
indices are 0-based positions inside the clip, the same frame numbering as the sample
table's onset/apex/offset. ``fingerprint`` identifies the source data (generator
version and seed for synthetic sets; file identity for real ones) and enters every
feature-cache key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import pandas as pd

from mer_bench.errors import MerBenchError


class Dataset(ABC):
    """A sample table with lazily read frames."""

    name: str
    synthetic: bool
    samples: pd.DataFrame
    fingerprint: str
    problems: tuple = ()
    """Clips a loader skipped or warned about (``mer_bench.folders.Problem``)."""

    @abstractmethod
    def frames(self, sample_id: str, indices: np.ndarray, size: int) -> np.ndarray:
        """uint8 (len(indices), size, size, 3) RGB frames of one clip."""


class CompositeDataset(Dataset):
    """Several datasets under one name (MEGC2019); frames are read from each row's source.

    ``samples`` keeps each row's source ``dataset`` so metrics can be split per source.
    """

    def __init__(self, name: str, parts: list[Dataset], samples: pd.DataFrame):
        self.name = name
        self.parts = {p.name: p for p in parts}
        self.synthetic = all(p.synthetic for p in parts)
        self.samples = samples.reset_index(drop=True)
        self.fingerprint = "+".join(p.fingerprint for p in parts)
        self._source = dict(zip(self.samples["sample_id"], self.samples["dataset"]))

    def frames(self, sample_id: str, indices: np.ndarray, size: int) -> np.ndarray:
        return self.parts[self._source[sample_id]].frames(sample_id, indices, size)


DatasetFactory = Callable[..., Dataset]
_REGISTRY: dict[str, tuple[DatasetFactory, str]] = {}


def register_dataset(name: str, description: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator: make ``load_dataset(name)`` call the decorated factory."""

    def wrap(factory: DatasetFactory) -> DatasetFactory:
        _REGISTRY[name] = (factory, description)
        return factory

    return wrap


def dataset_names() -> dict[str, str]:
    """Registered dataset names -> one-line descriptions."""
    _import_builtin()
    return {name: desc for name, (_, desc) in sorted(_REGISTRY.items())}


def load_dataset(name: str, **options) -> Dataset:
    """The dataset ``name``; ``options`` go to its factory (e.g. ``data_seed``)."""
    _import_builtin()
    if name not in _REGISTRY:
        raise MerBenchError(f"unknown dataset {name!r}; choose from {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name][0](**options)


def _import_builtin() -> None:
    import mer_bench.loaders  # noqa: F401  (registers the real datasets)
    import mer_bench.synthetic.twins  # noqa: F401  (registers the synthetic twins)
