"""Folds in parallel on GPUs: which device each worker uses, and whether N folds fit.

``--jobs N --device cuda`` runs N folds at once on one GPU (N worker processes sharing
it); ``--devices 0,1`` (or ``all``) spreads the workers over several, ``--jobs`` per
device (default 1). A worker process claims one *slot* for its lifetime
(``claim_slot``: an exclusive lock on ``<out>/.locks/<run-id>.slot<k>``, released by
the operating system when the process ends), and slot k runs on device ``k mod D``: so
every device holds ``--jobs`` workers, never more, whichever order tasks arrive in.

Before such a run starts, ``check_fit`` measures the peak memory of one fold — one
training step per stage of the run's method, preset and overrides
(``mer_bench.bench``), since a step's activations, not the number of steps, set the
peak — and refuses, naming the largest N that fits, when N of them plus a CUDA context
each (``CONTEXT_BYTES``) exceed the device's free memory. Predictions do not depend on
which worker or device ran a fold (a fold's numbers depend on its seed, its data and
``--threads``), so they are those of ``--jobs 1`` on a device of the same model.

On a Dask cluster (``--backend dask``), give each GPU worker one thread, its own
``CUDA_VISIBLE_DEVICES`` and ``--resources GPU=1``: GPU folds ask for that resource
(``mer_bench.scaleout``) and run on ``cuda`` there; ``--devices`` is for one machine.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mer_bench.errors import MerBenchError

CONTEXT_BYTES = 600 * 2**20
"""Memory a worker process's CUDA context and allocator take beside the fold's tensors
(about 0.5 GiB on recent GPUs and drivers; rounded up)."""
_CLAIMED: dict[str, tuple[int, int]] = {}
"""Lock folder + run id -> (slot, open lock file descriptor) of this process."""


def parse_devices(text: str, visible: int | None = None) -> tuple[str, ...]:
    """``--devices``: ``all`` (every visible GPU; ``visible`` = their count, asked of
    torch when None), or a comma-separated list of GPU indices (``0,1``) or device names
    (``cuda:1``, ``cpu``). Raises ``MerBenchError`` naming the bad entry."""
    if text.strip() == "all":
        if visible is None:
            import torch
            visible = torch.cuda.device_count()
        if not visible:
            raise MerBenchError("--devices all: torch sees no CUDA GPU")
        return tuple(f"cuda:{k}" for k in range(visible))
    out = []
    for entry in (e.strip() for e in text.split(",")):
        if entry.isdigit():
            out.append(f"cuda:{int(entry)}")
        elif entry == "cpu" or entry.startswith("cuda"):
            out.append(entry)
        else:
            raise MerBenchError(f"--devices {text!r}: {entry!r} is not a GPU index, cuda:N, "
                                f"cpu or 'all'")
    if len(set(out)) != len(out):
        raise MerBenchError(f"--devices {text!r} names a device twice; use --jobs for "
                            f"several folds per device")
    return tuple(out)


def claim_slot(lock_dir: Path, run_id: str, slots: int) -> int:
    """This process's worker slot (0 .. ``slots`` - 1) for the run, claimed once and kept
    while the process lives. Raises ``MerBenchError`` when all are held (more worker
    processes than slots: cannot happen with the runner's pool)."""
    key = f"{lock_dir}/{run_id}"
    if key in _CLAIMED:
        return _CLAIMED[key][0]
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(slots):
        fd = os.open(lock_dir / f"{run_id}.slot{slot}", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _CLAIMED[key] = (slot, fd)
        return slot
    raise MerBenchError(f"all {slots} device slots of run {run_id} are held by other "
                        f"processes")


def remove_slots(lock_dir: Path, run_id: str) -> None:
    """Delete the run's slot lock files once its workers are done (a lock held by an
    idle worker is unaffected: it lives on the open file, not the name)."""
    for path in lock_dir.glob(f"{run_id}.slot*"):
        path.unlink(missing_ok=True)


def folds_that_fit(fold_peak: int, free: int, context: int = CONTEXT_BYTES) -> int:
    """How many folds of peak ``fold_peak`` bytes fit in ``free`` bytes, each beside a
    CUDA context of ``context`` bytes."""
    return max(0, free // (fold_peak + context))


def fit_problem(jobs: int, fold_peak: int, free: int, device: str, name: str) -> str | None:
    """Why ``jobs`` folds at once cannot fit on ``device`` (None when they fit)."""
    fit = folds_that_fit(fold_peak, free)
    if jobs <= fit:
        return None
    gib = 2**30
    return (f"--jobs {jobs} on {device} ({name}): one fold peaks at {fold_peak / gib:.1f} GiB "
            f"(measured: one training step per stage), so {jobs} need "
            f"{jobs * (fold_peak + CONTEXT_BYTES) / gib:.1f} GiB with their CUDA contexts; "
            f"{free / gib:.1f} GiB are free: at most {fit} fit" + ("" if fit else
            " (not even one: use a smaller preset or -S micro_batch where the method has it)"))


def check_fit(method: str, preset: str, overrides: dict, devices: tuple[str, ...],
              jobs_per_device: int) -> None:
    """Refuse (``MerBenchError``) ``jobs_per_device`` folds at once on each of the CUDA
    ``devices`` when they cannot fit (module docstring); nothing to check on the CPU or
    for one fold per device."""
    cuda = [d for d in devices if d.startswith("cuda")]
    if jobs_per_device < 2 or not cuda:
        return
    import torch

    from mer_bench.bench import bench
    row = bench(method, preset, cuda[0], overrides=overrides, ladder=(1,))
    torch.cuda.empty_cache()
    for device in cuda:
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        problem = fit_problem(jobs_per_device, row.step_peak_bytes, free, device,
                              torch.cuda.get_device_name(torch.device(device)))
        if problem:
            raise MerBenchError(problem)
