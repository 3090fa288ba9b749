"""How the runner places and measures a method: the device, the compute threads, peak
memory, inference throughput and FLOPs.

Throughput (``predict_ladder``): inference speed on a fixed ladder of batch sizes,
``LADDER`` = 1, 32 and 256 clips, the same for every method, protocol and dataset (a
batch is the fold's test clips repeated to that size: the method's real input shape),
in fp32 and, for torch methods, under bf16 autocast. Per batch size and precision: one
untimed warm-up call, then timed ``predict`` calls (each closed by a CUDA synchronize on
a GPU; on the CPU the compute threads are pinned at ``--threads``) until ``MAX_REPEATS``
calls or ``TIME_BUDGET_S`` seconds of timed calls; the figure is the
batch size over the median call, in clips/s. A batch that runs out of memory ends that
precision's ladder: the largest batch that ran is the recorded cap. The leaderboard's
speed column reads ``SPEED_BATCH`` (32) in every table. With ``amp`` the scored
``predict`` calls run under bf16 autocast (``dtype`` ``bfloat16-autocast``).

FLOPs per clip (``count_flops``): ``torch.utils.flop_counter.FlopCounterMode`` around one
``predict`` of ``SPEED_BATCH`` clips, divided by the batch (torch's convention: a
multiply-add is 2 FLOPs; convolutions, matrix products and attention are counted,
element-wise work is not; few-shot methods' support embedding is shared by the batch).
Methods outside torch (descriptors, SVMs) get null and the reason.

torch is imported only where a method uses it (``Method.uses_torch``): a scikit-learn
method's run never pays its import.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from mer_bench.errors import MerBenchError

LADDER = (1, 32, 256)
"""Batch sizes (clips) inference throughput is measured at, for every method."""
SPEED_BATCH = 32
"""The ladder step the leaderboard's speed column reads, in every table."""
MAX_REPEATS, TIME_BUDGET_S = 10, 1.0
"""Timed calls per ladder step: up to ``MAX_REPEATS``, stopping once ``TIME_BUDGET_S``
seconds are spent (at least one call: a 256-clip CPU batch of a paper-size network takes
seconds a call, where the median of a few calls moves by a few per cent)."""
FLOAT32, BF16 = "float32", "bfloat16-autocast"
_PINNED: dict[str, int] = {}


def resolve_device(device: str, uses_torch: bool = True, local: bool = True) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; a method that does not
    use torch always runs on ``cpu``. Raises ``MerBenchError`` for an unknown device or
    CUDA asked for on a machine without it. ``local=False``: the folds run on a
    cluster's workers (``--scheduler``), so a ``cuda`` device named explicitly is theirs
    to have and is not looked for here."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise MerBenchError(f"unknown device {device!r}; choose from auto, cpu, cuda")
    if not uses_torch or device == "cpu":
        return "cpu"
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if local and not torch.cuda.is_available():
        raise MerBenchError(f"device {device!r} asked for but torch sees no CUDA GPU")
    return device


def device_name(device: str) -> str:
    """The GPU's name, or ``CPU: <model> (<n> cores)``."""
    if device.startswith("cuda"):
        import torch
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU: {line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"CPU: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "BLIS_NUM_THREADS")
"""The environment variables BLAS and OpenMP libraries size their pools from when loaded."""


def size_pools_before_load(threads: int) -> None:
    """Size the BLAS/OpenMP pools at ``threads`` through ``POOL_VARIABLES``, when numpy
    (and with it every such library) is not loaded yet: the command line does this
    before its first heavy import, so that ``pin_threads`` need not ask threadpoolctl,
    whose first call (≈ 30 ms) inspects every loaded library. Child processes (workers,
    ``git``) inherit the variables. Once numpy is loaded it does nothing."""
    if "numpy" in sys.modules:
        return
    for name in POOL_VARIABLES:
        os.environ[name] = str(threads)
    _PINNED["threads"] = threads


def pin_threads(threads: int, uses_torch: bool) -> None:
    """Fix this process's compute threads at ``threads``: the BLAS/OpenMP pools numpy and
    scikit-learn use (threadpoolctl, set once per process and value, unless
    ``size_pools_before_load`` sized them) and, for a torch method, torch's intra-op
    pool."""
    if _PINNED.get("threads") != threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
        _PINNED["threads"] = threads
    if uses_torch:
        import torch
        torch.set_num_threads(threads)


def sync(device: str) -> None:
    """Wait for the GPU's queued work (a no-op on the CPU)."""
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def reset_peak_memory(device: str) -> None:
    """Start a new peak: CUDA's peak-allocated counter, or on Linux the process's peak
    resident set size (``VmHWM``, reset by writing 5 to ``/proc/self/clear_refs``)."""
    if device.startswith("cuda"):
        import torch
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed: the peak stays the process's lifetime one
        pass


def peak_memory(device: str) -> int:
    """Bytes: CUDA peak allocated since the last reset, or on the CPU the process's peak
    resident set size since the last reset (``VmHWM`` on Linux; elsewhere the lifetime
    peak, ``ru_maxrss``)."""
    if device.startswith("cuda"):
        import torch
        return int(torch.cuda.max_memory_allocated())
    peak = _process_status("VmHWM")
    if peak is not None:
        return peak
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


def resident_bytes() -> int:
    """This process's resident set size now (Linux ``VmRSS``; 0 where unknown)."""
    return _process_status("VmRSS") or 0


def _process_status(field: str) -> int | None:
    """Bytes of a ``/proc/self/status`` memory field (kB there), None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def inference_precision(device: str, amp: bool):
    """The context ``predict`` runs in: bf16 autocast on ``device`` with ``amp``, else
    nothing; and the dtype recorded for it."""
    if not amp:
        return nullcontext(), "float32"
    import torch
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu",
                          dtype=torch.bfloat16), "bfloat16-autocast"


def median_seconds(call: Callable[[], object], device: str, repeats: int = MAX_REPEATS,
                   budget_s: float = TIME_BUDGET_S) -> float:
    """Median wall-clock seconds of timed calls of ``call`` after one warm-up call, each
    closed by a device synchronize: ``repeats`` calls, or fewer (at least one) once
    ``budget_s`` seconds of timed calls are spent."""
    call()
    sync(device)
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget_s):
        start = time.perf_counter()
        call()
        sync(device)
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))


def ladder_batch(test, size: int):
    """The ``SampleSet`` ``test``'s clips repeated (in order) to ``size`` rows."""
    import numpy as np
    return test.subset(np.resize(np.arange(len(test)), size))


def precisions(method) -> tuple[str, ...]:
    """The inference precisions a method's ladder is measured in: fp32, and bf16
    autocast for a torch method."""
    return (FLOAT32, BF16) if method.uses_torch else (FLOAT32,)


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError"


def predict_ladder(method, test, support, device: str,
                   ladder: tuple[int, ...] = LADDER) -> tuple[list[dict], str | None]:
    """Inference throughput of a fitted ``method`` (a ``Method``) on ``test`` (with
    few-shot ``support`` or None) at each ``ladder`` batch size and precision. Returns
    ([{batch_size, dtype, samples_per_s, median_ms}], a note naming where a ladder was
    capped by memory or a precision failed, or None)."""
    entries, notes = [], []
    for dtype in precisions(method):
        for size in ladder:
            batch = ladder_batch(test, size)

            def call(batch=batch, dtype=dtype):
                with inference_precision(device, dtype == BF16)[0]:
                    return method.predict(batch, support)
            try:
                seconds = median_seconds(call, device)
            except Exception as err:
                if not (_out_of_memory(err) or dtype == BF16):
                    raise
                notes.append(f"{dtype}: batch {size} " + ("ran out of memory" if _out_of_memory(err)
                             else f"failed ({type(err).__name__}: {str(err)[:120]})"))
                release_memory(device)
                break
            entries.append({"batch_size": size, "dtype": dtype,
                            "samples_per_s": size / max(seconds, 1e-9), "median_ms": 1000 * seconds})
    return entries, "; ".join(notes) or None


def release_memory(device: str) -> None:
    """Return the CUDA caching allocator's free blocks (after an out-of-memory)."""
    if device.startswith("cuda"):
        import torch
        torch.cuda.empty_cache()


def count_flops(method, test, support) -> tuple[float | None, str]:
    """(FLOPs per clip of one ``predict`` of ``SPEED_BATCH`` clips, how it was counted);
    (None, why) for a method outside torch."""
    if not method.uses_torch:
        return None, (f"not counted: {method.name} computes outside torch (descriptors, "
                      f"classical classifiers)")
    from torch.utils.flop_counter import FlopCounterMode
    batch = ladder_batch(test, SPEED_BATCH)
    counter = FlopCounterMode(display=False)
    with counter, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method.predict(batch, support)
    shared = "; the support set's embedding shared by the batch" if support is not None else ""
    how = (f"torch FlopCounterMode over one predict of {SPEED_BATCH} clips (convolutions, "
           f"matrix products, attention; element-wise work not counted){shared}")
    return counter.get_total_flops() / SPEED_BATCH, how


def ladder_summary(ladders: list[list[dict]]) -> list[dict]:
    """Per (dtype, batch_size): the median over timed tasks of their ladders' figures."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for ladder in ladders:
        for entry in ladder:
            groups.setdefault((entry["dtype"], entry["batch_size"]), []).append(entry)
    return [{"batch_size": size, "dtype": dtype,
             "samples_per_s": float(statistics.median(e["samples_per_s"] for e in group)),
             "median_ms": float(statistics.median(e["median_ms"] for e in group))}
            for (dtype, size), group in sorted(groups.items(), key=lambda g: (g[0][0] != FLOAT32,
                                                                              g[0][1]))]


def ladder_cap(entries: list[dict]) -> int | None:
    """The largest fp32 batch that ran when memory cut the ladder short, else None."""
    sizes = [e["batch_size"] for e in entries if e["dtype"] == FLOAT32]
    return max(sizes) if sizes and max(sizes) < max(LADDER) else None


def device_class(device: str, threads: int, name: str | None = None) -> str:
    """What speed figures are comparable within: ``GPU: <name>`` or ``CPU · N thread(s)``.
    ``name``: the GPU's name as the worker that ran on it recorded it (a cluster's GPU
    is not this process's); asked of torch here when None."""
    if device.startswith("cuda"):
        return f"GPU: {name or device_name(device)}"
    return f"CPU · {threads} thread" + ("s" if threads != 1 else "")


def speed_at(timing: dict, batch: int = SPEED_BATCH) -> float | None:
    """Clips/s at ``batch`` in the run's inference dtype from ``timing.throughput``
    (None when the ladder was not measured or capped below ``batch``)."""
    dtype = timing.get("dtype") or FLOAT32
    for entry in timing.get("throughput") or ():
        if isinstance(entry, dict) and entry.get("batch_size") == batch and \
                entry.get("dtype") == dtype:
            return entry.get("samples_per_s")
    return None
