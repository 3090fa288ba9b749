"""Portable numeric mode (``--portable``): the same bits on any x86-64 CPU with AVX2.

Linear algebra, convolutions and vectorized loops pick their kernels by the CPU's
instruction set when a library loads: OpenBLAS (numpy's, SciPy's and OpenCV's copies),
numpy's own SIMD loops, OpenCV's dispatched code, and torch's ATen kernels, oneDNN
convolutions and MKL. The same run then gives other float bits on an AVX-512 machine
than on an AVX2 one (committed rows re-run on an Intel Xeon: flow-svm scores up to
4.8e-4 apart, a few-shot row 541 of 3,000 classes). Portable mode pins every one of
them, each through its own switch, to one level every current x86-64 CPU has: AVX2 with
FMA (x86-64-v3: Intel Haswell, 2013, and AMD Zen onwards).

- ``FIXED_PINS``: OpenBLAS's Haswell kernels (``OPENBLAS_CORETYPE``; what OpenBLAS runs
  on AMD Zen anyway), torch's ATen kernels at AVX2 (``ATEN_CPU_CAPABILITY``), oneDNN's
  and MKL's AVX2 code paths (``ONEDNN_MAX_CPU_ISA``, ``MKL_CBWR``, strict).
- ``host_pins``: the dispatch targets above AVX2 that this host's numpy
  (``NPY_DISABLE_CPU_FEATURES``) and OpenCV (``OPENCV_CPU_DISABLE``) would use, switched
  off (naming only what the host has: no warnings on an AVX2 machine).

The switches act only when a library loads, so they must be in the environment the
process *started* with: ``mer-bench ... --portable`` runs itself again in a child
process that has them (``restart_portable``); its worker processes inherit them.
Whether a process is portable is read from its initial environment
(``/proc/self/environ``), so an ``os.environ`` edit after numpy loaded cannot pass for
it; and once the libraries are loaded ``verify`` checks what each one actually runs
(OpenBLAS's core type, numpy's and OpenCV's enabled targets, torch's capability),
refusing the run when any is above AVX2. Features and cached artefacts of portable runs
live in their own cache folder (``cache_root``). Threads stay pinned at ``--threads``
(float reductions depend on the count), part of the run identity as always.

Not pinned: CPUs without AVX2/FMA cannot run portable mode (OpenBLAS has no Haswell
kernels there); GPUs (``--portable`` is refused with a CUDA device); and glibc's libm
picks its FMA variants on every AVX2+FMA CPU alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mer_bench.errors import MerBenchError

MARK = "MER_BENCH_PORTABLE"
FIXED_PINS = {"OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2",
              "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT",
              "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
"""Switches with one value everywhere (beside ``host_pins``)."""
LEVEL = "AVX2 + FMA (x86-64-v3)"


def above_avx2(name: str) -> bool:
    """A numpy or OpenCV dispatch target beyond AVX2 (AVX-512 families, x86-64-v4)."""
    return "512" in name or name in ("X86_V4", "AVX512_SPR")


def _numpy_targets() -> tuple[list[str], dict[str, bool]]:
    """(numpy's dispatch targets, its feature table: what the host supports and which
    targets are enabled)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath
    return list(umath.__cpu_dispatch__), dict(umath.__cpu_features__)


def _opencv_targets() -> list[tuple[str, bool]]:
    """OpenCV's dispatched targets and whether each is enabled (its CPU features line:
    ``*NAME`` dispatched, a trailing ``?`` disabled)."""
    import cv2
    return [(token.strip("*?"), not token.endswith("?"))
            for token in cv2.getCPUFeaturesLine().split() if token.startswith("*")]


def host_pins() -> dict[str, str]:
    """The switches that turn off this host's numpy and OpenCV targets above AVX2 (read
    by importing both: call it only in a process that is about to start another)."""
    dispatch, features = _numpy_targets()
    numpy_off = [n for n in dispatch if above_avx2(n) and features.get(n)]
    opencv_off = [n for n, _ in _opencv_targets() if above_avx2(n)]
    return {**({"NPY_DISABLE_CPU_FEATURES": ",".join(numpy_off)} if numpy_off else {}),
            **({"OPENCV_CPU_DISABLE": ",".join(opencv_off)} if opencv_off else {})}


def portable_env() -> dict[str, str]:
    """Every switch portable mode sets, with ``MARK``."""
    return {**FIXED_PINS, **host_pins(), MARK: "1"}


def initial_environment() -> dict[str, str]:
    """The environment this process started with (Linux ``/proc/self/environ``; the
    current one elsewhere)."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return dict(os.environ)
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def portable_process() -> bool:
    """Whether this process started with portable mode's switches."""
    start = initial_environment()
    return start.get(MARK) == "1" and all(start.get(k) == v for k, v in FIXED_PINS.items())


def restart_portable(argv: list[str]) -> int:
    """Run ``mer-bench argv`` in a child process that starts with the switches; its exit
    status. Ctrl-C reaches the child too (same process group), which keeps its finished
    folds and says so; this process waits for it."""
    env = {**os.environ, **portable_env()}
    child = subprocess.Popen([sys.executable, "-m", "mer_bench.cli", *argv], env=env)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def verify(uses_torch: bool) -> dict[str, str]:
    """What each loaded library runs, checked against the pins: {library: level}.
    Raises ``MerBenchError`` when this process did not start portable or a library runs
    above AVX2 (a switch it ignored: the run would not be portable)."""
    if not portable_process():
        raise MerBenchError("portable mode needs its switches in the environment the process "
                            "started with: run `mer-bench run --portable` (it restarts itself "
                            "with them) instead of setting it on an already running Python")
    from threadpoolctl import threadpool_info
    problems, levels = [], {}
    cores = {str(p.get("architecture")) for p in threadpool_info() if p["internal_api"] == "openblas"}
    levels["openblas"] = ", ".join(sorted(cores)) or "not loaded"
    problems += [f"OpenBLAS runs {c} kernels" for c in cores if c.lower() != "haswell"]
    dispatch, features = _numpy_targets()
    on = [n for n in dispatch if above_avx2(n) and features.get(n)]
    levels["numpy"] = "dispatch up to AVX2" if not on else f"dispatches {', '.join(on)}"
    problems += [f"numpy dispatches {n}" for n in on]
    active = [n for n, enabled in _opencv_targets() if above_avx2(n) and enabled]
    levels["opencv"] = "dispatch up to AVX2" if not active else f"dispatches {', '.join(active)}"
    problems += [f"OpenCV dispatches {n}" for n in active]
    if uses_torch:
        import torch
        capability = torch.backends.cpu.get_cpu_capability()
        levels["torch"] = f"ATen {capability}, oneDNN and MKL pinned to AVX2"
        if capability != "AVX2":
            problems.append(f"torch's ATen runs {capability} kernels")
    if problems:
        raise MerBenchError(f"--portable: {'; '.join(problems)} — this CPU or library build "
                            f"cannot be pinned to {LEVEL}")
    return levels


def cache_root(root: Path, portable: bool) -> Path:
    """Where a run keeps its features and artefacts: portable runs in ``root/portable``
    (their floats differ in the last bits from the host's own kernels')."""
    return Path(root) / "portable" if portable else Path(root)
