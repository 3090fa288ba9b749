"""``mer-bench bench``: what one method costs, without running a protocol.

For adapter authors and for comparing speed: a method's preset is trained for **one
step per stage** (every ``*epochs`` / ``*steps`` config field above zero set to 1;
nothing else changes: batch sizes, input sizes and widths are the preset's) on clips of
six ``synth-casme2`` subjects at the method's real input shape, the training clips
repeated so that the preset's largest batch is full (one step sees a whole batch).
Measured (``bench``):

- peak memory of that training (``timing.peak_memory``): CUDA peak allocated on a GPU;
  on a Linux CPU the process's peak resident set size during the training less what was
  resident before it (the training data included, the process's imports not);
- fit seconds of the one-step training (not a training-time estimate: data loading and
  set-up weigh more than in a full run);
- the inference throughput ladder (batch 1, 32, 256; fp32 and bf16 autocast) and FLOPs
  per clip of the (barely trained) model, as every run records them
  (``timing.predict_ladder``, ``timing.count_flops``);
- learned parameters.

The numbers describe the architecture at that preset, not a trained model's accuracy.
Where a method's inputs need ``cv2.optflow`` (TV-L1 flow) and OpenCV has no contrib
modules, its inputs are random arrays of the declared shape (``stand_in``; said in the
row): the network is timed, the flow is not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import numpy as np

from mer_bench.checks import tiny_data
from mer_bench.context import AuxiliaryLoader, FeatureLoader, RunContext
from mer_bench.errors import MerBenchError
from mer_bench.method import Method, adapter_call, is_budget_field
from mer_bench.methods import build_method
from mer_bench.timing import (
    LADDER,
    count_flops,
    device_class,
    peak_memory,
    pin_threads,
    predict_ladder,
    reset_peak_memory,
    resident_bytes,
    resolve_device,
    sync,
)

DEFAULT_BATCH = 32
"""Training clips when a config names no batch size."""


@dataclass
class BenchRow:
    """What ``bench`` measured for one method and preset."""

    method: str
    preset: str
    device_class: str
    params: int
    fit_seconds: float
    step_peak_bytes: int
    ladder: list[dict]
    ladder_note: str | None
    flops_per_sample: float | None
    flops_note: str
    train_clips: int
    stand_in: str | None = None
    """Why inputs were random arrays (no opencv-contrib), else None."""
    departures: dict = field(default_factory=dict)

    def rate(self, batch: int, dtype: str = "float32") -> float | None:
        return next((e["samples_per_s"] for e in self.ladder
                     if e["batch_size"] == batch and e["dtype"] == dtype), None)


def one_step_overrides(method: Method) -> dict[str, int]:
    """Every ``*epochs`` / ``*steps`` field of ``method``'s config that is above zero,
    set to 1 (a stage a preset switches off stays off)."""
    config = method.config
    return {f.name: 1 for f in fields(config)
            if f.name.endswith(("epochs", "steps")) and isinstance(getattr(config, f.name), int)
            and getattr(config, f.name) > 0}


def largest_batch(method: Method) -> int:
    """The largest batch-size field of the config (``*batch``, ``*batch_size``), or
    ``DEFAULT_BATCH``."""
    sizes = [getattr(method.config, f.name) for f in fields(method.config)
             if f.name.endswith(("batch", "batch_size")) and is_budget_field(f.name)
             and isinstance(getattr(method.config, f.name), int)]
    return max(sizes, default=DEFAULT_BATCH)


def needs_contrib(err: MerBenchError) -> bool:
    return "opencv-contrib" in str(err)


def bench(name: str, preset: str = "paper", device: str = "auto", threads: int = 1,
          ladder: tuple[int, ...] = LADDER, overrides: dict | None = None) -> BenchRow:
    """Train ``name`` at ``preset`` (with config ``overrides``, as ``-S`` gives them) for
    one step per stage and measure it (module docstring). Raises ``MerBenchError`` for an
    unknown method, preset, field or device."""
    base = build_method(name, preset, **(overrides or {}))
    method = build_method(name, preset, **{**(overrides or {}), **one_step_overrides(base)})
    device = resolve_device(device, method.uses_torch)
    pin_threads(threads, method.uses_torch)
    stand_in = None
    try:
        train, test, _ = tiny_data(method.input_specs)
    except MerBenchError as err:
        if not needs_contrib(err):
            raise
        stand_in = "skipped: no opencv-contrib (TV-L1 flow); network timed on random inputs"
        train, test, _ = tiny_data(method.input_specs, stand_in=True)
    clips = max(largest_batch(method), len(train))
    train = train.subset(np.resize(np.arange(len(train)), clips))
    ctx = RunContext(device=device, seed=0, preset=preset,
                     auxiliary_loader=AuxiliaryLoader({"macro": "synth-ckplus"},
                                                      method.input_specs, None, 0),
                     feature_loader=FeatureLoader("synth-casme2", 0, None),
                     train_ids=frozenset(train.rows["sample_id"]))
    try:
        with adapter_call(name, "bench"):
            reset_peak_memory(device)
            baseline = 0 if device.startswith("cuda") else resident_bytes()
            start = time.perf_counter()
            method.fit(train, ctx)
            sync(device)
            fit_seconds = time.perf_counter() - start
            step_peak = max(0, peak_memory(device) - baseline)
            rates, note = predict_ladder(method, test, None, device, ladder)
            flops, how = count_flops(method, test, None)
    finally:
        ctx.close()
    return BenchRow(name, preset, device_class(device, threads), method.parameter_count(),
                    fit_seconds, step_peak, rates, note, flops, how, clips, stand_in,
                    base.config.departures())


def format_rows(rows: list[BenchRow], ladder: tuple[int, ...] = LADDER) -> str:
    """A markdown table of ``rows``: parameters, FLOPs, step memory and fit time, and
    clips/s per ladder step in fp32 and bf16."""
    head = ["method", "preset", "params", "GFLOPs/clip", "train-step peak", "fit (1 step/stage)",
            *[f"fp32 @{b}" for b in ladder], *[f"bf16 @{b}" for b in ladder], "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        flops = "—" if r.flops_per_sample is None else f"{r.flops_per_sample / 1e9:.3g}"
        speeds = [_rate(r.rate(b, dtype)) for dtype in ("float32", "bfloat16-autocast")
                  for b in ladder]
        note = "; ".join(n for n in (r.stand_in, r.ladder_note) if n)
        lines.append("| " + " | ".join([r.method, r.preset, f"{r.params:,}", flops,
                                        _bytes(r.step_peak_bytes),
                                        f"{r.fit_seconds:.1f} s", *speeds, note]) + " |")
    return "\n".join(lines)


def _bytes(value: int) -> str:
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"
