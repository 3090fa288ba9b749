"""Content-addressed on-disk cache of per-clip features.

Key = sha256(sample_id, dataset fingerprint, spec JSON, feature code version). Values
are ``.npy`` files under ``<cache_dir>/features/<key[:2]>/<key>.npy`` with the spec's
JSON beside them (``<key>.json``). Writes go to a temporary file in the same folder
and are renamed into place, so concurrent workers and interrupted runs never leave a
torn file; an entry that fails to load is recomputed, not trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from mer_bench.data.registry import Dataset
from mer_bench.features import FEATURE_CODE_VERSION, FeatureSpec


def default_cache_dir() -> Path:
    """``$MER_BENCH_CACHE`` or ``~/.cache/mer-bench``."""
    return Path(os.environ.get("MER_BENCH_CACHE", Path.home() / ".cache" / "mer-bench"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (never a torn file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class FeatureCache:
    """Feature arrays by (sample, source, spec); ``root=None`` keeps nothing on disk."""

    def __init__(self, root: Path | str | None):
        self.root = None if root is None else Path(root)

    def path(self, dataset: Dataset, sample_id: str, spec: FeatureSpec) -> Path | None:
        if self.root is None:
            return None
        text = "\0".join([sample_id, dataset.fingerprint, json.dumps(spec.to_json(), sort_keys=True),
                          FEATURE_CODE_VERSION])
        key = hashlib.sha256(text.encode()).hexdigest()
        return self.root / "features" / key[:2] / f"{key}.npy"

    def load(self, path: Path | None) -> np.ndarray | None:
        """The stored array, or None when absent or unreadable (corrupt entries are
        recomputed by the caller)."""
        if path is None or not path.exists():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None

    def store(self, path: Path | None, array: np.ndarray, spec: FeatureSpec, sample_id: str) -> None:
        if path is None:
            return
        atomic_write_bytes(path, _npy_bytes(array))
        meta = {"sample_id": sample_id, "spec": spec.to_json(), "version": FEATURE_CODE_VERSION}
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, sort_keys=True).encode())

    def compute_one(self, dataset: Dataset, row: pd.Series, spec: FeatureSpec) -> np.ndarray:
        """Cached value of ``spec`` for one row, computing and storing it on a miss."""
        path = self.path(dataset, row["sample_id"], spec)
        array = self.load(path)
        if array is None:
            array = spec.compute(dataset, row).astype(np.float32, copy=False)
            self.store(path, array, spec, row["sample_id"])
        return array

    def materialize(self, dataset: Dataset, rows: pd.DataFrame, spec: FeatureSpec,
                    n_jobs: int = 1, progress: bool = True) -> np.ndarray:
        """``spec`` for every row: float32 (len(rows), ...), in row order.

        Hits are loaded in this process; misses are computed in ``n_jobs`` joblib workers
        (chunks of rows), with a tqdm bar.
        """
        out: list[np.ndarray | None] = [self.load(self.path(dataset, sid, spec))
                                        for sid in rows["sample_id"]]
        missing = [i for i, a in enumerate(out) if a is None]
        if missing:
            chunks = [missing[i:i + 16] for i in range(0, len(missing), 16)]
            jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(self._compute_chunk)(dataset, rows.iloc[c], spec) for c in chunks)
            bar = tqdm(total=len(missing), desc=f"features {spec.describe()}", unit="clip",
                       disable=not progress, leave=False)
            for chunk, arrays in zip(chunks, jobs):
                for i, array in zip(chunk, arrays):
                    out[i] = array
                bar.update(len(chunk))
            bar.close()
        return np.stack(out)

    def _compute_chunk(self, dataset: Dataset, rows: pd.DataFrame,
                       spec: FeatureSpec) -> list[np.ndarray]:
        return [self.compute_one(dataset, row, spec) for _, row in rows.iterrows()]
