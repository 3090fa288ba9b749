"""Timing of the data pipeline on this machine (a script, not a test).

    python benchmarks/bench_pipeline.py [--size 128]

Reports: building the synth-casme2 sample table; rendering every frame of every
synth-casme2 clip at ``--size`` on one core; onset->apex feature extraction per clip for
each flow method (no cache); and the cache's hit path. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

cv2.setNumThreads(1)

from mer_bench.data.synthetic.twins import SPECS, SyntheticDataset  # noqa: E402
from mer_bench.features import FLOW_METHODS, onset_apex  # noqa: E402
from mer_bench.features.cache import FeatureCache  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--clips", type=int, default=60, help="clips per flow timing")
    args = parser.parse_args()

    holder = {}
    seconds = timed(lambda: holder.setdefault("ds", SyntheticDataset(SPECS["synth-casme2"])))
    ds = holder["ds"]
    print(f"synth-casme2 sample table: {seconds:.2f} s ({len(ds.samples)} clips)")

    def render_all():
        for sid, n in zip(ds.samples["sample_id"], ds.samples["n_frames"]):
            ds.frames(sid, np.arange(n), args.size)

    n_frames = int(ds.samples["n_frames"].sum())
    seconds = timed(render_all)
    print(f"render all synth-casme2 frames at {args.size}px, 1 core: {seconds:.1f} s "
          f"({n_frames} frames, {1000 * seconds / n_frames:.2f} ms/frame)")

    rows = ds.samples.head(args.clips)
    for flow in FLOW_METHODS:
        spec = onset_apex(size=args.size, flow=flow)
        seconds = timed(lambda: FeatureCache(None).materialize(ds, rows, spec, progress=False))
        print(f"onset_apex flow={flow} {args.size}px: {1000 * seconds / len(rows):.1f} ms/clip "
              f"(render 2 frames + flow)")

    with tempfile.TemporaryDirectory() as cache_dir:
        spec = onset_apex(size=args.size)
        cache = FeatureCache(cache_dir)
        cold = timed(lambda: cache.materialize(ds, rows, spec, progress=False))
        warm = timed(lambda: cache.materialize(ds, rows, spec, progress=False))
        print(f"cache: cold {1000 * cold / len(rows):.2f} ms/clip, hit {1000 * warm / len(rows):.2f} ms/clip")


if __name__ == "__main__":
    main()
