"""Inference timing (warm-up, median of repeats, batch sizes 1 and the fold, bf16
autocast), the fields a result records, and a scikit-learn run that never imports torch."""

import subprocess
import sys

import pytest

from mer_bench.errors import MerBenchError
from mer_bench.report.results import load_result, verify_result
from mer_bench.runner import RunOptions, run
from mer_bench.timing import measure_throughput, median_seconds, resolve_device


def test_median_seconds_warms_up_once_then_times_the_repeats():
    calls = []
    seconds = median_seconds(lambda: calls.append(1), "cpu", repeats=4)
    assert len(calls) == 5 and seconds >= 0


def test_throughput_is_reported_per_batch_size_in_samples_per_second():
    calls = {1: 0, 8: 0}

    def count(batch):
        def call():
            calls[batch] += 1
        return call

    out = measure_throughput({8: count(8), 1: count(1)}, "cpu", repeats=3)
    assert [m["batch_size"] for m in out] == [1, 8] and calls == {1: 4, 8: 4}
    for m in out:
        assert m["samples_per_s"] == pytest.approx(m["batch_size"] / (m["median_ms"] / 1000),
                                                   rel=1e-6, abs=1e-3)


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


def test_throughput_is_measured_once_per_seed_at_batch_one_and_the_fold(tmp_path, shared_cache):
    result = run_fields(tmp_path, shared_cache, "flow-svm", "kfold5", seeds=(0, 1))
    tasks = result["timing"]["per_task"]
    timed = [t for t in tasks if t["throughput"]]
    assert [t["seed"] for t in timed] == [0, 1]  # the first task of each seed
    for t in timed:
        assert [m["batch_size"] for m in t["throughput"]] == [1, t["batch_size"]]
        assert t["predict_samples_per_s"] == t["throughput"][-1]["samples_per_s"]
    assert all(t["predict_samples_per_s"] is None for t in tasks if not t["throughput"])
    timing = result["timing"]
    assert timing["dtype"] == "float32" and timing["threads"] == 1
    assert timing["predict_samples_per_s_batch1"] > 0 and timing["latency_ms_batch1"] > 0
    assert result["environment"]["gpu"] is None  # flow-svm: torch never asked


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
