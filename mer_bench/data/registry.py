"""The dataset contract and registry: a validated sample table plus lazy frame access.

Loaders (real and synthetic) register their factories here with ``register_dataset``;
``mer_bench.data.datasets.load_dataset`` is the public entry point.

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


class Dataset(ABC):
    """A sample table with lazily read frames."""

    name: str
    synthetic: bool
    samples: pd.DataFrame
    fingerprint: str
    problems: tuple = ()
    """Clips a loader skipped or warned about (``mer_bench.data.folders.Problem``)."""
    threadsafe: bool = False
    """``frames`` may be called from several threads at once (the feature cache then
    computes a cold cache's clips over the cores in threads: decoding real frames
    releases the GIL)."""

    @abstractmethod
    def frames(self, sample_id: str, indices: np.ndarray, size: int) -> np.ndarray:
        """uint8 (len(indices), size, size, 3) RGB frames of one clip."""

    def reader_classes(self) -> tuple[type, ...]:
        """The classes whose code reads this dataset's frames (their source is part of
        every feature-cache key: ``mer_bench.provenance.feature_code``)."""
        return (type(self),)

    def clip_fingerprint(self, sample_id: str) -> str:
        """Identity of one clip's source frames, for feature-cache keys: empty for data
        fully named by ``fingerprint`` (generated sets); real datasets give the sha256 of
        every frame file's content (``mer_bench.data.digests``), so an overwritten frame
        is noticed whatever its mtime, and a moved folder keeps its keys."""
        return ""


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
        self.threadsafe = all(p.threadsafe for p in parts)

    def frames(self, sample_id: str, indices: np.ndarray, size: int) -> np.ndarray:
        return self.parts[self._source[sample_id]].frames(sample_id, indices, size)

    def clip_fingerprint(self, sample_id: str) -> str:
        return self.parts[self._source[sample_id]].clip_fingerprint(sample_id)

    def reader_classes(self) -> tuple[type, ...]:
        return tuple(dict.fromkeys((type(self), *(c for p in self.parts.values()
                                                  for c in p.reader_classes()))))


DatasetFactory = Callable[..., Dataset]
_REGISTRY: dict[str, tuple[DatasetFactory, str]] = {}


def register_dataset(name: str, description: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator: make ``load_dataset(name)`` call the decorated factory."""

    def wrap(factory: DatasetFactory) -> DatasetFactory:
        _REGISTRY[name] = (factory, description)
        return factory

    return wrap
