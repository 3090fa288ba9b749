"""Results record the code they ran; the leaderboard marks rows whose code changed since;
``mer-bench reproduce`` re-runs what a file records, and every committed result of the
methods that take seconds (flow-svm, majority) reproduces to the same predictions."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mer_bench.cli import main
from mer_bench.provenance import code_identity
from mer_bench.report.staleness import installed_code, stale_label
from mer_bench.report.results import load_result
from mer_bench.reproduce import compare_predictions, reproduce
from mer_bench.runner import RunOptions, run

COMMITTED = Path(__file__).parents[1] / "leaderboard" / "results"
QUICK = sorted([*COMMITTED.glob("flow-svm__*.json"), *COMMITTED.glob("majority__*.json"),
                *COMMITTED.glob("protonet__fewshot__*.json")])


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("fresh")
    return run(RunOptions(method="flow-svm", protocol="holdout", preset="smoke", out_dir=out,
                          cache_dir=shared_cache, progress=False, protocol_params={"repeats": 2}))


def test_a_result_records_the_code_it_ran_and_is_not_stale(fresh):
    result = load_result(fresh)
    assert result["code"] == installed_code(result)
    assert result["code"]["adapter"] and result["code"]["modules"] > 10
    assert stale_label(result) == ""


def test_changed_or_missing_code_marks_the_row_stale(fresh):
    from mer_bench.report.leaderboard import row
    result = load_result(fresh)
    changed = json.loads(json.dumps(result))
    changed["code"]["core"] = "0" * 64
    assert stale_label(changed) == "stale: core changed"
    assert "*(stale: core changed)*" in row(fresh, changed, fresh.parent)[0]
    del changed["code"]
    assert stale_label(changed) == "stale: code not recorded"


def test_the_code_identity_covers_what_makes_predictions_only():
    """A change to the report package or the command line leaves results fresh; the
    adapter's helpers, the runner and the protocol are covered."""
    from mer_bench.provenance import closure
    modules = closure(("mer_bench.methods.mcnet", "mer_bench.runner", "mer_bench.protocols.loso"))
    assert {"mer_bench.nn.training", "mer_bench.nn.prototypes", "mer_bench.runner",
            "mer_bench.protocols.loso", "mer_bench.features.specs"} <= set(modules)
    assert not any(m.startswith(("mer_bench.report", "mer_bench.cli")) for m in modules)
    assert "mer_bench.methods" not in modules  # the registry of names
    svm = code_identity("mer_bench.methods.flow_svm", "mer_bench.protocols.loso")
    assert svm != code_identity("mer_bench.methods.flow_svm", "mer_bench.protocols.holdout")


def test_reproduce_says_identical_and_spots_a_changed_prediction(fresh, tmp_path, capsys):
    outcome = reproduce(fresh, cache_dir=None)
    assert outcome.promise == "tolerance"  # a CPU row in the host's own kernels
    assert outcome.identical and outcome.kept
    assert outcome.summary().startswith("[promise: identical classes, scores within 0.01; "
                                        "else statistical] identical")
    recorded = load_result(fresh)
    moved = json.loads(json.dumps(recorded))
    moved["predictions"][0]["y_pred"] = (moved["predictions"][0]["y_pred"] + 1) % 5
    different = compare_predictions(recorded, moved, fresh)
    assert not different.identical and different.different == 1
    assert "1 of" in different.summary()
    assert main(["reproduce", str(fresh), "--quiet"]) == 0
    assert "identical" in capsys.readouterr().out


def test_each_promise_decides_what_a_moved_prediction_means(fresh):
    """Portable rows must be identical; host-kernel CPU rows fall back to the statistical
    check (re-run UF1 and UAR inside the recorded intervals); outside them nothing holds."""
    recorded = load_result(fresh)
    moved = json.loads(json.dumps(recorded))
    moved["predictions"][0]["y_pred"] = (moved["predictions"][0]["y_pred"] + 1) % 5
    outcome = compare_predictions(recorded, moved, fresh)
    outcome.recorded_ci = {k: recorded["metrics"]["ci"][k] for k in ("uf1", "uar")}
    assert outcome.consistent and outcome.kept  # one class of many: inside the intervals
    assert "statistically consistent: 1 of" in outcome.summary()
    outcome.promise = "identical"
    assert not outcome.kept and "different: 1 of" in outcome.summary()
    outcome.promise = "statistical"
    outcome.recorded_ci = {"uf1": [0.0, 0.01], "uar": [0.0, 0.01]}
    assert not outcome.kept


def test_reproduce_refuses_a_result_that_does_not_verify(fresh, tmp_path, capsys):
    data = json.loads(fresh.read_text())
    data["metrics"]["uf1"] += 0.1
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data))
    assert main(["reproduce", str(forged), "--quiet"]) == 2
    assert "not a verified result" in capsys.readouterr().err


def test_every_committed_quick_result_reproduces(shared_cache):
    """CI re-runs each committed flow-svm and majority result and the quick deep row
    (protonet few-shot, seconds each) at the code being tested, in one ``mer-bench
    reproduce`` (which restarts itself in portable mode for portable rows), and fails on
    any row whose promise does not hold; a portable row must come back identical."""
    done = subprocess.run([sys.executable, "-m", "mer_bench.cli", "reproduce", *map(str, QUICK),
                           "--quiet", "--cache-dir", str(shared_cache)],
                          capture_output=True, text=True, check=False, timeout=900)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(QUICK), done.stderr[-2000:]
    for path, line in zip(QUICK, lines):
        assert line.startswith(f"{path}: [promise: ") and "] identical" in line, line
        if load_result(path).get("numeric_mode", {}).get("portable"):
            assert "[promise: identical (portable mode)] identical:" in line, line
    assert done.returncode == 0