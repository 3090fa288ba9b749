"""What the runner hands a method's ``fit``: ``RunContext`` and the picklable loaders
behind it (auxiliary datasets, further features of the run's clips), which travel to
worker processes with each task."""

from __future__ import annotations

import fcntl
import hashlib
import io
import shutil
import tempfile
import warnings
from collections.abc import Callable
from contextlib import contextmanager
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
def quiet_dataset(name: str, data_seed: int, face_crop: str = "detect") -> Dataset:
    """A dataset loaded once per process, without repeating the loader's warnings (the
    main process has shown them and the result file records them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, data_seed=data_seed, face_crop=face_crop)


def macro_only(name: str, data_seed: int) -> dict:
    """Check that the auxiliary source ``name`` holds macro-expressions only and describe
    it: {"macro", "fingerprint", "synthetic"} (what ``mer-bench pretrain`` stores in a
    checkpoint). A ``folder:`` source cannot be checked and is warned about."""
    from mer_bench.data.macro_folder import is_macro_folder
    source = quiet_dataset(name, data_seed)
    if is_macro_folder(name):
        warnings.warn(f"--macro-dataset {name}: a folder cannot be checked for micro-expressions "
                      f"or for people of the target; make sure it holds neither", stacklevel=2)
        return {"macro": name, "fingerprint": source.fingerprint, "synthetic": False}
    micro = int((source.samples["kind"] != "macro").sum())
    if micro:
        raise MerBenchError(f"--macro-dataset {name}: {micro} of its {len(source.samples)} clips "
                            f"are not macro-expressions; the auxiliary source must be macro-only "
                            f"(synth-ckplus, ckplus, or folder:PATH)")
    return {"macro": name, "fingerprint": source.fingerprint, "synthetic": source.synthetic}


def macro_source(name: str, target: Dataset, data_seed: int,
                 described: dict | None = None) -> dict:
    """Check the auxiliary macro-expression source of a run on ``target`` and describe it
    for the run's identity and result: {"macro", "fingerprint", "synthetic"}.

    A registered dataset must hold macro-expressions only (``macro_only``) and share no
    people with the target (not the target itself, nor one of its parts): pre-training
    on the target's own clips would show the test subjects to the method. A synthetic
    source for a real-data target is warned about (the result then says it was
    pre-trained on synthetic faces). ``described``: the source as a pre-training
    checkpoint recorded it (``mer-bench pretrain``), checked against the target instead
    of ``name``."""
    from mer_bench.data.schemes import base_dataset
    source = described if described is not None else macro_only(name, data_seed)
    name = source["macro"]
    parts = getattr(target, "parts", {target.name: target})
    shared = {base_dataset(name)} & ({base_dataset(target.name)} | {base_dataset(p) for p in parts})
    if shared and not name.startswith("folder:"):
        raise MerBenchError(f"--macro-dataset {name}: it is (part of) the target dataset "
                            f"{target.name}; the auxiliary source must share no people with it")
    if source["synthetic"] and not target.synthetic:
        warnings.warn(f"--macro-dataset {name} is synthetic but {target.name} is real: the "
                      f"auxiliary training uses synthetic faces (give --macro-dataset ckplus or "
                      f"folder:PATH)", stacklevel=2)
    return dict(source)


@dataclass
class AuxiliaryLoader:
    """Picklable loader for ``RunContext.auxiliary``: the named dataset under its default
    scheme, with the method's inputs (or the specs asked for) materialized through the
    feature cache."""

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

    def __call__(self, kind: str, specs: tuple[FeatureSpec, ...] | None = None) -> SampleSet:
        specs = self.specs if specs is None else specs
        if (kind, specs) not in self._loaded:
            self._loaded[(kind, specs)] = self._load(kind, specs)
        return self._loaded[(kind, specs)]

    def _load(self, kind: str, specs: tuple[FeatureSpec, ...]) -> SampleSet:
        dataset = self._dataset(kind)
        rows = get_scheme(None, dataset.name).apply(dataset.samples)
        cache = FeatureCache(self.cache_root)
        feats = cache.materialize_all(dataset, rows, specs, progress=False)
        classes = get_scheme(None, dataset.name).classes
        return SampleSet.build(rows, feats, classes, hide_labels=False)


@dataclass
class FeatureLoader:
    """Picklable access for methods to more features of the run's clips
    (``RunContext.materialize``), computed by core operators through the cache."""

    dataset: str
    data_seed: int
    cache_root: Path | None
    face_crop: str = "detect"

    def __call__(self, spec: FeatureSpec, sample_ids: list[str]) -> np.ndarray:
        dataset = quiet_dataset(self.dataset, self.data_seed, self.face_crop)
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
    auxiliary_loader: AuxiliaryLoader | None = None
    artifact_dir: Path | None = None
    feature_loader: FeatureLoader | None = None
    train_ids: frozenset[str] = frozenset()
    _memory: dict = field(default_factory=dict)
    _scratch: tempfile.TemporaryDirectory | None = None

    @property
    def scratch_dir(self) -> Path:
        """A private folder for this task's files, created on first use (most methods
        never ask) and removed by ``close`` (the runner closes the context when the task
        ends) or, failing that, when the context is garbage-collected."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="mer-bench-")
        return Path(self._scratch.name)

    def close(self) -> None:
        """Remove the scratch folder, if one was made."""
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

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

    def auxiliary(self, kind: str = "macro", specs: tuple[FeatureSpec, ...] | None = None
                  ) -> SampleSet:
        """The auxiliary dataset ``kind`` under its default scheme, with this method's
        inputs materialized, or ``specs`` instead (e.g. ``FramePairs`` for pre-training)."""
        if self.auxiliary_loader is None:
            raise MerBenchError(f"no auxiliary {kind!r} dataset is configured for this run")
        return self.auxiliary_loader(kind, specs)

    def auxiliary_fingerprint(self, kind: str = "macro") -> str:
        """Identity of the auxiliary dataset's source data (for artefact keys)."""
        if self.auxiliary_loader is None:
            raise MerBenchError(f"no auxiliary {kind!r} dataset is configured for this run")
        return self.auxiliary_loader.fingerprint(kind)

    def artifact(self, key: str, build: Callable[[], Any],
                 check: Callable[[Any], None] | None = None) -> Any:
        """``build()``'s value, computed once per ``key`` per run and reused across folds,
        worker processes and runs (through ``artifact_dir``). ``key`` must name everything
        the artefact depends on (config hash, data, seed); ``ARTIFACT_VERSION`` is added.

        Values are tensors, state dicts and plain containers of tensors, numbers and
        strings: stored with ``torch.save`` and read back with
        ``torch.load(weights_only=True)``, which never runs code from the file (a shared
        cache folder cannot inject any). A stored entry that cannot be read, holds a
        non-finite tensor or fails ``check`` (e.g. a state dict that does not fit the
        model: ``check`` raises) is rebuilt, with one warning. Workers that need the same
        artefact at once wait for the first to build it (a file lock beside it), so it is
        built once, not once per worker."""
        if key in self._memory:
            return self._memory[key]
        if self.artifact_dir is None:
            self._memory[key] = build()
            return self._memory[key]
        digest = hashlib.sha256(f"{ARTIFACT_VERSION}:{key}".encode()).hexdigest()[:24]
        path = Path(self.artifact_dir) / f"{digest}.pt"
        with _exclusive(path.with_suffix(".lock")):
            value = _load_artifact(path, check)
            if value is None:
                import torch  # artefacts are torch's; a method without any never imports it
                value = build()
                buffer = io.BytesIO()
                torch.save(value, buffer)
                if path.is_dir():
                    shutil.rmtree(path)
                atomic_write_bytes(path, buffer.getvalue())
        self._memory[key] = value
        return value


@contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) for the block."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


ARTIFACT_VERSION = "2"
"""Part of every artefact key; bump when what an artefact holds changes."""


def _load_artifact(path: Path, check: Callable[[Any], None] | None) -> Any | None:
    """The verified artefact at ``path``, or None (absent, or rebuilt after a warning)."""
    if not path.exists():
        return None
    import torch
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
        for tensor in _tensors(value):
            if not torch.isfinite(tensor).all():
                raise ValueError("non-finite values")
        if check is not None:
            check(value)
        return value
    except Exception as err:  # whatever is wrong with a cached entry, it is rebuilt
        warnings.warn(f"artefact cache: {path} is rebuilt ({type(err).__name__}: "
                      f"{str(err).splitlines()[0][:120] if str(err) else ''})", stacklevel=3)
        return None


def _tensors(value: Any) -> list:
    """Every floating tensor inside nested dicts, lists and tuples."""
    import torch
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []
