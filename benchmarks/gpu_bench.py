"""Every adapter's cost on one device, and MCNet's LOSO wall time at --jobs 1 and N.

    python benchmarks/gpu_bench.py [--device cuda] [--jobs 4] [--folds 6] [--methods a,b]
    python benchmarks/gpu_bench.py --device cpu --smoke      # the same code, in CI's budget

Part 1, per registered method (``mer_bench.bench.bench``, as ``mer-bench bench`` runs
it): the ``paper`` preset (``smoke`` with ``--smoke``) trained one step per stage on
synth-casme2 clips at its real input shape, the batch full; peak memory of that
training, its seconds, parameters, GFLOPs per clip, and clips/s at batch 1, 32 and 256
in fp32 and bf16 autocast. MPFNet gets its real features (its context has the feature
loader a run gives). A method whose flow needs ``cv2.optflow`` on an OpenCV without
contrib is timed on random inputs of its declared shape and says so. A method that runs
out of memory gets a row saying so.

Part 2: ``mer-bench run --method mcnet --protocol loso`` (``paper``; ``smoke`` with
``--smoke``) started at ``--jobs 1`` and at ``--jobs N``, each stopped once ``--folds``
folds have written their files (``<out>/.partial``); the seconds per fold after the
first finished fold, and the projected wall time of all the protocol's folds
(start-up + folds x seconds per fold). The runner is the one users run; nothing is
re-implemented here.

Prints markdown tables (the README keeps the GPU one, with device and date). Not a
test: CI runs the ``--smoke`` form through ``tests/test_bench.py``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mer_bench.bench import BenchRow, bench, format_rows
from mer_bench.data.datasets import load_dataset
from mer_bench.data.schemes import get_scheme
from mer_bench.errors import MerBenchError
from mer_bench.methods import method_names
from mer_bench.protocols import get_protocol
from mer_bench.timing import LADDER

POLL_S = 0.25


def method_rows(names: list[str], preset: str, device: str, threads: int) -> list[str]:
    """The bench table's rows, one per method; a failure is a row, not an exit."""
    rows: list[BenchRow] = []
    lines = []
    for name in names:
        try:
            rows.append(bench(name, preset, device, threads))
        except Exception as err:  # noqa: BLE001 - out of memory, a missing library: a row per method
            lines.append(f"| {name} | {preset} | {type(err).__name__}: {str(err).splitlines()[0][:120]} |")
        _release(device)
    table = format_rows(rows, LADDER)
    return [table, *lines]


def _release(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.empty_cache()


def loso_folds(scheme: str = "casme2-5") -> int:
    """How many folds (tasks) one seed of LOSO has on synth-casme2 under ``scheme``."""
    dataset = load_dataset("synth-casme2")
    samples = get_scheme(scheme, dataset.name).apply(dataset.samples)
    return len({f.train_group for f in get_protocol("loso").folds(samples, 0)})


def time_folds(preset: str, device: str, jobs: int, folds: int, threads: int) -> dict:
    """Run MCNet LOSO at ``jobs`` until ``folds`` fold files exist; {first_s, per_fold_s,
    done} (seconds from the start to the first finished fold; mean seconds per further
    fold, all workers together)."""
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as out:
        command = [sys.executable, "-m", "mer_bench.cli", "run", "--method", "mcnet",
                   "--protocol", "loso", "--preset", preset, "--device", device,
                   "--jobs", str(jobs), "--threads", str(threads), "--out", out, "--quiet"]
        env = {**os.environ, "MER_BENCH_CACHE": str(Path(out) / "cache")}
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True)
        seen: dict[str, float] = {}
        try:
            while len(seen) < folds and process.poll() is None:
                for path in Path(out).glob(".partial/*/*.json"):
                    seen.setdefault(path.name, time.perf_counter() - start)
                time.sleep(POLL_S)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            _, err = process.communicate()
        if len(seen) < 2:
            raise MerBenchError(f"mcnet loso at --jobs {jobs}: {len(seen)} folds finished "
                                f"({err.decode(errors='replace').strip().splitlines()[-1:]})")
        times = sorted(seen.values())
        return {"first_s": times[0], "per_fold_s": (times[-1] - times[0]) / (len(times) - 1),
                "done": len(times)}


def fold_rows(preset: str, device: str, jobs: int, folds: int, threads: int) -> list[str]:
    total = loso_folds()
    head = ("| mcnet loso | --jobs | folds timed | first fold done | s per further fold | "
            f"projected, all {total} folds |")
    lines = [head, "|---|---|---|---|---|---|"]
    for n in sorted({1, jobs}):
        t = time_folds(preset, device, n, max(folds, n + 1), threads)
        projected = t["first_s"] + (total - 1) * t["per_fold_s"]
        lines.append(f"| {preset} on {device} | {n} | {t['done']} | {t['first_s']:.1f} s | "
                     f"{t['per_fold_s']:.2f} s | {projected / 60:.1f} min |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true",
                        help="smoke presets: the same code in CI's budget (2 CPU cores)")
    parser.add_argument("--methods", help="comma-separated (default: every registered method)")
    parser.add_argument("--jobs", type=int, default=4, help="folds at once for part 2")
    parser.add_argument("--folds", type=int, default=6, help="folds timed per --jobs setting")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per fold")
    args = parser.parse_args()
    preset = "smoke" if args.smoke else "paper"
    start = time.perf_counter()
    import torch
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{where} · torch {torch.__version__} · {time.strftime('%Y-%m-%d')} · preset {preset}")
    names = args.methods.split(",") if args.methods else list(method_names())
    print("\n".join(method_rows(names, preset, args.device, args.threads)))
    print()
    print("\n".join(fold_rows(preset, args.device, args.jobs, args.folds, args.threads)))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
