"""How the runner places and measures a method: the device, the compute threads, peak
memory, and inference throughput.

Throughput (``measure_throughput``): for each batch size — 1 (one test clip) and the
whole fold — one untimed warm-up call, then ``repeats`` timed ``predict`` calls,
each closed by a CUDA synchronize; the figure is the batch size over the median call
time, in samples/s. With ``amp`` every ``predict`` runs under bf16 autocast on the run's
device (``dtype`` ``bfloat16-autocast``), the scored ones too, so the metrics and the
speed describe the same computation.

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
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from mer_bench.errors import MerBenchError

TIMING_REPEATS = 10
"""Timed calls per batch size (after one warm-up call)."""
_PINNED: dict[str, int] = {}


def resolve_device(device: str, uses_torch: bool = True) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; a method that does not
    use torch always runs on ``cpu``. Raises ``MerBenchError`` for an unknown device or
    CUDA asked for on a machine without it."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise MerBenchError(f"unknown device {device!r}; choose from auto, cpu, cuda")
    if not uses_torch or device == "cpu":
        return "cpu"
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
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
    if device.startswith("cuda"):
        import torch
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> int:
    """Bytes: CUDA peak allocated since the last reset, or this process's peak resident
    set size on the CPU."""
    if device.startswith("cuda"):
        import torch
        return int(torch.cuda.max_memory_allocated())
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


def inference_precision(device: str, amp: bool):
    """The context ``predict`` runs in: bf16 autocast on ``device`` with ``amp``, else
    nothing; and the dtype recorded for it."""
    if not amp:
        return nullcontext(), "float32"
    import torch
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu",
                          dtype=torch.bfloat16), "bfloat16-autocast"


def median_seconds(call: Callable[[], object], device: str, repeats: int = TIMING_REPEATS
                   ) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``call`` after one warm-up call,
    each closed by a device synchronize."""
    call()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync(device)
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))


def measure_throughput(calls: dict[int, Callable[[], object]], device: str,
                       repeats: int = TIMING_REPEATS) -> list[dict]:
    """``calls``: batch size -> a call that predicts a batch of that many clips. Returns,
    per batch size (ascending): {batch_size, samples_per_s, median_ms}."""
    out = []
    for batch, call in sorted(calls.items()):
        seconds = median_seconds(call, device, repeats)
        out.append({"batch_size": batch, "samples_per_s": batch / max(seconds, 1e-9),
                    "median_ms": 1000 * seconds})
    return out


def predict_throughput(method, test, support, device: str) -> list[dict]:
    """Inference throughput of a fitted ``method`` (a ``Method``) on the ``SampleSet``
    ``test`` (with few-shot ``support`` or None): at batch size 1 (its first clip) and at
    its size (``measure_throughput``)."""
    one = test.subset([0])
    return measure_throughput({1: lambda: method.predict(one, support),
                               len(test): lambda: method.predict(test, support)}, device)
