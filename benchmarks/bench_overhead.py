"""What the harness costs beyond the work it wraps, as ratios (a script, not a test).

    python benchmarks/bench_overhead.py [--repeats 11] [--clips 128]

1. Runner vs bare loop: the whole process of ``mer-bench run --method flow-svm --protocol
   loso --dataset synth-casme2 --preset fast`` on a warm feature cache, against the whole
   process of a bare scikit-learn ``LeaveOneGroupOut`` loop making the same fits
   (flow-svm's fast config: ``StandardScaler`` + ``LinearSVC``) on the same cached
   features and printing pooled UF1, UAR and accuracy. The bare loop gets its labels,
   subjects and features through mer-bench's own loaders (``load_dataset``, the scheme,
   ``FeatureCache.materialize`` on the warm cache), so the ratio is the price of the
   harness itself: protocol objects, sealed test sets, per-sample records, bootstrap
   intervals, timing, result file and leaderboard. Target: at most 1.05x. For reference
   the script also times a minimal loop that imports no mer-bench (feature file paths,
   labels and subjects from a CSV, ``np.load`` per clip): that ratio adds mer-bench's
   imports and data loading. The ``mer-bench`` command ends with ``gc.freeze()``, which
   spares the interpreter's exit a garbage-collector walk over every object the imports
   made (≈ 0.4 s after scikit-learn); a researcher's bare script does not, so the script
   also times the bare loop with the same fast exit: runner over *that* is the price of
   the harness's own work alone, and is printed beside the headline ratio.
   Median of ``--repeats`` runs of each, interleaved (the order rotates every round),
   and the median of the per-round ratios; all loops must agree on UF1.
2. Cold vs warm feature cache: the same ``mer-bench run`` with an empty ``--cache-dir``
   (every clip's flow computed) against the warm run of 1. Median of ``--cold-repeats``.
3. Feature extraction with 1 vs 2 workers: onset -> apex TV-L1 flow at 112 px for the
   first ``--clips`` synth-casme2 clips, nothing cached, one OpenCV thread per worker,
   each measured in a fresh process (loky's worker start-up included). Target >= 1.8x on
   a machine with two free cores.

Every figure is wall-clock seconds on this machine; the ratios are printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

COMMAND = ["run", "--method", "flow-svm", "--protocol", "loso", "--dataset", "synth-casme2",
           "--preset", "fast"]

LOOP = """
predicted = np.empty_like(y)
for train, test in LeaveOneGroupOut().split(x, y, groups):
    model = make_pipeline(StandardScaler(), LinearSVC(C={C}, class_weight="balanced",
                                                      max_iter=20000, random_state=0))
    model.fit(x[train], y[train])
    predicted[test] = model.predict(x[test])
print(f1_score(y, predicted, average="macro"), balanced_accuracy_score(y, predicted),
      accuracy_score(y, predicted))
"""

SKLEARN = """
import sys
import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
"""

BARE_LOOP = SKLEARN + """
from mer_bench.data.datasets import load_dataset
from mer_bench.data.schemes import get_scheme
from mer_bench.features import FlowGrid
from mer_bench.features.cache import FeatureCache

dataset = load_dataset("synth-casme2")
samples = get_scheme(None, dataset.name).apply(dataset.samples)
spec = FlowGrid(size={size}, flow={flow}, grid={grid})
x = FeatureCache(sys.argv[1]).materialize(dataset, samples, spec, progress=False)
y, groups = samples["label"].to_numpy(), samples["subject"].to_numpy()
""" + LOOP

MINIMAL_LOOP = SKLEARN + """
import pandas as pd

table = pd.read_csv(sys.argv[1])
x = np.stack([np.load(path) for path in table["path"]])
y, groups = table["label"].to_numpy(), table["subject"].to_numpy()
""" + LOOP

EXTRACTION = """
import sys, time
import cv2
cv2.setNumThreads(1)
from mer_bench.data.datasets import load_dataset
from mer_bench.features import OnsetApex
from mer_bench.features.cache import FeatureCache

jobs, clips = int(sys.argv[1]), int(sys.argv[2])
dataset = load_dataset("synth-casme2")
rows = dataset.samples.head(clips)
start = time.perf_counter()
FeatureCache(None).materialize(dataset, rows, OnsetApex(112, "tvl1"), n_jobs=jobs, progress=False)
print(time.perf_counter() - start)
"""


def measured(argv: list[str]) -> tuple[float, float, str]:
    """Wall-clock and CPU (user + system) seconds of one whole process, and its stdout; a
    failure stops the script."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(argv[:4])}... failed:\n{done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, done.stdout


def seconds(argv: list[str]) -> tuple[float, str]:
    """Wall-clock seconds of one whole process, and its stdout."""
    elapsed, _, printed = measured(argv)
    return elapsed, printed


def mer_bench(out: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "mer_bench.cli", *COMMAND, "--out", str(out),
            "--cache-dir", str(cache), "--fresh"]


def minimal_table(cache_dir: Path, path: Path) -> None:
    """Write the minimal loop's CSV: each clip's cached feature file, label and subject,
    in the runner's clip order."""
    import pandas as pd

    from mer_bench.data.datasets import load_dataset
    from mer_bench.data.schemes import get_scheme
    from mer_bench.features.cache import FeatureCache
    from mer_bench.methods import build_method
    dataset = load_dataset("synth-casme2")
    samples = get_scheme(None, dataset.name).apply(dataset.samples)
    paths = FeatureCache(cache_dir).paths(dataset, samples, build_method("flow-svm", "fast").inputs)
    missing = [p for p in paths if not p.exists()]
    if missing:
        sys.exit(f"the warm-up run left {len(missing)} clips uncached (first: {missing[0]})")
    pd.DataFrame({"path": [str(p) for p in paths], "label": samples["label"].to_numpy(),
                  "subject": samples["subject"].to_numpy()}).to_csv(path, index=False)


FAST_EXIT = "\nimport gc\ngc.freeze()  # as the mer-bench command does before exiting\n"


def loops(work: Path, cache: Path) -> tuple[list[str], list[str]]:
    """The bare loop's and the minimal loop's commands, with flow-svm's fast config."""
    from mer_bench.methods import build_method
    config = build_method("flow-svm", "fast").config
    fill = {"{C}": repr(config.C), "{size}": repr(config.size), "{flow}": repr(config.flow),
            "{grid}": repr(config.grid)}
    bare, minimal = BARE_LOOP, MINIMAL_LOOP
    for key, value in fill.items():
        bare, minimal = bare.replace(key, value), minimal.replace(key, value)
    table = work / "table.csv"
    minimal_table(cache, table)
    return ([sys.executable, "-c", bare, str(cache)],
            [sys.executable, "-c", minimal, str(table)])


def warm_runs(work: Path, repeats: int) -> dict[str, tuple[list[float], list[float], str]]:
    """{runner, bare, bare_fast_exit, minimal}: wall-clock and CPU seconds of each run and
    what the last printed (the runner: its result's metrics), interleaved, after one
    warm-up run of the runner fills the cache."""
    cache, out = work / "cache", work / "results"
    seconds(mer_bench(out, cache))
    bare, minimal = loops(work, cache)
    fast_exit = [*bare[:2], bare[2] + FAST_EXIT, *bare[3:]]
    commands = {"runner": mer_bench(out, cache), "bare": bare, "bare_fast_exit": fast_exit,
                "minimal": minimal}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    printed: dict[str, str] = {}
    names = list(commands)
    for k in range(repeats):
        for name in names[k % len(names):] + names[:k % len(names)]:  # no command always first
            argv = commands[name]
            elapsed, used, printed[name] = measured(argv)
            wall[name].append(elapsed)
            cpu[name].append(used)
    result = json.loads(next(out.glob("flow-svm__*.json")).read_text())["metrics"]
    printed["runner"] = f"{result['uf1']} {result['uar']} {result['accuracy']}"
    return {name: (wall[name], cpu[name], printed[name]) for name in commands}


def cold_runs(work: Path, repeats: int) -> list[float]:
    return [seconds(mer_bench(work / f"cold-results-{k}", work / f"cold-cache-{k}"))[0]
            for k in range(repeats)]


def extraction(jobs: int, clips: int) -> float:
    return float(seconds([sys.executable, "-c", EXTRACTION, str(jobs), str(clips)])[1])


def show(label: str, times: list[float], printed: str = "") -> None:
    metrics = ""
    if printed:
        uf1, uar, accuracy = (float(v) for v in printed.split())
        metrics = f"  (UF1 {uf1:.3f}, UAR {uar:.3f}, accuracy {accuracy:.3f})"
    print(f"{label}: {median(times):.2f} s  {[round(t, 2) for t in times]}{metrics}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11, help="runs per figure of 1 (default 11)")
    parser.add_argument("--cold-repeats", type=int, default=3, help="cold runs (default 3)")
    parser.add_argument("--clips", type=int, default=128, help="clips extracted in 3 (default 128)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; whole-process wall clock, median of the runs listed")
    if sys.dont_write_bytecode:  # PYTHONDONTWRITEBYTECODE: every run would compile mer-bench
        import compileall

        import mer_bench.methods
        import mer_bench.protocols
        for package in (mer_bench, mer_bench.methods, mer_bench.protocols):
            compileall.compile_dir(Path(package.__file__).parent, quiet=1)
        print("PYTHONDONTWRITEBYTECODE is set: compiled mer-bench's modules first, as an "
              "install would have")
    with tempfile.TemporaryDirectory(prefix="mer-bench-overhead-") as tmp:
        work = Path(tmp)
        warm = warm_runs(work, args.repeats)
        show("runner, warm cache", warm["runner"][0], warm["runner"][2])
        show("bare loop (data through mer-bench's loaders)", warm["bare"][0], warm["bare"][2])
        show("bare loop, exiting as fast as mer-bench (gc.freeze)", warm["bare_fast_exit"][0],
             warm["bare_fast_exit"][2])
        show("minimal loop (no mer-bench import)", warm["minimal"][0], warm["minimal"][2])
        cold = cold_runs(work, args.cold_repeats)
        show("runner, cold cache", cold)
    one, two = extraction(1, args.clips), extraction(2, args.clips)
    print(f"TV-L1 112 px extraction of {args.clips} clips: 1 worker {one:.1f} s, "
          f"2 workers {two:.1f} s")
    runner = median(warm["runner"][0])
    cpu = {name: median(used) for name, (_, used, _) in warm.items()}
    print(f"CPU seconds (user + system), median: runner {cpu['runner']:.2f}, bare loop "
          f"{cpu['bare']:.2f} (fast exit {cpu['bare_fast_exit']:.2f}), minimal loop "
          f"{cpu['minimal']:.2f}")
    print()
    for name, label, note in (("bare", "runner / bare loop:            ", "(target <= 1.05)"),
                              ("bare_fast_exit", "runner / bare loop, fast exit: ",
                               "(the harness's own work: both skip the exit-time GC walk)")):
        paired = median(r / b for r, b in zip(warm["runner"][0], warm[name][0]))
        print(f"{label}    {runner / median(warm[name][0]):.3f}x; median of per-round ratios "
              f"{paired:.3f}x  {note}")
    print(f"runner / minimal loop:            {runner / median(warm['minimal'][0]):.3f}x  (reference)")
    print(f"same in CPU seconds:              {cpu['runner'] / cpu['bare']:.3f}x and "
          f"{cpu['runner'] / cpu['minimal']:.3f}x  (less exposed to a busy machine)")
    print(f"cold / warm feature cache:        {median(cold) / runner:.2f}x")
    print(f"extraction, 1 worker / 2 workers: {one / two:.2f}x  (target >= 1.8)")


if __name__ == "__main__":
    main()
