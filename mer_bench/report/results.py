"""Result files (schema ``mer-bench/result/v1``): writing, reading, verifying.

A result is plain JSON. Top-level keys: schema, run_id, method {name, preset, config,
config_hash, inputs, file?}, protocol {name, version, params}, datasets, dataset,
dataset_fingerprint, synthetic, corruption? {kind, share, seed, n_corrupted},
label_scheme {name, classes}, seeds, folds, resumed_folds? (task keys taken from an
interrupted run's fold files, ``mer_bench.partial``), data_problems (clips a real-data loader
skipped or warned about: kind, file, row, sample_id, detail, skip), fit_warnings
[{message, tasks}], episode_shrink? {requested, effective {n_way, k_shot, q_query},
tasks, of_tasks} (meta-training episodes smaller than asked), predictions [{sample_id,
dataset, subject, fold, seed, y_true, y_pred, scores?, episode?}], episodes? [{seed,
episode, support [sample_id], support_labels}] (few-shot), metrics {accuracy, uf1, uar,
per_class, confusion, ci {metric: [lo, hi]}, ci_method, per_subject?, per_dataset?,
per_seed?, seed_spread?, sd?, n_repeats?, ci_episodes?}, diagnostics? {per_task [{seed,
group, stages {stage: {loss_start, loss_end, steps, loss [curve], figures...}}}], summary
{stage: {figure: median over tasks}}} (learning diagnostics: every method's "fitted
model" training accuracy, and each training stage a method reports; not verifiable from
the predictions, so not part of the verification), timing, environment, created.
``y_true``/``y_pred`` index ``label_scheme.classes``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

from mer_bench.errors import MerBenchError
from mer_bench.features.cache import atomic_write_bytes

RESULT_SCHEMA = "mer-bench/result/v1"
REQUIRED_KEYS = ("schema", "method", "protocol", "datasets", "synthetic", "label_scheme", "seeds",
                 "predictions", "metrics", "timing", "environment", "created")
PREDICTION_KEYS = ("sample_id", "dataset", "subject", "fold", "seed", "y_true", "y_pred")


def write_json(path: Path, data: dict, indent: int | None = 1) -> None:
    """Atomic JSON write (temporary file + rename); ``indent=None`` writes one compact
    line (json's C encoder: several times faster, for files no one reads by eye)."""
    atomic_write_bytes(Path(path), json.dumps(data, indent=indent, sort_keys=False).encode())


PACKAGES = {"mer-bench": "mer_bench", "numpy": "numpy", "pandas": "pandas",
            "scikit-learn": "sklearn", "scipy": "scipy", "torch": "torch",
            "opencv-contrib-python-headless": None, "joblib": "joblib"}
"""Distributions whose versions a result records -> the module whose ``__version__``
gives it when imported (None: always the installed metadata; OpenCV's module version
omits the wheel's build number)."""


def package_version(distribution: str) -> str | None:
    """The version of ``distribution`` this process runs: its module's ``__version__``
    when imported (a local build's ``+cu130`` tag included; no metadata scan), else the
    installed metadata's; None when not installed."""
    module = sys.modules.get(PACKAGES.get(distribution) or "")
    if getattr(module, "__version__", None):
        return str(module.__version__)
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


_WRITTEN_HERE: dict[Path, tuple[int, int]] = {}
"""Result files this process assembled and wrote (``write_result``): path -> (size,
modification time in ns) right after writing."""


def write_result(path: Path, result: dict) -> None:
    """Write a result the runner has just assembled and remember the file as written
    here (``written_here``)."""
    write_json(path, result)
    stat = Path(path).stat()
    _WRITTEN_HERE[Path(path).resolve()] = (stat.st_size, stat.st_mtime_ns)


def written_here(path: Path) -> bool:
    """Whether ``path`` is a result this process assembled and wrote, unchanged since
    (same size and modification time): its metrics were computed from these very
    predictions and its folds by the protocol it names a moment ago, so ``collect``
    does not verify it a second time. Any other file, and this one once touched, is
    verified in full."""
    try:
        stat = Path(path).stat()
    except OSError:
        return False
    return _WRITTEN_HERE.get(Path(path).resolve()) == (stat.st_size, stat.st_mtime_ns)


def environment() -> dict:
    """Package versions (``package_version``), git commit (when run from a checkout),
    CPU, GPU (as torch sees it; None without one, or when the run's method does not use
    torch), Python."""
    versions = {name: package_version(name) for name in PACKAGES}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    gpu = None
    if "torch" in sys.modules:  # a run of a method without torch does not import it to ask
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "gpu": gpu, "packages": versions, "git_commit": commit}


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` when it is a regular file (a symlink to one is followed) of at
    most ``limit`` bytes. A FIFO, device, socket or folder is refused without opening it
    for a blocking read (``O_NONBLOCK``, then ``fstat`` of what was opened), and no more
    than ``limit`` + 1 bytes are ever read, so no file can hang or exhaust a reader."""
    import stat as stat_module
    if not stat_module.S_ISREG(os.stat(path).st_mode):
        raise MerBenchError(f"{shown_path(path)}: not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat_module.S_ISREG(info.st_mode):
            raise MerBenchError(f"{shown_path(path)}: not a regular file")
        if info.st_size > limit:
            raise MerBenchError(f"{shown_path(path)}: {info.st_size / 2**20:.0f} MiB, above the "
                                f"{limit / 2**20:.0f} MiB a result file may have")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise MerBenchError(f"{shown_path(path)}: grew past {limit / 2**20:.0f} MiB while read")
    return data


def shown_path(path: Path) -> str:
    """``path`` as text that any terminal, markdown file or page can hold: a name that
    is not UTF-8 (bytes the file system allows) is shown with escapes."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return ascii(text)


def load_result(path: Path) -> dict:
    """Read and check a result file's shape and types (``schema.schema_problems``) before
    anything else reads it; errors name the file and what is wrong with it. Only a
    regular file of at most ``MAX_BYTES`` whose name is UTF-8 is read (``read_regular``)."""
    from mer_bench.report.schema import MAX_BYTES, MAX_DEPTH, schema_problems
    path = Path(path)
    if shown_path(path) != str(path):
        raise MerBenchError(f"{shown_path(path)}: the file name is not UTF-8; rename it")
    try:
        data = json.loads(read_regular(path, MAX_BYTES))
    except RecursionError:
        raise MerBenchError(f"{path}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except (OSError, ValueError) as err:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise MerBenchError(f"{path}: not a readable JSON result ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        raise MerBenchError(f"{path}: schema is not {RESULT_SCHEMA!r}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise MerBenchError(f"{path}: missing keys {missing}")
    for i, p in enumerate(data["predictions"] if isinstance(data["predictions"], list) else []):
        absent = [k for k in PREDICTION_KEYS if k not in p] if isinstance(p, dict) else []
        if absent:
            raise MerBenchError(f"{path}: prediction {i} lacks {absent}")
    problems = schema_problems(data)
    if problems:
        raise MerBenchError(f"{path}: {'; '.join(problems)}")
    return data


def predictions_frame(result: dict) -> pd.DataFrame:
    frame = pd.DataFrame(result["predictions"])
    if "episode" not in frame:
        frame["episode"] = None
    return frame


def recompute_metrics(result: dict) -> dict:
    """The metrics block recomputed from the stored predictions with the stored protocol."""
    from mer_bench.protocols import get_protocol
    protocol = get_protocol(result["protocol"]["name"], **result["protocol"]["params"])
    return protocol.summarize(predictions_frame(result), tuple(result["label_scheme"]["classes"]))


def mismatches(stored: object, fresh: object, where: str = "metrics", tol: float = 1e-9) -> list[str]:
    """Paths where two JSON-like values differ (floats compared with ``tol``)."""
    if isinstance(fresh, dict):
        if not isinstance(stored, dict):
            return [where]
        keys = set(stored) | set(fresh)
        return [m for k in sorted(keys, key=str)
                for m in mismatches(stored.get(k), fresh.get(k), f"{where}.{k}", tol)]
    if isinstance(fresh, (list, tuple)):
        if not isinstance(stored, (list, tuple)) or len(stored) != len(fresh):
            return [where]
        return [m for i, (a, b) in enumerate(zip(stored, fresh))
                for m in mismatches(a, b, f"{where}[{i}]", tol)]
    if isinstance(fresh, float) or isinstance(stored, float):
        if stored is None or fresh is None:
            return [] if stored is fresh else [where]
        ok = math.isclose(float(stored), float(fresh), rel_tol=tol, abs_tol=tol)
        return [] if ok else [where]
    return [] if stored == fresh else [where]


def verify_result(result: dict) -> list[str]:
    """Problems found recomputing the metrics from the predictions (empty = verified)."""
    classes = result["label_scheme"]["classes"]
    codes = 2 ** len(classes) if result["label_scheme"].get("task") == "au" else len(classes)
    bad = [i for i, p in enumerate(result["predictions"])
           if not (0 <= p["y_true"] < codes and 0 <= p["y_pred"] < codes)]
    if bad:
        return [f"predictions {bad[:5]} have labels outside 0..{codes - 1}"]
    fresh = json.loads(json.dumps(recompute_metrics(result)))
    diff = mismatches(result["metrics"], fresh)
    return [f"{d} does not match the stored predictions" for d in diff[:10]]
