"""Folds in parallel over devices: ``--devices`` parsing, one slot per worker process,
the memory check that refuses what cannot fit, and predictions identical to ``--jobs 1``
(CPU processes stand in for GPUs in CI)."""

import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch

from mer_bench.devices import (
    CONTEXT_BYTES,
    check_fit,
    claim_slot,
    fit_problem,
    folds_that_fit,
    parse_devices,
)
from mer_bench.errors import MerBenchError
from mer_bench.methods import build_method
from mer_bench.nn.training import Execution, minibatch_epochs
from mer_bench.report.results import load_result
from mer_bench.runner import RunOptions, run

GIB = 2**30


def test_devices_are_gpu_indices_names_or_all_visible():
    assert parse_devices("0,1") == ("cuda:0", "cuda:1")
    assert parse_devices("cuda:1, cpu") == ("cuda:1", "cpu")
    assert parse_devices("all", visible=3) == ("cuda:0", "cuda:1", "cuda:2")
    with pytest.raises(MerBenchError, match="torch sees no CUDA GPU"):
        parse_devices("all", visible=0)
    with pytest.raises(MerBenchError, match="'gpu1' is not a GPU index"):
        parse_devices("0,gpu1")
    with pytest.raises(MerBenchError, match="names a device twice"):
        parse_devices("0,0")


def test_each_worker_process_holds_its_own_slot(tmp_path):
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    assert claim_slot(tmp_path, run_id, 2) == 0
    assert claim_slot(tmp_path, run_id, 2) == 0  # kept for the process's life
    other = ("import sys; from pathlib import Path; from mer_bench.devices import claim_slot; "
             f"print(claim_slot(Path({str(tmp_path)!r}), {run_id!r}, int(sys.argv[1])))")
    second = subprocess.run([sys.executable, "-c", other, "2"], capture_output=True, text=True, check=False)
    assert second.stdout.strip() == "1", second.stderr  # its lock ended with it
    full = subprocess.run([sys.executable, "-c", other, "1"], capture_output=True, text=True, check=False)
    assert full.returncode != 0 and "all 1 device slots" in full.stderr


def test_the_fit_check_counts_a_cuda_context_beside_each_fold():
    assert folds_that_fit(6 * GIB, 20 * GIB) == 20 * GIB // (6 * GIB + CONTEXT_BYTES) == 3
    assert fit_problem(3, 6 * GIB, 20 * GIB, "cuda:0", "GPU") is None
    message = fit_problem(4, 6 * GIB, 20 * GIB, "cuda:0", "NVIDIA L4")
    assert message.startswith("--jobs 4 on cuda:0 (NVIDIA L4): one fold peaks at 6.0 GiB")
    assert message.endswith("20.0 GiB are free: at most 3 fit")
    assert "not even one" in fit_problem(2, 30 * GIB, 20 * GIB, "cuda:0", "GPU")
    check_fit("mcnet", "paper", {}, ("cpu", "cpu"), 4)  # nothing to check off the GPU


def test_folds_spread_over_devices_predict_what_one_worker_predicts(tmp_path, shared_cache):
    def predictions(jobs, devices, out):
        result = load_result(run(RunOptions(
            method="protonet", protocol="kfold5", preset="smoke", out_dir=tmp_path / out,
            cache_dir=shared_cache, device="cpu", progress=False, jobs=jobs, devices=devices)))
        return result, sorted((p["sample_id"], p["y_pred"], tuple(p["scores"]))
                              for p in result["predictions"])

    one, expected = predictions(1, (), "one")
    spread, got = predictions(1, ("cpu", "cpu"), "spread")  # one worker per device: 2 processes
    assert got == expected and spread["run_id"] == one["run_id"]
    assert not list((tmp_path / "spread" / ".locks").glob("*.slot*"))  # slots cleaned up


def test_devices_are_refused_for_a_method_outside_torch(tmp_path):
    with pytest.raises(MerBenchError, match="--devices: flow-svm does not use torch"):
        run(RunOptions(method="flow-svm", protocol="loso", preset="smoke", out_dir=tmp_path,
                       progress=False, devices=("cpu", "cpu")))


def test_micro_batches_give_the_whole_batch_gradient_without_batch_norm():
    """MA2MI's autoencoder runs its batches in parts (``micro_batch``): with group norms
    only, one step in parts of 2 moves the weights as one step on the whole batch."""
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def trained(execution):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4),
                                    torch.nn.SiLU(), torch.nn.Conv2d(4, 3, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loss_of = lambda idx: model(x[idx]).abs().mean()
        losses = minibatch_epochs(loss_of, len(x), 1, 8, optimizer, np.random.default_rng(0),
                                  "epochs", execution=execution)
        return losses, [p.detach().clone() for p in model.parameters()]

    whole_loss, whole = trained(None)
    parts_loss, parts = trained(Execution(micro_batch=2))
    assert parts_loss == pytest.approx(whole_loss, rel=1e-6)
    for a, b in zip(whole, parts):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_ma2mi_paper_pretrains_in_parts_and_the_cpu_presets_keep_whole_batches():
    paper = build_method("ma2mi", "paper").config
    assert (paper.micro_batch, paper.amp) == (8, True)
    for preset in ("fast", "smoke"):
        config = build_method("ma2mi", preset).config
        assert (config.micro_batch, config.amp) == (None, False)
        assert not {"micro_batch", "amp"} & set(type(config).recipe_departures(preset))
