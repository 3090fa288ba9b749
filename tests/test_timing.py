"""Inference timing (warm-up, median of timed calls, the batch-size ladder in fp32 and
bf16, FLOPs per clip), the fields a result records, and a scikit-learn run that never
imports torch."""

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from mer_bench.checks import tiny_data
from mer_bench.errors import MerBenchError
from mer_bench.features import OnsetApex
from mer_bench.method import Method, MethodConfig, Prediction
from mer_bench.report.leaderboard import row
from mer_bench.report.results import load_result, verify_result
from mer_bench.runner import RunOptions, run
from mer_bench.timing import (
    BF16,
    FLOAT32,
    LADDER,
    MAX_REPEATS,
    SPEED_BATCH,
    count_flops,
    ladder_batch,
    median_seconds,
    predict_ladder,
    resolve_device,
    speed_at,
)


def test_median_seconds_warms_up_once_then_times_up_to_the_repeats():
    calls = []
    seconds = median_seconds(lambda: calls.append(1), "cpu", repeats=4)
    assert len(calls) == 5 and seconds >= 0
    calls.clear()
    median_seconds(lambda: calls.append(1), "cpu")
    assert len(calls) == 1 + MAX_REPEATS  # fast calls: every repeat


def test_median_seconds_stops_slow_calls_once_the_time_budget_is_spent():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.03)
    seconds = median_seconds(slow, "cpu", budget_s=0.05)
    assert len(calls) == 1 + 2 and seconds >= 0.03  # warm-up, then until 0.05 s were timed


class Linear(Method):
    """A torch model of known cost: one (d -> C) linear layer on flattened inputs."""

    name = "test-linear"
    Config = MethodConfig
    inputs = OnsetApex(size=8, channels=("diff",))
    fail_at: int | None = None
    failure: type[BaseException] = MemoryError
    bf16_fails = False

    def fit(self, train, ctx):
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(int(np.prod(train.x.shape[1:])), train.n_classes)

    def predict(self, test, support=None):
        if self.fail_at is not None and len(test) >= self.fail_at:
            raise self.failure("no room")
        if self.bf16_fails and torch.is_autocast_enabled('cpu'):
            raise RuntimeError("unsupported under autocast")
        with torch.no_grad():
            scores = self.layer(torch.from_numpy(test.x.reshape(len(test), -1)))
        return Prediction(scores.float().argmax(1).numpy(), scores.float().numpy())

    def torch_modules(self):
        return [self.layer]


@pytest.fixture(scope="module")
def fitted():
    method = Linear(MethodConfig())
    train, test, _ = tiny_data(method.input_specs)
    method.fit(train, None)
    return method, test


def test_a_ladder_batch_repeats_the_test_clips_in_order(fitted):
    _, test = fitted
    batch = ladder_batch(test, 256)
    assert len(batch) == 256
    index = np.resize(np.arange(len(test)), 256)
    assert np.array_equal(batch.x, test.x[index])


def test_the_ladder_has_every_batch_size_in_fp32_and_bf16_for_a_torch_method(fitted):
    method, test = fitted
    entries, note = predict_ladder(method, test, None, "cpu")
    assert note is None
    assert [(e["dtype"], e["batch_size"]) for e in entries] == \
        [(d, b) for d in (FLOAT32, BF16) for b in LADDER]
    for e in entries:
        assert e["samples_per_s"] == pytest.approx(e["batch_size"] / (e["median_ms"] / 1000),
                                                   rel=1e-6)


def test_running_out_of_memory_caps_the_ladder_and_says_where(fitted):
    method, test = fitted
    method.fail_at = 256
    try:
        entries, note = predict_ladder(method, test, None, "cpu")
    finally:
        method.fail_at = None
    assert [(e["dtype"], e["batch_size"]) for e in entries] == \
        [(FLOAT32, 1), (FLOAT32, 32), (BF16, 1), (BF16, 32)]
    assert note == ("float32: batch 256 ran out of memory; "
                    "bfloat16-autocast: batch 256 ran out of memory")


def test_a_bf16_failure_is_noted_and_an_fp32_failure_is_raised(fitted):
    method, test = fitted
    method.bf16_fails = True
    try:
        entries, note = predict_ladder(method, test, None, "cpu")
    finally:
        method.bf16_fails = False
    assert {e["dtype"] for e in entries} == {FLOAT32}
    assert note.startswith("bfloat16-autocast: batch 1 failed (RuntimeError: unsupported")
    method.fail_at, method.failure = 32, ValueError
    try:
        with pytest.raises(ValueError):
            predict_ladder(method, test, None, "cpu")
    finally:
        method.fail_at, method.failure = None, MemoryError


def test_flops_per_clip_of_a_linear_layer_are_two_per_weight(fitted):
    method, test = fitted
    flops, how = count_flops(method, test, None)
    weights = method.layer.weight.numel()
    assert flops == 2 * weights  # one multiply-add per weight and clip
    assert f"one predict of {SPEED_BATCH} clips" in how


def test_flops_of_a_method_outside_torch_are_null_with_the_reason(fitted):
    _, test = fitted
    from mer_bench.methods import build_method
    flops, how = count_flops(build_method("majority", "smoke"), test, None)
    assert flops is None and how.startswith("not counted: majority computes outside torch")


def test_a_method_without_torch_runs_on_the_cpu_and_refuses_amp(tmp_path, shared_cache):
    assert resolve_device("cuda", uses_torch=False) == "cpu"
    with pytest.raises(MerBenchError, match="unknown device 'tpu'"):
        resolve_device("tpu", uses_torch=False)
    with pytest.raises(MerBenchError, match="--amp: flow-svm does not use torch"):
        run(RunOptions(method="flow-svm", protocol="loso", preset="smoke", out_dir=tmp_path,
                       cache_dir=shared_cache, progress=False, amp=True))


def run_fields(tmp_path, cache, method, protocol, **kw):
    result = load_result(run(RunOptions(method=method, protocol=protocol, preset="smoke",
                                        out_dir=tmp_path, cache_dir=cache, device="cpu",
                                        progress=False, **kw)))
    assert verify_result(result) == []
    return result


def test_the_ladder_is_measured_once_per_seed_and_the_result_holds_its_median(tmp_path,
                                                                           shared_cache):
    result = run_fields(tmp_path, shared_cache, "flow-svm", "kfold5", seeds=(0, 1))
    tasks = result["timing"]["per_task"]
    timed = [t for t in tasks if t.get("throughput")]
    assert [t["seed"] for t in timed] == [0, 1]  # the first task of each seed
    timing = result["timing"]
    assert [(e["dtype"], e["batch_size"]) for e in timing["throughput"]] == \
        [(FLOAT32, b) for b in LADDER]  # no bf16 outside torch
    for entry in timing["throughput"]:
        assert entry["samples_per_s"] == pytest.approx(float(np.median(
            [m["samples_per_s"] for t in timed for m in t["throughput"]
             if m["batch_size"] == entry["batch_size"]])))
    assert timing["throughput_cap"] is None and timing["throughput_note"] is None
    assert timing["flops_per_sample"] is None and "outside torch" in timing["flops_note"]
    assert timing["dtype"] == "float32" and timing["threads"] == 1
    assert timing["device_class"] == "CPU · 1 thread"
    assert result["environment"]["gpu"] is None  # flow-svm: torch never asked
    speed = speed_at(timing)
    assert speed == next(e["samples_per_s"] for e in timing["throughput"]
                         if e["batch_size"] == SPEED_BATCH)
    assert row(tmp_path / "r.json", result, tmp_path, "CPU · 1 thread")[-1] == f"{speed:.0f}"
    other = row(tmp_path / "r.json", result, tmp_path, "GPU: H200")[-1]
    assert other == f"{speed:.0f} † (CPU · 1 thread)"  # shown, marked, not ranked with the GPU


def test_a_result_without_the_ladder_shows_no_speed_and_a_bad_ladder_is_refused():
    assert speed_at({"predict_samples_per_s": 900.0, "dtype": "float32"}) is None  # older file
    good = {"batch_size": 32, "dtype": "float32", "samples_per_s": 10.0, "median_ms": 3200.0}
    from mer_bench.report.schema import _timing_problems
    assert _timing_problems({"throughput": [good]}) == []
    for bad in ({**good, "dtype": "int8"}, {**good, "batch_size": 0},
                {**good, "samples_per_s": float("nan")}, "fast"):
        problems = _timing_problems({"throughput": [bad]})
        assert problems and problems[0].startswith("'timing.throughput[0]'"), bad
    assert _timing_problems({"throughput": [good] * 17})[0].startswith(
        "'timing.throughput' must be a list of at most 16")


def test_amp_runs_every_predict_under_bf16_autocast_and_is_its_own_run(tmp_path, shared_cache):
    kw = {"protocol_params": {"episodes": 3, "n_way": 3}}
    plain = run_fields(tmp_path, shared_cache, "protonet", "fewshot", **kw)
    amp = run_fields(tmp_path, shared_cache, "protonet", "fewshot", amp=True, **kw)
    assert amp["timing"]["dtype"] == "bfloat16-autocast" and plain["timing"]["dtype"] == "float32"
    assert amp["run_id"] != plain["run_id"]
    n_classes = len(amp["label_scheme"]["classes"])
    assert all(len(p["scores"]) == n_classes for p in amp["predictions"])  # float32 again


def test_the_command_runs_scikit_learn_without_torch_on_pools_sized_at_start(tmp_path,
                                                                              shared_cache):
    """The ``mer-bench`` command (``entry``) running flow-svm: the whole run (results,
    leaderboard) stays off torch's ~3 s import, and the BLAS/OpenMP pools hold
    ``--threads`` threads, sized through the environment before numpy loaded (so
    threadpoolctl was never needed to pin them)."""
    code = ("import sys; from mer_bench.cli import entry; "
            f"sys.argv = ['mer-bench', 'run', '--method', 'flow-svm', '--protocol', 'loso', "
            f"'--preset', 'smoke', '--out', {str(tmp_path)!r}, '--cache-dir', "
            f"{str(shared_cache)!r}, '--quiet']; code = entry(); assert code == 0, code; "
            "assert 'torch' not in sys.modules, 'torch imported'; import os; "
            "assert os.environ.get('OPENBLAS_NUM_THREADS') == '1', 'pools not sized at start'; "
            "from threadpoolctl import threadpool_info; "
            "pools = [p['num_threads'] for p in threadpool_info()]; "
            "assert pools and set(pools) == {1}, pools")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
