"""Learning diagnostics: stored per fold in every result, summarized, and drawn."""

import pytest

from mer_bench.cli import main
from mer_bench.method import DIAGNOSTIC_POINTS, training_stage
from mer_bench.report.results import load_result
from mer_bench.runner import RunOptions, run


def _run(tmp_path, cache, method):
    return load_result(run(RunOptions(method=method, protocol="loso", preset="smoke",
                                      out_dir=tmp_path, cache_dir=cache, device="cpu",
                                      progress=False)))


@pytest.fixture(scope="module")
def deep_run(tmp_path_factory, shared_cache):
    """A smoke LOSO run of a trained adapter: (its folder, its result)."""
    folder = tmp_path_factory.mktemp("diagnostics")
    return folder, _run(folder, shared_cache, "ststnet")


def test_training_stage_keeps_start_end_and_a_short_curve():
    stage = training_stage([float(v) for v in range(200, 0, -1)], train_accuracy=0.5)
    assert stage["loss_start"] == 200 and stage["loss_end"] == 1 and stage["steps"] == 200
    assert len(stage["loss"]) == DIAGNOSTIC_POINTS and stage["loss"][-1] == 1
    assert stage["train_accuracy"] == 0.5


def test_a_trained_method_records_its_stages_and_every_method_its_training_accuracy(
        deep_run, tmp_path, shared_cache):
    deep = deep_run[1]
    summary = deep["diagnostics"]["summary"]
    assert set(summary) == {"supervised", "fitted model"}
    assert summary["supervised"]["steps"] == 3 and 0 <= summary["fitted model"]["train_accuracy"] <= 1
    per_task = deep["diagnostics"]["per_task"]
    assert len(per_task) == len(deep["folds"]) and per_task[0]["stages"]["supervised"]["loss"]
    svm = _run(tmp_path, shared_cache, "flow-svm")
    assert set(svm["diagnostics"]["summary"]) == {"fitted model"}
    assert svm["diagnostics"]["summary"]["fitted model"]["train_accuracy"] > 0.5


def test_plot_draws_the_learning_curves(deep_run, tmp_path, capsys):
    path = next(deep_run[0].glob("ststnet__*.json"))
    assert main(["plot", str(path), "--output", str(tmp_path / "r.confusion.png")]) == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "r.learning.png") in printed and (tmp_path / "r.learning.png").stat().st_size
