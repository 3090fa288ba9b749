"""``mer-bench bench`` (one method's ladder, FLOPs, parameters and training-step memory
without a protocol) and ``benchmarks/gpu_bench.py --device cpu --smoke``, the same code
CI can run."""

import subprocess
import sys
from pathlib import Path

import pytest

import mer_bench.bench as bench_module
from mer_bench.bench import bench, largest_batch, one_step_overrides
from mer_bench.cli import main
from mer_bench.errors import MerBenchError
from mer_bench.methods import build_method, method_names
from mer_bench.timing import BF16, FLOAT32, LADDER

ROOT = Path(__file__).resolve().parents[1]


def test_one_step_per_stage_sets_every_epoch_and_step_count_to_one():
    method = build_method("mcnet", "paper")
    assert one_step_overrides(method) == {"pretrain_epochs": 1, "meta_steps": 1}
    assert largest_batch(method) == 128  # pretrain_batch: one step sees a whole batch


def test_bench_measures_ladder_flops_parameters_and_step_memory():
    row = bench("protonet", "smoke", "cpu", threads=1)
    assert row.params > 0 and row.flops_per_sample > 0 and row.fit_seconds > 0
    assert row.step_peak_bytes >= 0 and row.device_class == "CPU · 1 thread"
    assert [(e["dtype"], e["batch_size"]) for e in row.ladder] == \
        [(d, b) for d in (FLOAT32, BF16) for b in LADDER]
    assert row.stand_in is None


def test_the_command_prints_one_row_with_every_ladder_step(capsys):
    assert main(["bench", "--method", "flow-svm", "--preset", "smoke", "--device", "cpu",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flow-svm · preset smoke · CPU · 1 thread · one step per stage")
    row = next(line for line in out.splitlines() if line.startswith("| flow-svm |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "—"  # no FLOPs outside torch
    assert all(c != "—" for c in cells[6:9]) and cells[9:12] == ["—"] * 3  # fp32 only
    assert "FLOPs: not counted: flow-svm computes outside torch" in out


def test_inputs_that_need_opencv_contrib_become_random_arrays_and_the_row_says_so(monkeypatch):
    real = bench_module.tiny_data

    def without_contrib(specs, stand_in=False):
        if not stand_in:
            raise MerBenchError("flow 'tvl1' needs opencv-contrib (cv2.optflow)")
        return real(specs, stand_in=True)
    monkeypatch.setattr(bench_module, "tiny_data", without_contrib)
    row = bench("ststnet", "smoke", "cpu", threads=1, ladder=(1,))
    assert row.stand_in.startswith("skipped: no opencv-contrib")
    assert row.ladder and row.params > 0
    monkeypatch.setattr(bench_module, "tiny_data", lambda specs, stand_in=False: (_ for _ in ()).throw(
        MerBenchError("no such frame")))
    with pytest.raises(MerBenchError, match="no such frame"):  # other failures are not hidden
        bench("ststnet", "smoke", "cpu", threads=1, ladder=(1,))


def test_gpu_bench_smoke_on_the_cpu_has_a_row_for_every_adapter_and_the_fold_timing():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--device",
                           "cpu", "--smoke", "--jobs", "2", "--folds", "3"],
                          capture_output=True, text=True, check=False, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines()
            if line.startswith("| ") and "|---" not in line}
    for name in method_names():
        assert name in rows, name
        assert "Error" not in rows[name], rows[name]
    assert "mpfnet-p" in rows and "mpfnet-c" in rows
    folds = [line for line in done.stdout.splitlines() if line.startswith("| smoke on cpu |")]
    assert [line.split("|")[2].strip() for line in folds] == ["1", "2"]
