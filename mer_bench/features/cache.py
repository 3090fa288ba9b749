"""Content-addressed on-disk cache of per-clip features.

Key = sha256(sample_id, dataset fingerprint, the clip's source fingerprint and annotated
frames, spec JSON, the digest of the code that computes the spec). Values are ``.npy``
files under ``<cache_dir>/features/<key[:2]>/<key>.npy`` with the spec's JSON beside
them (``<key>.json``). Writes go to a temporary file in the same folder
and are renamed into place, so concurrent workers and interrupted runs never leave a
torn file; an entry that fails to load or to verify (dtype, the spec's shape, finite
values) is recomputed, not trusted, and the run says how many were.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from mer_bench.data.registry import Dataset
from mer_bench.features import FeatureSpec
from mer_bench.progress import progress_bar
from mer_bench.provenance import feature_code
from mer_bench.threads import thread_imap, usable_cores


def default_cache_dir() -> Path:
    """``$MER_BENCH_CACHE`` or ``~/.cache/mer-bench``."""
    return Path(os.environ.get("MER_BENCH_CACHE", Path.home() / ".cache" / "mer-bench"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (never a torn file).
    The file gets the permissions a plain ``open`` would (0666 less the umask), so a
    group-shared results or cache folder stays readable by the group."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class CorruptEntry(UserWarning):
    """A cache entry that failed verification and is recomputed."""


def _corrupt(path: Path, reason: str) -> None:
    warnings.warn(CorruptEntry(f"{path}: {reason}"), stacklevel=3)
    return None


class FeatureCache:
    """Feature arrays by (sample, source, spec); ``root=None`` keeps nothing on disk."""

    def __init__(self, root: Path | str | None):
        self.root = None if root is None else Path(root)

    def path(self, dataset: Dataset, row: pd.Series, spec: FeatureSpec) -> Path | None:
        """Where ``spec`` of ``row``'s clip is stored. The key names everything the
        operator reads: the clip's id, its annotated frames (onset, apex, offset, length),
        the dataset's and the clip's source fingerprints (real data: the content digest
        of every frame file, not the folder's path), the spec and the sha256 of the
        code that computes it (``mer_bench.provenance.feature_code``: an edited operator
        re-keys its entries; no version to bump by hand)."""
        return self.paths(dataset, row.to_frame().T, spec)[0]

    def paths(self, dataset: Dataset, rows: pd.DataFrame, spec: FeatureSpec) -> list[Path | None]:
        """``path`` of every row, in row order (the spec's JSON encoded once)."""
        if self.root is None:
            return [None] * len(rows)
        spec_text = json.dumps(spec.to_json(), sort_keys=True)
        code = feature_code((type(spec), *dataset.reader_classes()))
        keys = zip(*([str(v) for v in rows[c].tolist()]
                     for c in ("sample_id", "onset", "apex", "offset", "n_frames")))
        out = []
        for sample_id, *frames in keys:
            text = "\0".join([sample_id, dataset.fingerprint, dataset.clip_fingerprint(sample_id),
                              *frames, spec_text, code])
            key = hashlib.sha256(text.encode()).hexdigest()
            out.append(self.root / "features" / key[:2] / f"{key}.npy")
        return out

    def load(self, path: Path | None, spec: FeatureSpec) -> np.ndarray | None:
        """The stored array, or None when absent; a corrupt entry (unreadable, not
        float32, not the spec's shape, NaN or inf) is reported (``CorruptEntry``) and
        None is returned so that the caller recomputes it."""
        if path is None or not path.exists():
            return None
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            return _corrupt(path, f"unreadable ({type(err).__name__})")
        if array.dtype != np.float32:
            return _corrupt(path, f"dtype {array.dtype}, not float32")
        if spec.shape is not None and array.shape != spec.shape:
            return _corrupt(path, f"shape {array.shape}, not {spec.shape}")
        if not np.isfinite(array).all():
            return _corrupt(path, "NaN or inf values")
        return array

    def store(self, path: Path | None, array: np.ndarray, spec: FeatureSpec, sample_id: str) -> None:
        if path is None:
            return
        atomic_write_bytes(path, _npy_bytes(array))
        meta = {"sample_id": sample_id, "spec": spec.to_json()}
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, sort_keys=True).encode())

    def compute_one(self, dataset: Dataset, row: pd.Series, spec: FeatureSpec) -> np.ndarray:
        """``spec`` of one row, computed and stored (a miss or a corrupt entry)."""
        array = spec.compute(dataset, row).astype(np.float32, copy=False)
        self.store(self.path(dataset, row, spec), array, spec, row["sample_id"])
        return array

    def materialize(self, dataset: Dataset, rows: pd.DataFrame, spec: FeatureSpec,
                    n_jobs: int = 1, progress: bool = True) -> np.ndarray:
        """``spec`` for every row: float32 (len(rows), ...), in row order
        (``materialize_all`` with one spec)."""
        return self.materialize_all(dataset, rows, (spec,), n_jobs, progress)[0]

    def materialize_all(self, dataset: Dataset, rows: pd.DataFrame,
                        specs: tuple[FeatureSpec, ...], n_jobs: int = 1,
                        progress: bool = True) -> tuple[np.ndarray, ...]:
        """Every spec for every row: one float32 (len(rows), ...) array per spec, in
        row order.

        Hits are loaded in this process. Misses are computed clip by clip, all of a
        clip's missing specs one after the other (a real dataset keeps the current
        clip's decoded frames, so a frame two specs read is decoded once), in ``n_jobs``
        joblib workers (chunks of at most 16 clips, at least sixteen per worker, so that
        the last chunks finish close together), with a tqdm bar. With ``n_jobs > 1``
        each worker runs OpenCV on one thread (two workers on two cores would otherwise
        each start a pool the size of the machine); with ``n_jobs=1`` OpenCV keeps its
        own thread pool, and a dataset whose frames may be read from several threads
        (``Dataset.threadsafe``: real frame folders) has its chunks computed in threads,
        one per core (``mer_bench.threads``), in this process. Every clip's features are
        computed alone, so the arrays do not depend on how the work was spread.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CorruptEntry)
            out = [[self.load(path, spec) for path in self.paths(dataset, rows, spec)]
                   for spec in specs]
        corrupt = [w for w in caught if issubclass(w.category, CorruptEntry)]
        if corrupt:
            warnings.warn(f"feature cache: {len(corrupt)} corrupt entries are recomputed "
                          f"(first: {corrupt[0].message})", stacklevel=2)
        todo = {i: [j for j in range(len(specs)) if out[j][i] is None] for i in range(len(rows))}
        missing = [i for i, wanted in todo.items() if wanted]
        if missing:
            threads = n_jobs == 1 and dataset.threadsafe
            workers = usable_cores() if threads else n_jobs
            size = min(16, max(1, -(-len(missing) // (16 * workers))))
            chunks = [missing[i:i + size] for i in range(0, len(missing), size)]

            def chunk_job(c: list[int]) -> tuple:
                return dataset, rows.iloc[c], [[specs[j] for j in todo[i]] for i in c], n_jobs > 1
            if threads:
                jobs = thread_imap(lambda c: self._compute_chunk(*chunk_job(c)), chunks)
            else:
                jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
                    delayed(self._compute_chunk)(*chunk_job(c)) for c in chunks)
            what = specs[0].describe() if len(specs) == 1 else f"{len(specs)} specs"
            bar = progress_bar(len(missing), f"features {what}", "clip", progress)
            for chunk, arrays in zip(chunks, jobs):
                for i, computed in zip(chunk, arrays):
                    for j, array in zip(todo[i], computed):
                        out[j][i] = array
                bar.update(len(chunk))
            bar.close()
        return tuple(np.stack(arrays) for arrays in out)

    def _compute_chunk(self, dataset: Dataset, rows: pd.DataFrame,
                       specs: list[list[FeatureSpec]], one_thread: bool) -> list[list[np.ndarray]]:
        """For each row, its ``specs`` (computed and stored), in order."""
        if one_thread:
            cv2.setNumThreads(1)
        return [[self.compute_one(dataset, row, spec) for spec in wanted]
                for (_, row), wanted in zip(rows.iterrows(), specs)]
