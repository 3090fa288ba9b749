"""What the runner hands a method's ``fit``: ``RunContext`` and the picklable loaders
behind it (auxiliary datasets, further features of the run's clips), which travel to
worker processes with each task."""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mer_bench.data.datasets import Dataset, load_dataset
from mer_bench.data.samples import SampleSet
from mer_bench.data.schemes import get_scheme
from mer_bench.errors import MerBenchError
from mer_bench.features.cache import FeatureCache, atomic_write_bytes
from mer_bench.features.specs import FeatureSpec


@lru_cache(maxsize=8)
def quiet_dataset(name: str, data_seed: int) -> Dataset:
    """A dataset loaded once per process, without repeating the loader's warnings (the
    main process has shown them and the result file records them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, data_seed=data_seed)


@dataclass
class AuxiliaryLoader:
    """Picklable loader for ``RunContext.auxiliary``: the named dataset under its default
    scheme, with the method's inputs materialized through the feature cache."""

    datasets: dict
    specs: tuple[FeatureSpec, ...]
    cache_root: Path | None
    data_seed: int
    _loaded: dict = field(default_factory=dict, repr=False)

    def _dataset(self, kind: str) -> Dataset:
        if kind not in self.datasets:
            raise MerBenchError(f"no auxiliary dataset {kind!r}; configured: {list(self.datasets)}")
        return quiet_dataset(self.datasets[kind], self.data_seed)

    def fingerprint(self, kind: str) -> str:
        return self._dataset(kind).fingerprint

    def __call__(self, kind: str) -> SampleSet:
        if kind not in self._loaded:
            self._loaded[kind] = self._load(kind)
        return self._loaded[kind]

    def _load(self, kind: str) -> SampleSet:
        dataset = self._dataset(kind)
        rows = get_scheme(None, dataset.name).apply(dataset.samples)
        cache = FeatureCache(self.cache_root)
        feats = tuple(cache.materialize(dataset, rows, s, progress=False) for s in self.specs)
        classes = get_scheme(None, dataset.name).classes
        return SampleSet.build(rows, feats, classes, hide_labels=False)


@dataclass
class FeatureLoader:
    """Picklable access for methods to more features of the run's clips
    (``RunContext.materialize``), computed by core operators through the cache."""

    dataset: str
    data_seed: int
    cache_root: Path | None

    def __call__(self, spec: FeatureSpec, sample_ids: list[str]) -> np.ndarray:
        dataset = quiet_dataset(self.dataset, self.data_seed)
        rows = dataset.samples.set_index("sample_id").loc[list(sample_ids)].reset_index()
        return FeatureCache(self.cache_root).materialize(dataset, rows, spec, progress=False)


@dataclass
class RunContext:
    """What the runner gives ``fit``: device (``cpu``/``cuda``), seed, preset, a scratch
    folder, the auxiliary datasets (``auxiliary("macro")`` -> a labelled ``SampleSet``
    with this method's inputs), a cache for fold-independent artefacts, and
    ``materialize`` for further features of the fold's training clips (``train_ids``;
    nothing the context offers reaches a test clip)."""

    device: str = "cpu"
    seed: int = 0
    preset: str = "paper"
    scratch_dir: Path | None = None
    auxiliary_loader: AuxiliaryLoader | None = None
    artifact_dir: Path | None = None
    feature_loader: FeatureLoader | None = None
    train_ids: frozenset[str] = frozenset()
    _memory: dict = field(default_factory=dict)

    def materialize(self, spec: FeatureSpec, sample_ids: list[str]) -> np.ndarray:
        """More features of the fold's training clips (e.g. motion-magnified copies),
        computed by the core operators through the feature cache: float32
        (len(sample_ids), ...). Any id outside the training set is refused."""
        if self.feature_loader is None:
            raise MerBenchError("this run gives methods no access to further features")
        outside = [s for s in sample_ids if s not in self.train_ids]
        if outside:
            raise MerBenchError(f"ctx.materialize: {outside[0]!r} is not a training clip of this "
                                f"fold ({len(outside)} of {len(sample_ids)} ids refused); methods "
                                f"may compute features only of their training data")
        return self.feature_loader(spec, sample_ids)

    def auxiliary(self, kind: str = "macro") -> SampleSet:
        if self.auxiliary_loader is None:
            raise MerBenchError(f"no auxiliary {kind!r} dataset is configured for this run")
        return self.auxiliary_loader(kind)

    def auxiliary_fingerprint(self, kind: str = "macro") -> str:
        """Identity of the auxiliary dataset's source data (for artefact keys)."""
        if self.auxiliary_loader is None:
            raise MerBenchError(f"no auxiliary {kind!r} dataset is configured for this run")
        return self.auxiliary_loader.fingerprint(kind)

    def artifact(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()``'s value, computed once per ``key`` per run and reused across folds
        (and worker processes, through ``artifact_dir``). ``key`` must name everything
        the artefact depends on (config hash, data, seed)."""
        if key in self._memory:
            return self._memory[key]
        path = None
        if self.artifact_dir is not None:
            digest = hashlib.sha256(key.encode()).hexdigest()[:24]
            path = Path(self.artifact_dir) / f"{digest}.pkl"
            if path.exists():
                try:
                    self._memory[key] = pickle.loads(path.read_bytes())
                    return self._memory[key]
                except (pickle.UnpicklingError, EOFError, OSError):
                    pass  # a corrupt artefact is rebuilt
        value = build()
        if path is not None:
            atomic_write_bytes(path, pickle.dumps(value))
        self._memory[key] = value
        return value
