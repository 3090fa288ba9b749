"""The runner: dataset -> scheme -> features (cached) -> folds (parallel) -> result file.

Each training group (one fold, or all few-shot episodes of a seed, which share one fit)
is a task. Tasks fan out over ``mer_bench.scaleout`` (``loky`` processes by default; a
Dask cluster; Ray or any other joblib backend by name). Every finished task is written at once to
``<out>/.partial/<run-id>/`` so an interrupted run continues with ``resume=True``;
the partial folder is removed only after the result file is written.

Timing (``mer_bench.timing``), per task: fit seconds (wall clock, CUDA synchronized),
parameter count and bytes, peak memory (CUDA: peak allocated; CPU: the worker process's
peak resident set size), device, dtype (``float32``, or ``bfloat16-autocast`` with
``amp``) and thread count. The inference throughput ladder (batch 1, 32, 256; fp32 and
bf16 autocast for torch methods) and FLOPs per clip are measured on the first task of
each seed, on its first test fold's clips; the result holds the median over those tasks.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mer_bench.context import AuxiliaryLoader, FeatureLoader, RunContext, macro_source
from mer_bench.data.datasets import Dataset, load_dataset
from mer_bench.data.samples import SampleColumns, SampleSet, unshuffle
from mer_bench.data.schemes import get_scheme
from mer_bench.devices import check_fit, claim_slot, remove_slots
from mer_bench.errors import MerBenchError, RunInterrupted
from mer_bench.features.cache import FeatureCache, default_cache_dir
from mer_bench.method import Method, Prediction, adapter_call
from mer_bench.methods import build_method, file_sha256, load_adapter_file, resolve_method
from mer_bench.nn.episodes import EpisodeShrinkWarning
from mer_bench.progress import RunEstimate, progress_bar, watching
from mer_bench.protocols import Fold, Protocol, get_protocol
from mer_bench import portable
from mer_bench.partial import accepted, load_partial
from mer_bench.protocols.base import fold_table
from mer_bench.report.au_metrics import au_macro_f1
from mer_bench.report.metrics import confusion, headline_from_confusion
from mer_bench.report.schema import MAX_SEEDS, NAME
from mer_bench.provenance import code_identity
from mer_bench.report.results import RESULT_SCHEMA, environment, write_json, write_result
from mer_bench.scaleout import backend_session
from mer_bench.seeding import stable_seed
from mer_bench.timing import (
    count_flops,
    device_class,
    device_name,
    inference_precision,
    ladder_cap,
    ladder_summary,
    peak_memory,
    pin_threads,
    predict_ladder,
    reset_peak_memory,
    resolve_device,
    sync,
)

if TYPE_CHECKING:
    from mer_bench.features.corruptions import Corruption


@dataclass
class RunOptions:
    """Everything ``mer-bench run`` takes. ``dataset=None`` uses the protocol's default
    (``synth-casme2``, or ``synth-megc2019`` for ``cde``); ``scheme=None`` the dataset's."""

    method: str
    protocol: str
    dataset: str | None = None
    scheme: str | None = None
    preset: str = "paper"
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    """Dask scheduler address for ``backend="dask"`` (None: a local cluster of ``jobs``
    workers); not part of the run identity, like ``jobs``."""
    out_dir: Path = Path("results")
    cache_dir: Path | None = None
    resume: bool = False
    fresh: bool = False
    protocol_params: dict = field(default_factory=dict)
    method_overrides: dict = field(default_factory=dict)
    auxiliary: dict = field(default_factory=lambda: {"macro": "synth-ckplus"})
    data_seed: int = 0
    progress: bool = True
    strict: bool = False
    face_crop: str = "detect"
    """``--face-crop``: ``detect`` crops the faces of real datasets distributed as whole
    frames; ``none`` reads every frame whole (``mer_bench.data.folders.FACE_CROPS``). It
    enters the dataset's fingerprint, so the run identity."""
    corruption: Corruption | None = None
    threads: int = 1
    """Compute threads per task (torch's pool and the BLAS/OpenMP pools), fixed so that
    ``--jobs`` and the machine never change the numbers (float reductions depend on the
    thread count); part of the run identity."""
    amp: bool = False
    """Run every ``predict`` under bf16 autocast (``--amp``; torch methods only): the
    inference throughput and the scored predictions both; part of the run identity."""
    devices: tuple[str, ...] = ()
    """``--devices``: spread the workers over these devices, ``jobs`` per device
    (``mer_bench.devices``); empty: every worker on ``device``. Not part of the run
    identity, like ``jobs``."""
    portable: bool = False
    """``--portable``: every library's kernels pinned to AVX2 + FMA, so the run gives the
    same bits on any x86-64 CPU (``mer_bench.portable``; needs a process started with the
    switches: the command line restarts itself). Part of the run identity."""


@dataclass
class Task:
    """One fit and the folds it predicts."""

    seed: int
    group: str
    folds: list[Fold]
    timed: bool = False
    """Measure inference throughput on this task's first test fold (the first task of
    each seed: one well-repeated measurement, not a few calls on every fold)."""

    @property
    def key(self) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in self.group)
        return f"seed{self.seed}-{safe}"


def check_backend(backend: str, scheduler: str | None = None) -> None:
    """Refuse an unknown joblib backend, or ``--scheduler`` without ``--backend dask``."""
    from joblib.parallel import BACKENDS
    if backend not in {*BACKENDS, "dask", "ray"}:
        raise MerBenchError(f"unknown joblib backend {backend!r}; registered: "
                            f"{', '.join(sorted({*BACKENDS, 'dask', 'ray'}))}")
    if scheduler and backend != "dask":
        raise MerBenchError(f"--scheduler is for --backend dask, not {backend!r}")


@contextmanager
def run_lock(path: Path):
    """Hold an exclusive lock on ``path`` for the block, or raise ``MerBenchError`` when
    another process holds it (two runs of one identity into one ``--out`` would share
    partial folds, and a ``--fresh`` could delete the other's). The lock dies with its
    process, so a crashed run never leaves it behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise MerBenchError(f"another run of the same identity is writing to this --out "
                                f"(lock {path}); wait for it to finish or use another --out") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_WATCHDOG: list[threading.Thread] = []


def exit_with_parent(interval: float = 1.0) -> None:
    """In a worker process: end it (``os._exit``) within ``interval`` seconds of its
    parent's death, instead of computing on for nothing (a killed run's loky workers
    otherwise ran ~40 s). Started once per process."""
    if _WATCHDOG:
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    _WATCHDOG.append(threading.Thread(target=watch, name="mer-bench-parent-watch", daemon=True))
    _WATCHDOG[0].start()


MAX_THREADS = 256
"""The most compute threads per fold ``--threads`` takes. A fixed bound, not this
machine's core count: threads are part of a run's identity, so a result made on a large
machine must re-run (``mer-bench reproduce``) on a small one."""


MAX_LOCAL_JOBS = 4
"""Most local worker processes (loky, a local Dask cluster) per core."""


def worker_count(jobs: int, n_tasks: int) -> int:
    """Worker processes for ``n_tasks`` fits: ``--jobs`` capped at the number of tasks
    (more would idle), with a warning when it asks for more than the machine's cores."""
    cores = os.cpu_count() or 1
    if jobs > cores:
        warnings.warn(f"--jobs {jobs} is more than this machine's {cores} cores: folds will "
                      f"compete for them", stacklevel=3)
    return max(1, min(jobs, n_tasks))


def check_options(options: RunOptions) -> None:
    """Refuse, before any work, options that cannot give a valid run: ``jobs``/``threads``
    below 1, a seed given twice, an output or cache folder that is a file or cannot be
    written."""
    for name in ("jobs", "threads"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MerBenchError(f"--{name} must be an integer >= 1; got {value!r}")
    local = options.backend != "dask" or not options.scheduler
    if local and options.jobs > MAX_LOCAL_JOBS * (os.cpu_count() or 1):
        raise MerBenchError(f"--jobs {options.jobs}: at most {MAX_LOCAL_JOBS} local worker "
                            f"processes per core ({MAX_LOCAL_JOBS * (os.cpu_count() or 1)} here); "
                            f"more folds at once only compete for the cores")
    if len(options.seeds) > MAX_SEEDS:
        raise MerBenchError(f"--seeds lists {len(options.seeds)} seeds; at most {MAX_SEEDS}")
    if options.threads > MAX_THREADS:
        raise MerBenchError(f"--threads {options.threads}: at most {MAX_THREADS} compute threads "
                            f"per fold (this machine has {os.cpu_count()} cores)")
    bad = [s for s in options.seeds if isinstance(s, bool) or not isinstance(s, int)
           or not 0 <= s < 2**32]
    if bad or not options.seeds:
        raise MerBenchError(f"seeds must be integers in [0, 2^32) (numpy's seed range); got "
                            f"{bad[0] if bad else 'none'!r}")
    repeated = sorted({s for s in options.seeds if list(options.seeds).count(s) > 1})
    if repeated:
        raise MerBenchError(f"--seeds lists {repeated} more than once; every prediction would be "
                            f"stored twice")
    cache_root = options.cache_dir if options.cache_dir is not None else default_cache_dir()
    for what, folder in (("--out", Path(options.out_dir)), ("--cache-dir", Path(cache_root))):
        writable_folder(folder, what)


def writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and prove a file can be written there, or raise
    ``MerBenchError`` naming ``what`` and the folder."""
    if folder.exists() and not folder.is_dir():
        raise MerBenchError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mer-bench-write-test-"):
            pass
    except OSError as err:
        raise MerBenchError(f"{what} {folder} cannot be written ({err.strerror or err})") from None


def run(options: RunOptions) -> Path:
    """Run one benchmark and write its result file; returns the file's path."""
    check_options(options)
    check_backend(options.backend, options.scheduler)
    protocol = get_protocol(options.protocol, **options.protocol_params)
    dataset_name = options.dataset or protocol.default_dataset
    protocol.check_dataset(dataset_name)
    dataset = load_dataset(dataset_name, data_seed=options.data_seed, strict=options.strict,
                           face_crop=options.face_crop)
    scheme = get_scheme(options.scheme, dataset.name, protocol.task)
    samples = scheme.apply(dataset.samples)
    if samples.empty:
        raise MerBenchError(f"scheme {scheme.name!r} keeps no clips of {dataset.name!r}")
    name = resolve_method(options.method)
    adapter = adapter_source(options.method)
    method = build_method(name, options.preset, **options.method_overrides)
    if protocol.task not in method.tasks:
        raise MerBenchError(f"method {method.name!r} predicts {' and '.join(method.tasks)}; "
                            f"protocol {protocol.name!r} evaluates {protocol.task} (methods for "
                            f"it: `mer-bench list`)")
    device = method_device(method, options)
    devices = worker_devices(method, options, device)
    numeric = numeric_mode(method, options, device)
    auxiliary = (macro_source(options.auxiliary["macro"], dataset, options.data_seed,
                              method.pretrained_source())
                 if method.uses_auxiliary else None)
    weights = weight_files(method)
    # the code as it is when the run starts (and is imported), not when it ends
    code = code_identity(type(method).__module__, type(protocol).__module__,
                         Path(options.method) if options.method.endswith(".py") else None)
    identity = run_identity(method, protocol, dataset, scheme, options, adapter, auxiliary, weights)
    run_hash = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    track = f"__{options.corruption.tag}" if options.corruption else ""
    run_id = (f"{method.name}__{protocol.name}__{dataset.name}__{scheme.name}__{options.preset}"
              f"{track}__{run_hash[:8]}")
    if not NAME.fullmatch(run_id):  # every part is a registered name; checked all the same
        raise MerBenchError(f"run id {run_id!r} is not a safe file name; refused")
    partial_dir = inside(Path(options.out_dir), Path(".partial") / run_id)
    with run_lock(Path(options.out_dir) / ".locks" / f"{run_id}.lock"):
        done = load_partial(partial_dir, run_hash, options.resume, options.fresh)

        tasks = _make_tasks(protocol, samples, options.seeds)
        done = accepted(done, tasks, samples, label_codes(scheme),
                        len(scheme.classes) if scheme.task == "au" else 0)
        resumed = sorted(done)
        todo = [t for t in tasks if t.key not in done]
        per_device = options.jobs
        options = replace(options, jobs=worker_count(options.jobs * len(devices), len(tasks)))
        if todo and options.jobs > 1 and on_this_machine(options):
            check_fit(name, options.preset, options.method_overrides, devices, per_device)
        cache_root = portable.cache_root(options.cache_dir if options.cache_dir is not None
                                         else default_cache_dir(), options.portable)
        cache = FeatureCache(cache_root)
        features = cache.materialize_all(dataset, samples, method.input_specs, n_jobs=options.jobs,
                                         progress=options.progress)
        test_features, corrupted = corrupted_features(features, cache, dataset, samples, method, options)
        aux = AuxiliaryLoader(options.auxiliary, method.input_specs, cache_root, options.data_seed)
        loader = FeatureLoader(dataset.name, options.data_seed, cache_root, options.face_crop)
        worker = TaskWorker(name, adapter["path"] if adapter else None, options.preset,
                            options.method_overrides, samples,
                            features, test_features, corrupted, scheme.classes, devices[0], aux,
                            loader, Path(cache_root) / "artifacts", options.jobs, options.threads,
                            options.amp, options.progress, devices=devices,
                            slot_dir=Path(options.out_dir) / ".locks", run_id=run_id,
                            task=scheme.task)
        if todo:
            worker.estimate = gpu_preset_on_cpu(method, options, device, len(todo), todo[0].key)
        try:
            _execute(worker, todo, partial_dir, run_hash, done, options)
        finally:
            remove_slots(Path(options.out_dir) / ".locks", run_id)

        outputs = [done[t.key] for t in tasks]
        _announce(run_warnings(outputs))
        result = _assemble(outputs, protocol, method, dataset, scheme, options, device, run_id,
                           tasks, code)
        result.update({"resumed_folds": resumed} if resumed else {})
        result["numeric_mode"] = numeric
        result["method"].update({"auxiliary": auxiliary} if auxiliary else {})
        result["method"].update({"weight_files": weights} if weights else {})
        path = inside(Path(options.out_dir), Path(f"{run_id}.json"))
        write_result(path, result)
        shutil.rmtree(partial_dir, ignore_errors=True)
        return path


def inside(folder: Path, relative: Path) -> Path:
    """``folder / relative``, refused unless it stays inside ``folder``."""
    path = folder / relative
    if not path.resolve().is_relative_to(folder.resolve()):
        raise MerBenchError(f"{relative} would be written outside --out {folder}; refused")
    return path


def run_identity(method: Method, protocol: Protocol, dataset: Dataset, scheme, options: RunOptions,
                 adapter: dict | None, auxiliary: dict | None, weights: dict) -> dict:
    """Everything that decides a run's predictions; its hash names the run (``run_id``),
    so runs that differ in any of it never share a result file or resumed folds: the
    method, config and preset, protocol, dataset and its fingerprint, scheme, seeds,
    threads, precision, corruption, an adapter file's content, the macro source of a
    method that reads one (name and fingerprint), and weight files' content."""
    return {
        "method": method.name, "config": method.config.to_dict(), "preset": options.preset,
        "protocol": protocol.identity(), "dataset": dataset.name,
        "fingerprint": dataset.fingerprint, "scheme": scheme.name, "seeds": list(options.seeds),
        "threads": options.threads, **({"amp": True} if options.amp else {}),
        **({"numeric_mode": "portable"} if options.portable else {}),
        **({"corruption": options.corruption.to_json()} if options.corruption else {}),
        **({"adapter_sha256": adapter["sha256"]} if adapter else {}),
        **({"auxiliary": auxiliary} if auxiliary else {}),
        **({"weight_files": weights} if weights else {}),
    }


WEIGHT_FIELDS = ("pretrained", "checkpoint")
"""Config fields that name a weights file: its sha256 joins the run identity."""


def weight_files(method: Method) -> dict[str, dict]:
    """{field: {"path", "sha256"}} for the config's weight-file fields that are set: a
    run's identity and result name the file's content, not only its path."""
    out = {}
    for name in WEIGHT_FIELDS:
        value = getattr(method.config, name, None)
        if value:
            path = Path(value)
            if not path.is_file():
                raise MerBenchError(f"-S {name}={value}: no such file")
            out[name] = {"path": str(path), "sha256": file_sha256(path)}
    return out


def method_device(method: Method, options: RunOptions) -> str:
    """The device ``method`` runs on (``resolve_device``). A method that does not use
    torch runs on the CPU: ``--amp`` is refused for it and a GPU named by ``--device`` is
    noted as unused."""
    device = resolve_device(options.device, method.uses_torch, local=on_this_machine(options))
    if not method.uses_torch:
        if options.amp:
            raise MerBenchError(f"--amp: {method.name} does not use torch; bf16 autocast has "
                                f"nothing to act on")
        if options.device not in ("auto", "cpu"):
            warnings.warn(f"{method.name} does not use torch: it runs on the CPU, not on "
                          f"{options.device!r}", stacklevel=2)
    return device


def on_this_machine(options: RunOptions) -> bool:
    """Whether the run's folds execute on this machine (local processes or a local Dask
    cluster), not on the workers of a ``--scheduler`` cluster: only then are the GPU and
    its free memory this process sees the ones the folds will use."""
    return not options.scheduler


def numeric_mode(method: Method, options: RunOptions, device: str) -> dict:
    """The result's ``numeric_mode``: with ``portable``, the pinned level, the switches
    this process started with and what each library was verified to run
    (``portable.verify``; refused on a GPU or when a library runs above the level);
    else the host's own kernels, which another CPU may not reproduce bit for bit."""
    if not options.portable:
        mode = {"portable": False, "kernels": "the host's own (chosen per CPU by each library)"}
        return {**mode, "cuda": cuda_determinism()} if device.startswith("cuda") else mode
    if device != "cpu":
        raise MerBenchError(f"--portable pins CPU kernels; {device} chooses its own per GPU "
                            f"model (run with --device cpu)")
    start = portable.initial_environment()
    return {"portable": True, "level": portable.LEVEL, "verified": portable.verify(method.uses_torch),
            "switches": {k: start[k] for k in sorted(start) if k in portable.FIXED_PINS
                         or k in ("NPY_DISABLE_CPU_FEATURES", "OPENCV_CPU_DISABLE")}}


CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG``: cuBLAS's fixed-workspace mode, in which its reductions
are run-to-run deterministic (read when a process makes its first cuBLAS handle)."""


def cuda_determinism() -> dict:
    """Pin what can be pinned on CUDA before the first cuBLAS call (workers inherit it)
    and say what cannot: the result's ``numeric_mode.cuda``."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    return {"cudnn": "deterministic kernels, no autotuning (seed_everything)",
            "cublas": f"CUBLAS_WORKSPACE_CONFIG={os.environ['CUBLAS_WORKSPACE_CONFIG']}",
            "not pinned": "atomic-add kernels (index_add, scatter, some convolution "
                          "backward passes) sum in arrival order; kernels differ per GPU "
                          "model and CUDA/cuDNN version: re-runs elsewhere are statistical"}


def worker_devices(method: Method, options: RunOptions, device: str) -> tuple[str, ...]:
    """The devices the run's workers use, in slot order: ``options.devices`` (each
    resolved; ``--jobs`` workers per device), or ``device`` alone."""
    if not options.devices:
        return (device,)
    if not method.uses_torch:
        raise MerBenchError(f"--devices: {method.name} does not use torch; it runs on the CPU "
                            f"(use --jobs for parallel folds)")
    if options.backend != "loky":
        raise MerBenchError(f"--devices is for local workers (--backend loky); on a "
                            f"{options.backend} cluster give each GPU worker its own "
                            f"CUDA_VISIBLE_DEVICES (Dask: and --resources GPU=1; README)")
    return tuple(resolve_device(d, True) for d in options.devices)


def corrupted_features(features: tuple[np.ndarray, ...], cache: FeatureCache, dataset: Dataset,
                       samples: pd.DataFrame, method: Method, options: RunOptions
                       ) -> tuple[tuple[np.ndarray, ...], np.ndarray | None]:
    """The features test sets are built from: ``features`` as they are, or, on the
    robustness track, with the chosen clips' rows recomputed from corrupted frames; and
    which rows of ``samples`` are corrupted (bool (n,), None off the track)."""
    if options.corruption is None:
        return features, None
    from mer_bench.features.corruptions import CorruptedDataset  # only on the robustness track
    chosen = options.corruption.chosen(samples["sample_id"])
    corrupted = CorruptedDataset(dataset, options.corruption)
    out = []
    for spec, clean in zip(method.input_specs, features):
        mixed = clean.copy()
        mixed[chosen] = cache.materialize(corrupted, samples[chosen], spec, n_jobs=options.jobs,
                                          progress=options.progress)
        out.append(mixed)
    return tuple(out), chosen


def gpu_preset_on_cpu(method: Method, options: RunOptions, device: str, n_tasks: int,
                      first_task: str) -> RunEstimate | None:
    """For a preset sized for a GPU on a CPU: say so now, and return the estimate the
    first task's training stages report to after their first steps (else None)."""
    if device != "cpu" or options.preset not in method.Config.GPU_PRESETS:
        return None
    tqdm.write(f"mer-bench: note: preset '{options.preset}' of {method.name} is sized for a GPU and "
               f"this run is on the CPU ({n_tasks} fits); an estimate follows after the first "
               f"training steps. `--preset fast` is sized for a 2-core CPU.", file=sys.stderr)
    return RunEstimate(method.name, options.preset, n_tasks, options.jobs, first_task=first_task)


def adapter_source(method: str) -> dict | None:
    """{path, sha256} when ``method`` is a ``.py`` adapter file, else None."""
    if not method.endswith(".py"):
        return None
    path = Path(method).resolve()
    return {"path": str(path), "sha256": file_sha256(path)}


def _make_tasks(protocol: Protocol, samples: pd.DataFrame, seeds: tuple[int, ...]) -> list[Task]:
    tasks: list[Task] = []
    for seed in seeds:
        by_group: dict[str, Task] = {}
        for fold in protocol.folds(samples, seed):
            task = by_group.setdefault(fold.train_group,
                                       Task(seed, fold.train_group, [], timed=not by_group))
            task.folds.append(fold)
        tasks.extend(by_group.values())
    return tasks


def _execute(worker: "TaskWorker", todo: list[Task], partial_dir: Path, run_hash: str,
             done: dict, options: RunOptions) -> None:
    if not todo:
        return
    partial_dir.mkdir(parents=True, exist_ok=True)
    bar = progress_bar(len(todo), f"{worker.method} folds", "fold", options.progress)
    try:
        gpu = worker.device.startswith("cuda")
        with backend_session(options.backend, options.jobs, options.scheduler, gpu,
                             initializer=exit_with_parent) as fan_out:
            for task, record in fan_out(worker, todo):
                record |= {"run_hash": run_hash, "key": task.key}
                write_json(partial_dir / f"{task.key}.json", record, indent=None)
                done[task.key] = record
                bar.update()
    except KeyboardInterrupt:
        raise RunInterrupted(f"interrupted; {len(done)} finished folds are kept in {partial_dir}; "
                             f"the same command with --resume continues the run") from None
    except MerBenchError:
        raise
    except OSError as err:  # disk full, a folder removed: resuming helps once it is fixed
        raise MerBenchError(f"a fold failed on a file ({err.filename or ''}: "
                            f"{err.strerror or err}); {len(done)} finished folds are kept in "
                            f"{partial_dir}; fix that, then the same command with --resume "
                            f"continues the run") from None
    except (ValueError, TypeError, KeyError) as err:
        raise MerBenchError(f"a fold failed with {type(err).__name__}: {err} — a configuration "
                            f"or data error that --resume would repeat; {len(done)} finished "
                            f"folds are kept in {partial_dir}") from err
    except Exception as err:  # the adapter's own failure, one line (the chain kept for callers)
        raise MerBenchError(f"method {worker.method!r} failed in a fold ({type(err).__name__}: "
                            f"{_first_line(err)}); {len(done)} finished folds are kept in "
                            f"{partial_dir}; rerun with --resume") from err
    finally:
        bar.close()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else ""


@dataclass(eq=False)
class TaskWorker:
    """Fits a fresh method for one task and predicts its folds (runs in a worker).
    Hashed by identity (``eq=False``): it holds arrays, and a cluster ships it as one
    object."""

    method: str
    adapter_file: str | None
    preset: str
    overrides: dict
    samples: pd.DataFrame
    features: tuple[np.ndarray, ...]
    test_features: tuple[np.ndarray, ...]
    corrupted: np.ndarray | None
    classes: tuple[str, ...]
    device: str
    auxiliary: AuxiliaryLoader
    features_loader: FeatureLoader
    artifact_dir: Path
    jobs: int
    threads: int
    amp: bool = False
    progress: bool = False
    estimate: RunEstimate | None = None
    devices: tuple[str, ...] = ()
    """Devices by worker slot (``mer_bench.devices``); a worker process runs on
    ``devices[slot % len(devices)]``. Empty: on ``device``."""
    slot_dir: Path | None = None
    run_id: str = ""
    task: str = "emotion"
    """The scheme's task: ``emotion`` labels are class indices, ``au`` labels bit masks."""

    def __call__(self, task: Task) -> tuple[Task, dict]:
        with adapter_call(self.method, f"task {task.key}"):
            return self._run_task(task)

    def _run_task(self, task: Task) -> tuple[Task, dict]:
        if self.jobs > 1:
            exit_with_parent()
            if len(self.devices) > 1:
                slot = claim_slot(self.slot_dir, self.run_id, self.jobs)
                self.device = self.devices[slot % len(self.devices)]
        if self.device.startswith("cuda"):  # a cluster's worker did not inherit the pin
            cuda_determinism()
        position = self.positions
        if self.adapter_file:  # a submitted .py adapter: register it in this process too
            load_adapter_file(self.adapter_file)
        method = build_method(self.method, self.preset, **self.overrides)
        pin_threads(self.threads, method.uses_torch)
        precision, dtype = inference_precision(self.device, self.amp)
        train_ids = task.folds[0].train_ids
        ctx = RunContext(self.device, task.seed, self.preset, self.auxiliary, self.artifact_dir,
                         self.features_loader, frozenset(train_ids))
        try:
            train = self._set([position[s] for s in train_ids])
            reset_peak_memory(self.device)
            start = time.perf_counter()
            estimate = self.estimate if self.estimate and task.key == self.estimate.first_task else None
            with warnings.catch_warnings(record=True) as caught, \
                    watching(self.progress and self.jobs == 1, estimate):
                warnings.simplefilter("always")
                method.fit(train, ctx)
            sync(self.device)
            fit_seconds = time.perf_counter() - start
            diagnostics = {**method.diagnostics(),
                           "fitted model": {**self._training_fit(method, train_ids, precision),
                                            **self._majority_rates(train_ids)}}
            records, episodes, speed = [], [], {}
            for k, fold in enumerate(task.folds):
                index = [position[s] for s in fold.test_ids]
                rng = np.random.default_rng(stable_seed("seal", task.seed, fold.name))
                test, order = SampleSet.sealed(self.columns, index, self.test_features,
                                               self.classes, rng, self.task)
                support = (None if fold.support_ids is None else
                           self._set([position[s] for s in fold.support_ids]))
                if support is not None:
                    episodes.append({"seed": task.seed, "episode": fold.episode,
                                     "support": list(fold.support_ids),
                                     "support_labels": support.labels.tolist()})
                with precision:
                    prediction = method.predict(test, support)
                if k == 0 and task.timed:
                    speed = self._speed(method, test, support)
                _check_prediction(method, prediction, len(test), len(self.classes), support,
                                  self.task)
                prediction = Prediction(unshuffle(prediction.labels, order),
                                        unshuffle(prediction.scores, order))
                records += _prediction_records(fold, task.seed, self.truth, index, prediction,
                                               self.corrupted)
        finally:
            ctx.close()
        timing = {
            "fit_seconds": fit_seconds, **speed, "n_train": len(train), "params": method.parameter_count(),
            "model_bytes": method.model_bytes(), "peak_memory_bytes": peak_memory(self.device),
            "device": self.device, "device_name": device_name(self.device),
            "threads": self.threads, "dtype": dtype,
        }
        return task, {"seed": task.seed, "group": task.group, "predictions": records,
                      "episodes": episodes, "timing": timing, "diagnostics": diagnostics,
                      **_fit_warnings([w.message for w in caught])}

    def _speed(self, method: Method, test: SampleSet, support: SampleSet | None) -> dict:
        """The throughput ladder and FLOPs per clip of the fitted ``method``
        (``mer_bench.timing``), measured on a test fold's clips."""
        ladder, note = predict_ladder(method, test, support, self.device)
        flops, how = count_flops(method, test, support)
        return {"throughput": ladder, "throughput_note": note, "flops_per_sample": flops,
                "flops_note": how}

    def _training_fit(self, method: Method, train_ids: tuple[str, ...], precision) -> dict:
        """Accuracy and UAR of the fitted method on its own training clips, asked as a
        sealed test set (no labels shown) under the run's inference ``precision``: a
        method that cannot fit its training data is visible in every result.
        AU task: the mean F1 over AUs on the training clips (``train_au_f1``)."""
        index = [self.positions[s] for s in train_ids]
        train, order = SampleSet.sealed(self.columns, index, self.features, self.classes,
                                        np.random.default_rng(0), self.task)
        with precision:
            prediction = method.predict(train)
        _check_prediction(method, prediction, len(train), len(self.classes), task=self.task)
        truth = np.asarray(self.truth["label"])[index]
        guess = unshuffle(prediction.labels, order)
        if self.task == "au":
            return {"train_au_f1": au_macro_f1(truth, guess, len(self.classes))}
        head = headline_from_confusion(confusion(truth, guess, len(self.classes)))
        return {"train_accuracy": float(head["accuracy"]), "train_uar": float(head["uar"])}

    def _majority_rates(self, train_ids: tuple[str, ...]) -> dict:
        """What always answering the most frequent training class scores on the training
        clips: its accuracy (``majority_rate``, that class's share) and its UAR
        (``chance_uar``, 1 / the number of classes present) (``report.learning``). AU
        task: the mean F1 over AUs of answering every AU present (``constant_au_f1``)."""
        labels = np.asarray(self.truth["label"])[[self.positions[s] for s in train_ids]]
        if self.task == "au":
            everything = np.full(len(labels), 2 ** len(self.classes) - 1)
            return {"constant_au_f1": au_macro_f1(labels, everything, len(self.classes))}
        counts = np.bincount(labels)
        return {"majority_rate": float(counts.max() / len(labels)),
                "chance_uar": float(1 / np.count_nonzero(counts))}

    @cached_property
    def positions(self) -> dict[str, int]:
        """Row of ``samples`` by sample id (built once per process)."""
        return {sid: i for i, sid in enumerate(self.samples["sample_id"])}

    @cached_property
    def truth(self) -> dict[str, list]:
        """The columns a prediction record copies, as lists in ``samples`` order."""
        return {c: self.samples[c].tolist() for c in ("sample_id", "dataset", "subject", "label")}

    @cached_property
    def columns(self) -> SampleColumns:
        """``samples`` as column arrays, what every set of this task is gathered from."""
        return SampleColumns(self.samples)

    def _set(self, index: list[int]) -> SampleSet:
        """A labelled set (training or support) of the sample table's rows ``index``."""
        return SampleSet.gather(self.columns, index, self.features, self.classes, False,
                                self.task)


def _fit_warnings(messages: list[Warning]) -> dict:
    """A task's warnings from ``fit``: the other messages, deduplicated, and the smallest
    episode configuration an ``EpisodeShrinkWarning`` reported (None when none)."""
    shrinks = [m for m in messages if isinstance(m, EpisodeShrinkWarning)]
    others = sorted({str(m) for m in messages if not isinstance(m, EpisodeShrinkWarning)})
    smallest = min(shrinks, key=lambda m: tuple(m.effective.values()), default=None)
    shrink = None if smallest is None else {"requested": smallest.requested,
                                            "effective": smallest.effective}
    return {"fit_warnings": others, "episode_shrink": shrink}


def label_codes(scheme) -> int:
    """How many label values a scheme's records may hold: its classes, or for the AU task
    every bit mask over its AUs (2^A)."""
    return 2 ** len(scheme.classes) if scheme.task == "au" else len(scheme.classes)


def run_warnings(outputs: list[dict]) -> dict:
    """What the tasks' ``fit`` warned about, once per run: each distinct message with the
    number of tasks that raised it, and, when meta-training episodes shrank, the
    smallest effective N-way K-shot Q-query and in how many tasks."""
    counts: dict[str, int] = {}
    for o in outputs:
        for message in o.get("fit_warnings", []):
            counts[message] = counts.get(message, 0) + 1
    shrinks = [o["episode_shrink"] for o in outputs if o.get("episode_shrink")]
    out = {"fit_warnings": [{"message": m, "tasks": n} for m, n in sorted(counts.items())]}
    if shrinks:
        smallest = min(shrinks, key=lambda s: tuple(s["effective"].values()))
        out["episode_shrink"] = {**smallest, "tasks": len(shrinks), "of_tasks": len(outputs)}
    return out


def _announce(notes: dict) -> None:
    """Print a run's fit warnings once each (the result file keeps them)."""
    for item in notes["fit_warnings"]:
        warnings.warn(f"{item['message']} ({item['tasks']} tasks)", stacklevel=2)
    shrink = notes.get("episode_shrink")
    if shrink:
        r, e = shrink["requested"], shrink["effective"]
        warnings.warn(f"meta-training episodes shrank in {shrink['tasks']} of {shrink['of_tasks']} "
                      f"tasks: asked {r['n_way']}-way {r['k_shot']}-shot {r['q_query']}-query, "
                      f"down to {e['n_way']}-way {e['k_shot']}-shot {e['q_query']}-query (too few "
                      f"training clips of some classes)", stacklevel=2)


def _check_prediction(method: Method, prediction: Prediction, n: int, n_classes: int,
                      support: SampleSet | None = None, task: str = "emotion") -> None:
    if not isinstance(prediction, Prediction):
        raise MerBenchError(f"method {method.name!r}: predict returned "
                            f"{type(prediction).__name__}, not a mer_bench.method.Prediction")
    allowed = None if support is None else np.unique(support.labels)
    problem = prediction.problem(n, n_classes, allowed, task)
    if problem is None and method.emits_scores and prediction.scores is None:
        problem = "no scores, though it declares emits_scores = True"
    if problem:
        raise MerBenchError(f"method {method.name!r} returned {problem}")


def _prediction_records(fold: Fold, seed: int, truth: dict[str, list], index: list[int],
                        prediction: Prediction, corrupted: np.ndarray | None) -> list[dict]:
    """One record per test clip (rows ``index`` of ``truth``, ``TaskWorker.truth``);
    ``corrupted`` (robustness track) flags the clips whose frames were corrupted."""
    ids, datasets, subjects, labels = (truth[c] for c in ("sample_id", "dataset", "subject", "label"))
    records = [{"sample_id": ids[k], "dataset": datasets[k], "subject": subjects[k],
                "fold": fold.name, "seed": seed, "y_true": int(labels[k]), "y_pred": int(guess)}
               for k, guess in zip(index, prediction.labels.tolist())]
    if prediction.scores is not None:
        finite = np.isfinite(prediction.scores).tolist()
        for record, values, ok in zip(records, prediction.scores.tolist(), finite):
            record["scores"] = [float(v) if keep else None for v, keep in zip(values, ok)]
    if fold.episode is not None:
        for record in records:
            record["episode"] = fold.episode
    if corrupted is not None:
        for record, k in zip(records, index):
            record["corrupted"] = bool(corrupted[k])
    return records


def _assemble(outputs: list[dict], protocol: Protocol, method: Method, dataset: Dataset,
              scheme, options: RunOptions, device: str, run_id: str, tasks: list[Task],
              code: dict) -> dict:
    predictions = [p for o in outputs for p in o["predictions"]]
    episodes = [e for o in outputs for e in o.get("episodes", [])]
    frame = pd.DataFrame(predictions)
    if "episode" not in frame:
        frame["episode"] = None
    metrics = protocol.summarize(frame, scheme.classes)
    timings = [o["timing"] for o in outputs]
    timed = [t for t in timings if t.get("throughput")]
    return {
        "schema": RESULT_SCHEMA,
        "run_id": run_id,
        "method": {"name": method.name, "preset": options.preset, "config": method.config.to_dict(),
                   "config_hash": method.config.hash,
                   "recipe_departures": method.config.departures(),
                   "not_specified": method.config.not_specified(),
                   "inputs": [s.to_json() for s in method.input_specs],
                   **({"file": adapter_source(options.method)}
                      if options.method.endswith(".py") else {})},
        "protocol": {"name": protocol.name, "version": protocol.version, "params": protocol.params()},
        "code": code,
        "run_options": {"threads": options.threads, "amp": options.amp,
                        **({"portable": True} if options.portable else {}),
                        "overrides": options.method_overrides, "face_crop": options.face_crop},
        "datasets": sorted(frame["dataset"].unique().tolist()),
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint,
        "synthetic": dataset.synthetic,
        "label_scheme": {"name": scheme.name, "classes": list(scheme.classes),
                         **({"task": "au"} if scheme.task == "au" else {})},
        "seeds": list(options.seeds),
        **({"corruption": {**options.corruption.to_json(), "n_corrupted": int(
            frame.loc[frame["corrupted"], "sample_id"].nunique())}} if options.corruption else {}),
        "folds": _fold_table(tasks),
        "data_problems": [asdict(p) for p in dataset.problems],
        **run_warnings(outputs),
        "predictions": predictions,
        **({"episodes": episodes} if episodes else {}),
        "metrics": metrics,
        **learning_diagnostics(outputs),
        "timing": {
            "fit_seconds": float(np.mean([t["fit_seconds"] for t in timings])),
            "fit_seconds_total": float(np.sum([t["fit_seconds"] for t in timings])),
            **_speed_summary(timed),
            "dtype": timings[0]["dtype"], "threads": timings[0]["threads"],
            "device_class": device_class(device, timings[0]["threads"],
                                         timings[0].get("device_name")),
            "params": int(np.median([t["params"] for t in timings])),
            "model_bytes": int(np.median([t["model_bytes"] for t in timings])),
            "peak_memory_bytes": int(max(t["peak_memory_bytes"] for t in timings)),
            "device": ", ".join(sorted({t.get("device_name") or device_name(t["device"])
                                        for t in timings})),
            "per_task": [{"seed": o["seed"], "group": o["group"], **o["timing"]} for o in outputs],
        },
        "environment": environment(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def learning_diagnostics(outputs: list[dict]) -> dict:
    """``{"diagnostics": {"per_task": [...], "summary": {stage: {figure: median over
    tasks}}}}`` from the tasks' ``Method.diagnostics``; {} when no task reported any."""
    per_task = [{"seed": o["seed"], "group": o["group"], "stages": o.get("diagnostics") or {}}
                for o in outputs]
    if not any(t["stages"] for t in per_task):
        return {}
    summary: dict[str, dict] = {}
    for task in per_task:
        for stage_name, figures in task["stages"].items():
            for key, value in figures.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    summary.setdefault(stage_name, {}).setdefault(key, []).append(value)
    return {"diagnostics": {"per_task": per_task, "summary": {
        name: {k: float(np.median(v)) for k, v in figures.items()}
        for name, figures in summary.items()}}}


def _speed_summary(timed: list[dict]) -> dict:
    """The result's throughput ladder (median over the timed tasks), its cap, notes, and
    FLOPs per clip (the same for every task: one architecture)."""
    ladder = ladder_summary([t["throughput"] for t in timed])
    notes = sorted({t["throughput_note"] for t in timed if t.get("throughput_note")})
    first = timed[0] if timed else {}
    return {"throughput": ladder, "throughput_cap": ladder_cap(ladder),
            "throughput_note": "; ".join(notes) or None,
            "flops_per_sample": first.get("flops_per_sample"), "flops_note": first.get("flops_note")}


def _fold_table(tasks: list[Task]) -> list[dict]:
    """The result's ``folds`` block (``protocols.base.fold_table``) of the run's tasks."""
    return fold_table([(task.seed, task.group, task.folds) for task in tasks])

