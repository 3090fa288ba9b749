"""GPU smoke test of the deep adapters' ``paper`` presets: do they fit, how fast are they?

    python benchmarks/gpu_smoke.py [--device cuda] [--methods mcnet,mpfnet-c,...]

For each adapter: the ``paper`` config with every epoch/step count cut to 1 (nothing else
changed: batch sizes, input sizes, widths and the execution settings are the paper's),
trained on synth-casme2 clips at the paper's input size, the training set repeated so
that every paper batch is full (400 clips). Prints the peak GPU memory of ``fit``
(``torch.cuda.max_memory_allocated``), fit seconds, and inference samples/s at the batch
of all test clips and at batch size 1, measured as the runner does
(``mer_bench.timing.predict_throughput``: warm-up, CUDA synchronized, median of 10);
``--amp`` predicts under bf16 autocast. Not a test: CI has no GPU.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import fields

import numpy as np
import torch

from mer_bench.checks import tiny_data
from mer_bench.context import AuxiliaryLoader, RunContext
from mer_bench.methods import build_method
from mer_bench.timing import (
    inference_precision,
    peak_memory,
    predict_throughput,
    reset_peak_memory,
    sync,
)

DEEP = ("mcnet", "mpfnet-p", "mpfnet-c", "lightmannet", "attr-contrast", "ma2mi")


def one_step_overrides(method_name: str) -> dict:
    """Every ``*epochs`` / ``*steps`` field of the paper config set to 1."""
    config = build_method(method_name, "paper").config
    return {f.name: 1 for f in fields(config) if f.name.endswith(("epochs", "steps"))}


def full_batches(train, clips: int = 400):
    """``train`` repeated until it has ``clips`` rows."""
    repeats = int(np.ceil(clips / len(train)))
    return train.subset(np.tile(np.arange(len(train)), repeats)[:clips])


def smoke(name: str, device: str, amp: bool) -> str:
    method = build_method(name, "paper", **one_step_overrides(name))
    train, test, _ = tiny_data(method.input_specs)
    aux = AuxiliaryLoader({"macro": "synth-ckplus"}, method.input_specs, None, 0)
    ctx = RunContext(device=device, seed=0, auxiliary_loader=aux,
                     train_ids=frozenset(train.rows["sample_id"]))
    reset_peak_memory(device)
    start = time.perf_counter()
    method.fit(full_batches(train), ctx)
    sync(device)
    fit_s = time.perf_counter() - start
    peak = peak_memory(device) / 2 ** 30
    precision, dtype = inference_precision(device, amp)
    with precision:
        one, batch = predict_throughput(method, test, None, device)
    return (f"| {name} | {dtype} | {peak:.1f} GiB | {fit_s:.1f} s | "
            f"{batch['samples_per_s']:.0f} (batch {batch['batch_size']}) | "
            f"{one['samples_per_s']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--methods", default=",".join(DEEP))
    parser.add_argument("--amp", action="store_true", help="predict under bf16 autocast")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script measures GPU memory and speed")
    print(f"{torch.cuda.get_device_name()} · torch {torch.__version__}")
    print("| method | inference dtype | peak memory (fit) | fit, 1 step per stage | "
          "inference samples/s | at batch 1 |")
    print("|---|---|---|---|---|---|")
    for name in args.methods.split(","):
        try:
            print(smoke(name, args.device, args.amp), flush=True)
        except torch.cuda.OutOfMemoryError as err:
            print(f"| {name} | | out of memory: {str(err).splitlines()[0][:80]} | | | |",
                  flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
