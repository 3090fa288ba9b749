"""Rows of trained methods that show no learning are marked, and are never a table's
best row (``mer_bench.report.learning``)."""

import json

import pytest

from mer_bench.report.leaderboard import row, versus_best
from mer_bench.report.learning import (
    INEFFECTIVE,
    NO_LEARNING,
    ineffective_pretraining,
    majority_rate,
    no_learning,
    table_best,
)
from mer_bench.report.results import load_result
from mer_bench.runner import RunOptions, run


def trained(accuracy, start=1.5, end=0.9, steps=20, majority=0.4):
    return {"protocol": {"name": "loso"}, "predictions": [],
            "diagnostics": {"summary": {
                "meta-training": {"loss_start": start, "loss_end": end, "steps": steps},
                "fitted model": {"train_accuracy": accuracy, "majority_rate": majority}}}}


def test_no_learning_is_accuracy_at_the_majority_rate_or_a_loss_that_does_not_fall():
    assert no_learning(trained(0.8)) is None
    assert no_learning(trained(0.4)) == "training accuracy 0.400 <= majority-class rate 0.400"
    assert no_learning(trained(0.8, end=1.6)) == "meta-training: loss 1.5 -> 1.6"
    assert no_learning(trained(0.8, end=1.6, steps=1)) is None  # one point: no fall to see
    untrained = {"protocol": {"name": "loso"}, "predictions": [],
                 "diagnostics": {"summary": {"fitted model": {"train_accuracy": 0.1}}}}
    assert no_learning(untrained) is None  # an SVM or majority: no stage to judge


def test_a_balanced_learner_below_the_majority_rate_shows_learning_by_its_training_uar():
    balanced = trained(0.35)
    balanced["diagnostics"]["summary"]["fitted model"].update(train_uar=0.6, chance_uar=1 / 3)
    assert no_learning(balanced) is None
    balanced["diagnostics"]["summary"]["fitted model"]["train_uar"] = 1 / 3
    assert no_learning(balanced) == ("training accuracy 0.350 <= majority-class rate 0.400, "
                                     "training UAR 0.333 <= chance 0.333")


def test_older_results_take_the_majority_rate_from_their_clips():
    older = {"protocol": {"name": "loso"}, "diagnostics": {"summary": {}},
             "predictions": [{"y_true": c} for c in (0, 0, 0, 1)]}
    assert majority_rate(older) == 0.75
    fewshot = {"protocol": {"name": "fewshot"}, "diagnostics": {"summary": {}},
               "dataset": "synth-casme2", "label_scheme": {"name": "casme2-5"},
               "synthetic": True, "predictions": [{"y_true": 0}, {"y_true": 1}]}
    assert majority_rate(fewshot) == pytest.approx(99 / 246, abs=0.02)  # "others", not 1/2


@pytest.fixture(scope="module")
def two_rows(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("marks")
    paths = [run(RunOptions(method=m, protocol="kfold5", preset="smoke", out_dir=out,
                            cache_dir=shared_cache, device="cpu", progress=False))
             for m in ("protonet", "flow-svm")]
    return out, [(p, load_result(p)) for p in paths]


def test_the_runner_records_the_training_majority_rate(two_rows):
    _, [(_, result), _] = two_rows
    figures = result["diagnostics"]["summary"]["fitted model"]
    assert 0 < figures["majority_rate"] < 1 and "train_accuracy" in figures


def test_a_row_without_learning_is_marked_and_never_best(two_rows):
    out, items = two_rows
    (top_path, top), (other_path, other) = items
    flat = json.loads(json.dumps(top))
    flat["diagnostics"]["summary"]["fitted model"].update(train_accuracy=0.0, train_uar=0.0)
    rows = [(top_path, flat), (other_path, other)]
    assert table_best(rows) is other
    assert f"*({NO_LEARNING})*" in row(top_path, flat, out)[0]
    assert versus_best(table_best(rows), other) == "best"
    assert versus_best(None, flat) == f"no best: every row is {NO_LEARNING}"


def test_a_pretraining_that_does_not_read_its_condition_is_marked(two_rows):
    out, [(path, result), _] = two_rows
    figures = {"reconstruction_l1_own_condition": 0.0629,
               "reconstruction_l1_shuffled_condition": 0.0630,
               "reconstruction_l1_copy_baseline": 0.0632, "steps": 6}
    flat = json.loads(json.dumps(result))
    flat["diagnostics"]["summary"]["pre-training (reconstruction)"] = figures
    assert ineffective_pretraining(flat).startswith("pre-training (reconstruction): "
                                                    "reconstruction with its own motion code")
    assert f"*({INEFFECTIVE})*" in row(path, flat, out)[0]
    figures["reconstruction_l1_own_condition"] = 0.05  # 20 % below both controls
    assert ineffective_pretraining(flat) is None
    assert ineffective_pretraining(result) is None  # no such stage
